"""The database dies in the middle of the writes, and comes back.

A PostgreSQL cluster of this test's own (never the session-wide one the other tests
share) holds every service's database. Four clients write at once through the gateway:

- attendance batches with an Idempotency-Key, retried with the same key until answered;
- attendance batches sent once only, whatever happens;
- placements (no idempotency key: a client that got no answer, or a 5xx, first looks
  whether its placement exists, by content, and asks again only if it does not);
- placements sent once only.

In the middle the cluster is stopped hard (`pg_ctl stop -m immediate`: no checkpoint,
sessions cut) and started again a moment later. Afterwards, read from the databases:
every acknowledged write exists exactly once (one version per attendance day, one
placement per request), the stored idempotent answers are the ones the clients got, and
nothing that was not acknowledged exists in part: a batch is stored whole or not at all,
an unexcused absence never without its sanction case, a placement never without its
audit entry nor an audit entry for a placement that is not there. The audit chains
still verify.

CI crashes the database once; `SIKKERBY_CRASH_ROUNDS=8 .venv/bin/python -m pytest
tests/faults` crashes it eight times, each at another point of a fresh stream.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from services.activation.models import AttendanceRecord, Placement, SanctionCase
from services.platform.audit import AuditEntry, verify_chain
from services.platform.clock import local_today
from services.platform.db import make_engine
from services.platform.idempotency import IdempotencyKey
from services.platform.settings import ServiceName

from ..support.builders import enrolled_citizen, make_contract, make_provider
from ..support.postgres import PostgresCluster, find_bindir
from ..support.system import System, bearer

TODAY = local_today()
STATUSES = ["present", "absent_unexcused", "late", "absent_excused"]
RETRY_FOR_SECONDS = 90.0
# One crash in CI; `SIKKERBY_CRASH_ROUNDS=8` crashes eight times, at other moments.
ROUNDS = int(os.environ.get("SIKKERBY_CRASH_ROUNDS", "1"))
CRASH_AFTER = [(1 / 3, 1 / 2, 1 / 6, 2 / 3, 1 / 4, 5 / 6)[i % 6] for i in range(ROUNDS)]
FAILURES: list[tuple[int, str, str]] = []  # every 5xx answer: (status, content type, body)


@pytest.fixture(scope="module")
def crash_cluster() -> Iterator[PostgresCluster]:
    """A cluster of this module's own: stopping it hard harms no other test."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed here")
    cluster = PostgresCluster(bindir)
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="module")
def crash_system(crash_cluster: PostgresCluster,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    urls = {service: crash_cluster.create_database(service.value) for service in ServiceName}
    running = System(tmp_path_factory.mktemp("crash"), urls).start()
    yield running
    running.stop()


@dataclass
class Outcome:
    """What one client learnt about one write."""

    key: str
    body: dict[str, Any]
    attempts: list[tuple[str, int | None]] = field(default_factory=list)  # (request id, status)
    answer: httpx.Response | None = None  # the answer that acknowledged it, if any

    @property
    def acknowledged(self) -> bool:
        return self.answer is not None and self.answer.status_code < 300


def send(http: httpx.Client, outcome: Outcome, method: str, path: str,
         headers: dict[str, str]) -> httpx.Response | None:
    """One attempt; None when no answer came (connection cut, timeout)."""
    request_id = f"crash-{uuid.uuid4().hex}"
    try:
        response = http.request(method, path, json=outcome.body,
                                headers={**headers, "X-Request-ID": request_id})
    except httpx.HTTPError:
        outcome.attempts.append((request_id, None))
        return None
    outcome.attempts.append((request_id, response.status_code))
    if response.status_code >= 500:
        FAILURES.append((response.status_code, response.headers.get("content-type", ""),
                         response.text[:300]))
    return response


def retry_until_answered(attempt: Callable[[], httpx.Response | None]) -> httpx.Response:
    deadline = time.monotonic() + RETRY_FOR_SECONDS
    while True:
        response = attempt()
        if response is not None and response.status_code < 500:
            return response
        assert time.monotonic() < deadline, "no answer long after the database came back"
        time.sleep(0.25)


class Clients:
    """The four writers. Each runs in a thread and keeps what it learnt."""

    def __init__(self, system: System, provider: dict[str, str],
                 caseworker: dict[str, str]) -> None:
        self.system = system
        self.provider = provider
        self.caseworker = caseworker
        self.errors: list[BaseException] = []

    def run(self, name: str, outcomes: list[Outcome], one: Callable[..., None]) -> threading.Thread:
        def loop() -> None:
            try:
                with httpx.Client(base_url=self.system.url, timeout=20) as http:
                    for outcome in outcomes:
                        one(http, outcome)
                        time.sleep(0.04)
            except BaseException as exc:  # reported by the test
                self.errors.append(exc)

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        return thread

    def attendance_retrying(self, http: httpx.Client, outcome: Outcome) -> None:
        headers = {**self.provider, "Idempotency-Key": outcome.key}
        outcome.answer = retry_until_answered(
            lambda: send(http, outcome, "POST", "/v1/attendance", headers))

    def attendance_once(self, http: httpx.Client, outcome: Outcome) -> None:
        headers = {**self.provider, "Idempotency-Key": outcome.key}
        response = send(http, outcome, "POST", "/v1/attendance", headers)
        if response is not None and response.status_code < 500:
            outcome.answer = response

    def existing_placement(self, http: httpx.Client, body: dict[str, Any]) -> str | None:
        """The placement this request would make, if it exists (looked up by content)."""
        listed = retry_until_answered(lambda: _get(
            http, "/v1/placements", {"citizen_id": body["citizen_id"], "limit": 500},
            self.caseworker))
        assert listed.status_code == 200, listed.text
        matches = [p["id"] for p in listed.json()["items"]
                   if (p["contract_id"], p["starts_on"], p["ends_on"], p["weekly_hours"]) ==
                   (body["contract_id"], body["starts_on"], body["ends_on"],
                    body["weekly_hours"])]
        assert len(matches) <= 1, "a placement was made twice"
        return matches[0] if matches else None

    def placement_retrying(self, http: httpx.Client, outcome: Outcome) -> None:
        deadline = time.monotonic() + RETRY_FOR_SECONDS
        while True:
            response = send(http, outcome, "POST", "/v1/placements", self.caseworker)
            if response is not None and response.status_code < 500:
                outcome.answer = response
                return
            time.sleep(0.25)
            found = self.existing_placement(http, outcome.body)
            if found is not None:
                outcome.key = found  # made, though the answer was lost
                return
            assert time.monotonic() < deadline, "no placement long after the database came back"

    def placement_once(self, http: httpx.Client, outcome: Outcome) -> None:
        response = send(http, outcome, "POST", "/v1/placements", self.caseworker)
        if response is not None and response.status_code < 500:
            outcome.answer = response


def _get(http: httpx.Client, path: str, params: dict[str, Any],
         headers: dict[str, str]) -> httpx.Response | None:
    try:
        return http.get(path, params=params, headers=headers)
    except httpx.HTTPError:
        return None


def batches(placements: list[str], days: range, statuses_from: int) -> list[Outcome]:
    """One batch per day, one record per placement: distinct (placement, day) pairs."""
    out = []
    for n, offset in enumerate(days):
        records = []
        for i, placement in enumerate(placements):
            status = STATUSES[(statuses_from + n + i) % len(STATUSES)]
            record: dict[str, Any] = {"placement_id": placement,
                                      "date": (TODAY - timedelta(days=offset)).isoformat(),
                                      "status": status}
            if status in ("present", "late"):
                record["hours"] = 5
            records.append(record)
        out.append(Outcome(key=uuid.uuid4().hex, body={"records": records}))
    return out


def placement_requests(citizens: list[str], contract: str) -> list[Outcome]:
    return [Outcome(key="", body={
        "citizen_id": citizen, "contract_id": contract, "offer_type": "special_employment",
        "starts_on": (TODAY + timedelta(days=7)).isoformat(),
        "ends_on": (TODAY + timedelta(days=60)).isoformat(), "weekly_hours": 10})
        for citizen in citizens]


def engine_of(system: System, service: ServiceName) -> Engine:
    return make_engine(system.settings.database_url(service))


def wait_ready(system: System) -> None:
    deadline = time.monotonic() + 60
    while httpx.get(f"{system.url}/readyz", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the system did not become ready again"
        time.sleep(0.2)


@pytest.mark.parametrize("crash_after", CRASH_AFTER)
def test_a_hard_database_crash_mid_stream_loses_and_doubles_nothing(
        crash_system: System, crash_cluster: PostgresCluster, crash_after: float) -> None:
    """`crash_after`: the share of the retried attendance stream acknowledged when the
    database goes down."""
    FAILURES.clear()
    system = crash_system
    admin = bearer(system.admin_token())
    caseworker = bearer(system.token_for("caseworker"))
    with system.http() as http:
        provider = make_provider(http, admin, "Nedbrud ApS")
        contract = make_contract(http, admin, provider["id"], capacity=500,
                                 ends_on=(TODAY + timedelta(days=400)).isoformat())
        provider_headers = bearer(system.token_for("provider", provider_id=provider["id"]))

        def placed(n: int) -> list[str]:
            ids = []
            for _ in range(n):
                citizen = enrolled_citizen(http, caseworker, enrolled_on="2025-01-06")
                response = http.post("/v1/placements", headers=caseworker, json={
                    "citizen_id": citizen["id"], "contract_id": contract["id"],
                    "offer_type": "utility_work",
                    "starts_on": (TODAY - timedelta(days=40)).isoformat(),
                    "ends_on": (TODAY + timedelta(days=5)).isoformat(), "weekly_hours": 10})
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])
            return ids

        retried_batches = batches(placed(3), range(0, 36), 0)
        once_batches = batches(placed(3), range(0, 36), 1)
        retried_placements = placement_requests(
            [enrolled_citizen(http, caseworker)["id"] for _ in range(25)], contract["id"])
        once_placements = placement_requests(
            [enrolled_citizen(http, caseworker)["id"] for _ in range(25)], contract["id"])

    clients = Clients(system, provider_headers, caseworker)
    threads = [
        clients.run("attendance-retrying", retried_batches, clients.attendance_retrying),
        clients.run("attendance-once", once_batches, clients.attendance_once),
        clients.run("placements-retrying", retried_placements, clients.placement_retrying),
        clients.run("placements-once", once_placements, clients.placement_once),
    ]
    # Crash part way through the stream, the rest still to come.
    deadline = time.monotonic() + 60
    while sum(o.acknowledged for o in retried_batches) < len(retried_batches) * crash_after:
        assert time.monotonic() < deadline and not clients.errors, clients.errors
        time.sleep(0.02)
    crash_cluster.stop("immediate")
    time.sleep(1.5)
    crash_cluster.pg_ctl_start()
    for thread in threads:
        thread.join(timeout=RETRY_FOR_SECONDS + 30)
        assert not thread.is_alive(), f"{thread.name} still running"
    assert not clients.errors, clients.errors
    wait_ready(system)

    # While the database was away, every answer was a clean 503 problem document.
    assert {(status, kind.split(";")[0]) for status, kind, _ in FAILURES} <= {
        (503, "application/problem+json")}, FAILURES
    # The crash happened in the middle of the stream, not before or after it.
    statuses = Counter(status for o in retried_batches + retried_placements
                       for _, status in o.attempts)
    assert statuses[None] + sum(n for s, n in statuses.items() if s and s >= 500) > 0, (
        f"no request met the crash: {statuses}")
    for outcome in retried_batches:
        assert outcome.answer is not None and outcome.answer.status_code == 200, (
            outcome.answer.text if outcome.answer else outcome.attempts)
    for outcome in retried_placements:
        assert outcome.key or (outcome.answer is not None
                               and outcome.answer.status_code == 201), outcome.attempts
    for outcome in once_batches + once_placements:
        if outcome.answer is not None:  # answered: accepted, never refused for a crash
            assert outcome.answer.status_code < 300, outcome.answer.text

    activation = engine_of(system, ServiceName.activation)
    try:
        with Session(activation) as session:
            check_attendance(session, retried_batches, once_batches)
            check_placements(session, retried_placements, once_placements)
            assert verify_chain(session)[0], "the activation audit chain is broken"
    finally:
        activation.dispose()
    citizens = engine_of(system, ServiceName.citizens)
    try:
        with Session(citizens) as session:
            assert verify_chain(session)[0], "the citizens audit chain is broken"
    finally:
        citizens.dispose()

    # Every batch again, with its key: the first answer, and nothing new stored.
    with system.http() as http:
        for outcome in retried_batches + [o for o in once_batches if o.acknowledged]:
            again = http.post("/v1/attendance", json=outcome.body, headers={
                **provider_headers, "Idempotency-Key": outcome.key})
            assert again.status_code == 200, again.text
            if outcome.answer is not None:
                assert again.json() == outcome.answer.json()
    activation = engine_of(system, ServiceName.activation)
    try:
        with Session(activation) as session:
            check_attendance(session, retried_batches, once_batches)
    finally:
        activation.dispose()


def check_attendance(session: Session, retried: list[Outcome], once: list[Outcome]) -> None:
    placements = {uuid.UUID(r["placement_id"]) for o in retried + once
                  for r in o.body["records"]}
    rows = list(session.exec(select(AttendanceRecord).where(
        AttendanceRecord.placement_id.in_(placements))))  # type: ignore[attr-defined]
    versions = Counter((str(r.placement_id), r.day.isoformat()) for r in rows)
    stored = {(str(r.placement_id), r.day.isoformat()): r for r in rows}
    assert all(n == 1 for n in versions.values()), "a day was stored twice"
    cases = Counter((str(c.attendance_placement_id), c.occurred_on.isoformat())
                    for c in session.exec(select(SanctionCase).where(
                        SanctionCase.attendance_placement_id.in_(placements),  # type: ignore[union-attr]
                        SanctionCase.status != "withdrawn")))
    keys = {k.key: k for k in session.exec(select(IdempotencyKey).where(
        IdempotencyKey.key.in_([o.key for o in retried + once])))}  # type: ignore[attr-defined]
    for outcome in retried + once:
        wanted = [(r["placement_id"], r["date"]) for r in outcome.body["records"]]
        present = [w in stored for w in wanted]
        assert all(present) or not any(present), "a batch was stored in part"
        if outcome.acknowledged:
            assert all(present), "an acknowledged batch is missing"
            assert outcome.key in keys and keys[outcome.key].status_code == 200
            answered = outcome.answer.json()  # type: ignore[union-attr]
            assert answered["accepted"] == len(wanted)
            assert {r["id"] for r in answered["records"]} == {
                str(stored[w].id) for w in wanted}, "the answer names other rows"
        if not any(present):
            assert outcome.key not in keys, "a key claimed for a batch that is not stored"
        for record in outcome.body["records"]:
            pair = (record["placement_id"], record["date"])
            if pair in stored:
                assert stored[pair].status == record["status"]
            unexcused = pair in stored and record["status"] == "absent_unexcused"
            assert cases[pair] == (1 if unexcused else 0), (
                "an unexcused absence without its one case, or a case without it")
    # Each stored batch is on record exactly once: one request's `attendance.report`
    # entries, however many attempts it took.
    by_request: dict[str, set[str]] = defaultdict(set)
    for entry in session.exec(select(AuditEntry).where(
            AuditEntry.action == "attendance.report", AuditEntry.outcome == "success")):
        by_request[entry.request_id].add(str(entry.citizen_id))
    for outcome in retried + once:
        audited = [rid for rid, _ in outcome.attempts if rid in by_request]
        stored_now = all((r["placement_id"], r["date"]) in stored
                         for r in outcome.body["records"])
        assert len(audited) == (1 if stored_now else 0), (
            f"a batch on record {len(audited)} times")


def check_placements(session: Session, retried: list[Outcome], once: list[Outcome]) -> None:
    citizens = [uuid.UUID(o.body["citizen_id"]) for o in retried + once]
    rows = list(session.exec(select(Placement).where(
        Placement.citizen_id.in_(citizens))))  # type: ignore[attr-defined]
    by_citizen: dict[str, list[Placement]] = defaultdict(list)
    for row in rows:
        by_citizen[str(row.citizen_id)].append(row)
    audited = Counter(str(e.citizen_id) for e in session.exec(select(AuditEntry).where(
        AuditEntry.action == "placement.create", AuditEntry.outcome == "success",
        AuditEntry.citizen_id.in_(citizens))))  # type: ignore[attr-defined]
    for outcome in retried + once:
        citizen = outcome.body["citizen_id"]
        mine = by_citizen[citizen]
        assert len(mine) <= 1, "a placement was made twice"
        assert audited[citizen] == len(mine), (
            "a placement without its audit entry, or an entry for one that is not there")
        if outcome in retried:
            assert len(mine) == 1, "a retried placement is missing"
        if outcome.acknowledged:
            assert len(mine) == 1 and str(mine[0].id) == outcome.answer.json()["id"]  # type: ignore[union-attr]
        elif outcome.key:
            assert str(mine[0].id) == outcome.key
        for row in mine:
            assert (row.starts_on.isoformat(), row.ends_on.isoformat(),
                    row.weekly_tenths) == (outcome.body["starts_on"], outcome.body["ends_on"],
                                           100)
