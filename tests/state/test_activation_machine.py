"""A hypothesis state machine over the activation rules, against the running system.

Every step is a real request through the gateway (SQLite, one system for the whole
machine; each run of the machine makes its own citizens and contracts): enrolments and
exits, hours caps, placements and their ends, attendance batches with corrections and
idempotent replays, hearings, contact attempts and decisions (and corrected decisions).
Each answer must be one the contract allows for that request (never a 5xx; an error is a
problem document with one of the rule's codes).

After every step, read from the databases themselves:
- no ISO week from the current one on holds more hours than the citizen's cap;
- no day holds more placements under a contract than its capacity;
- every unexcused absence (the current version of a day) has exactly one sanction case
  that is not withdrawn, and every open case (open or hearing) has its absence;
- no decision without a hearing, and a case is `decided` exactly when it has one;
- the audit: every write about a citizen that succeeded has at least one `success` entry
  in the owning service's chain with the request's X-Request-ID, the caller as actor and
  the citizen's id; a refused write has none.
At the end of each run the gateway's chain holds exactly one `gateway.forward` entry per
request sent, with the status answered: the audit count matches the requests.

CI runs a bounded number of runs and steps; `SIKKERBY_STATE_EXAMPLES=200
SIKKERBY_STATE_STEPS=60 .venv/bin/python -m pytest tests/state` runs longer.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import httpx
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine
from sqlmodel import Session, select

from services.activation.models import (
    AttendanceRecord,
    HoursCap,
    Placement,
    SanctionCase,
    SanctionDecision,
)
from services.platform.audit import AuditEntry
from services.platform.clock import local_today
from services.platform.db import make_engine
from services.platform.settings import ServiceName

from ..support.builders import make_cpr, make_provider
from ..support.system import System, bearer

EXAMPLES = int(os.environ.get("SIKKERBY_STATE_EXAMPLES", "25"))
STEPS = int(os.environ.get("SIKKERBY_STATE_STEPS", "30"))
PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}
RUN = uuid.uuid4().hex[:8]
BIRTHS = itertools.count()  # a birth date per citizen: CPR numbers never repeat
ONE_DAY = timedelta(days=1)


# The system and its callers -----------------------------------------------------------------
@dataclass
class Sent:
    request_id: str
    method: str
    path: str
    status: int
    actor: str
    citizen_id: str | None  # the citizen a write is about (None: not about one)
    service: ServiceName | None  # the service whose chain must record it
    code: str = ""  # the problem's code, or the success status


@dataclass
class World:
    system: System
    provider_id: str
    clients: dict[str, dict[str, Any]]
    engines: dict[ServiceName, Engine]
    http: httpx.Client
    tokens: dict[str, tuple[float, str]] = field(default_factory=dict)
    counter: Iterator[int] = field(default_factory=itertools.count)

    def header(self, role: str) -> dict[str, str]:
        issued, token = self.tokens.get(role, (0.0, ""))
        if time.monotonic() - issued > 240:  # tokens live ten minutes; long runs renew
            client = self.clients[role]
            token = self.system.token(client["client_id"], client["client_secret"])
            self.tokens[role] = (time.monotonic(), token)
        return bearer(token)

    def call(self, sent: list[Sent], role: str, method: str, path: str, *,
             json: Any = None, headers: dict[str, str] | None = None,
             citizen_id: str | None = None,
             service: ServiceName | None = None) -> httpx.Response:
        request_id = f"sm-{RUN}-{next(self.counter)}"
        response = self.http.request(method, path, json=json, headers={
            **self.header(role), "X-Request-ID": request_id, **(headers or {})})
        assert response.status_code < 500, f"{method} {path}: {response.text}"
        assert response.headers["x-request-id"] == request_id
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json().keys() >= PROBLEM_KEYS
        sent.append(Sent(request_id, method, path, response.status_code,
                         self.clients[role]["client_id"], citizen_id, service,
                         code_of(response)))
        return response


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    system = System(tmp_path_factory.mktemp("state-machine")).start()
    try:
        admin = bearer(system.admin_token())
        with system.http() as http:
            provider = make_provider(http, admin, "Maskinen ApS")
        clients = {role: system.new_client(role) for role in ("caseworker", "admin")}
        clients["provider"] = system.new_client("provider", provider_id=provider["id"])
        engines = {service: make_engine(system.settings.database_url(service), writer=False)
                   for service in (ServiceName.activation, ServiceName.citizens,
                                   ServiceName.gateway)}
        with httpx.Client(base_url=system.url, timeout=60) as client:
            yield World(system, provider["id"], clients, engines, client)
        for engine in engines.values():
            engine.dispose()
    finally:
        system.stop()


def code_of(response: httpx.Response) -> str:
    return response.json()["code"] if response.status_code >= 400 else str(response.status_code)


def expect(response: httpx.Response, *allowed: str) -> None:
    """The answer is one the contract allows: a success status or a rule's code."""
    assert code_of(response) in allowed, f"{code_of(response)}: {response.text}"


def day(offset: int) -> str:
    return (local_today() + timedelta(days=offset)).isoformat()


def last_day(p: Placement) -> date:
    """The last day a placement occupies (an independent model: ending on day d frees d)."""
    return p.ended_on - ONE_DAY if p.ended_on else p.ends_on


# A hearing whose time to respond has passed, so that a sanction may follow it at once.
HEARING = {"sent_on": day(-15), "respond_by": day(-1)}
HOURS = st.sampled_from([5, 7.5, 10, 15, 20])
CAPS = st.sampled_from([0, 5, 10, 15, 20, 25, 37])
START_CAPS = st.sampled_from([None, 10, 20, 30, 37])
ENROLLED = st.sampled_from([None, 40, 50, 60])  # None: registered, not enrolled
READINESS = st.sampled_from(["jobparat", "aktivitetsparat"])
STATUSES = st.sampled_from(["present", "late", "absent_excused", "absent_unexcused"])


# The machine ----------------------------------------------------------------------------------
class ActivationMachine(RuleBasedStateMachine):
    world: ClassVar[World]

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[Sent] = []
        self.checked = 0  # how many of `sent` the audit invariant has seen
        self.citizens: list[str] = []
        self.contracts: dict[str, int] = {}  # id -> capacity, in the order made: draws
        # from it must replay exactly, and ids differ from run to run
        self.placements: list[str] = []
        self.reported: list[tuple[str, str]] = []  # (placement, day) reported once
        self.batches: list[tuple[str, dict[str, Any], httpx.Response]] = []

    def call(self, role: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.world.call(self.sent, role, method, path, **kwargs)

    # Setup and enrolments ---------------------------------------------------------------------
    @rule(capacity=st.integers(1, 3))
    @precondition(lambda self: len(self.contracts) < 3)
    def new_contract(self, capacity: int) -> None:
        response = self.call("admin", "POST", "/v1/contracts", json={
            "provider_id": self.world.provider_id, "kind": "special",
            "offer_types": ["special_employment", "utility_work"], "starts_on": "2025-01-01",
            "ends_on": day(400), "capacity": capacity, "weekly_price_ore": 150_000,
            "max_threat_level": 4})
        expect(response, "201")
        self.contracts[response.json()["id"]] = capacity

    @initialize(capacity=st.integers(1, 3), readiness=READINESS, guidance=st.booleans(),
                hours=HOURS)
    def first_placement(self, capacity: int, readiness: str, guidance: bool,
                        hours: float) -> None:
        """Every run starts with a contract and one citizen placed for eight weeks, four
        of them past: attendance, cases, hearings and decisions are a few steps away."""
        self.new_contract(capacity)
        self.new_citizen(readiness, 60, 37, guidance)
        self.place_one(self.citizens[0], list(self.contracts)[0], -28, 56, hours)

    @rule(readiness=READINESS, enrolled_days_ago=ENROLLED, cap=START_CAPS,
          guidance=st.booleans())
    @precondition(lambda self: len(self.citizens) < 4)
    def new_citizen(self, readiness: str, enrolled_days_ago: int | None, cap: float | None,
                    guidance: bool) -> None:
        response = self.call("caseworker", "POST", "/v1/citizens", json={
            "cpr": make_cpr(date(1950, 1, 1) + timedelta(days=next(BIRTHS) % 18_000)),
            "name": "Maskine Person", "benefit": "kontanthjaelp", "readiness": readiness},
            service=ServiceName.citizens)
        expect(response, "201")
        citizen = response.json()["id"]
        self.sent[-1].citizen_id = citizen
        self.citizens.append(citizen)
        if enrolled_days_ago is not None:
            self.enrolment(citizen, "enrol", enrolled_days_ago)
        if cap is not None:
            self.set_cap(citizen, cap)
        if guidance:
            expect(self.call("caseworker", "POST", "/v1/rights-guidance", json={
                "citizen_id": citizen, "given_on": day(-70), "channel": "letter"},
                citizen_id=citizen, service=ServiceName.activation), "201")

    @rule(citizen=st.runner().flatmap(lambda self: st.sampled_from(self.citizens)),
          action=st.sampled_from(["enrol", "exit"]), days_ago=st.integers(0, 60))
    @precondition(lambda self: self.placements)
    def enrolment(self, citizen: str, action: str, days_ago: int) -> None:
        """Enrol (again) or exit: placements of a citizen who is not enrolled are refused."""
        if action == "enrol":
            expect(self.call("caseworker", "POST", f"/v1/citizens/{citizen}/enrolments",
                             json={"enrolled_on": day(-days_ago), "referral_source": "police"},
                             citizen_id=citizen, service=ServiceName.citizens),
                   "201", "already_enrolled", "enrolment_overlaps")
        else:
            expect(self.call("caseworker", "POST", f"/v1/citizens/{citizen}/exit",
                             json={"exited_on": day(-days_ago), "reason": "job"},
                             citizen_id=citizen, service=ServiceName.citizens),
                   "200", "not_enrolled", "exit_before_enrolment")

    # Caps and placements ---------------------------------------------------------------------
    @rule(citizen=st.runner().flatmap(lambda self: st.sampled_from(self.citizens)), hours=CAPS)
    def set_cap(self, citizen: str, hours: float) -> None:
        expect(self.call("caseworker", "PUT", f"/v1/hours-caps/{citizen}",
                         json={"weekly_hours": hours, "reason": "assessed again"},
                         citizen_id=citizen, service=ServiceName.activation),
               "200", "hours_cap_below_scheduled")

    @rule(data=st.data(), starts=st.integers(-35, 14), length=st.integers(1, 60), hours=HOURS)
    def place(self, data: st.DataObject, starts: int, length: int, hours: float) -> None:
        self.place_one(data.draw(st.sampled_from(self.citizens)),
                       data.draw(st.sampled_from(list(self.contracts))), starts, length, hours)

    def place_one(self, citizen: str, contract: str, starts: int, length: int,
                  hours: float) -> None:
        response = self.call("caseworker", "POST", "/v1/placements", json={
            "citizen_id": citizen, "contract_id": contract, "offer_type": "special_employment",
            "starts_on": day(starts), "ends_on": day(starts + length - 1),
            "weekly_hours": hours}, citizen_id=citizen, service=ServiceName.activation)
        expect(response, "201", "not_enrolled", "hours_cap_not_set", "hours_cap_exceeded",
               "contract_full")
        if response.status_code == 201:
            self.placements.append(response.json()["id"])

    def placement_row(self, placement: str) -> Placement:
        with Session(self.world.engines[ServiceName.activation]) as session:
            row = session.get(Placement, uuid.UUID(placement))
        assert row is not None
        return row

    @rule(data=st.data(), after_start=st.integers(0, 45))
    @precondition(lambda self: self.placements)
    def end(self, data: st.DataObject, after_start: int) -> None:
        running = [p for p in self.placements if self.placement_row(p).ended_on is None]
        pool = running if running and data.draw(st.integers(0, 3)) > 0 else self.placements
        placement = data.draw(st.sampled_from(pool))
        row = self.placement_row(placement)
        starts, citizen = row.starts_on, str(row.citizen_id)
        expect(self.call("caseworker", "POST", f"/v1/placements/{placement}/end", json={
            "ended_on": (starts + timedelta(days=after_start)).isoformat(),
            "reason": "stopped"}, citizen_id=citizen, service=ServiceName.activation),
            "200", "placement_already_ended", "invalid_end_date")

    # Attendance --------------------------------------------------------------------------------
    @rule(data=st.data(), size=st.integers(1, 3), correct=st.booleans())
    @precondition(lambda self: self.placements)
    def report(self, data: st.DataObject, size: int, correct: bool) -> None:
        """A batch: days of the placements (now and then one outside, or ahead: the
        whole batch is refused), or (`correct`) days already reported: corrections."""
        wanted: dict[tuple[str, str], str] = {}
        for _ in range(size):
            if correct and self.reported:
                key = data.draw(st.sampled_from(self.reported))
            else:
                placement = data.draw(st.sampled_from(self.placements))
                starts = self.placement_row(placement).starts_on
                when = starts + timedelta(days=data.draw(st.integers(-1, 30)))
                key = (placement, when.isoformat())
            wanted[key] = data.draw(STATUSES)
        records = []
        for (placement, when), status in wanted.items():
            record: dict[str, Any] = {"placement_id": placement, "date": when, "status": status}
            if status in ("present", "late"):
                record["hours"] = data.draw(st.sampled_from([2, 4, 6.5]))
            records.append(record)
        body = {"records": records}
        key = uuid.uuid4().hex
        response = self.call("provider", "POST", "/v1/attendance", json=body,
                             headers={"Idempotency-Key": key},
                             service=ServiceName.activation)
        expect(response, "200", "attendance_outside_placement", "attendance_date_in_future")
        if response.status_code == 200:
            self.sent[-1].citizen_id = "*"  # about the citizens of its placements
            self.batches.append((key, body, response))
            for item in wanted:
                if item not in self.reported:
                    self.reported.append(item)

    @rule(data=st.data())
    @precondition(lambda self: self.batches)
    def replay(self, data: st.DataObject) -> None:
        """The same key and body again: the first answer, and nothing changes."""
        key, body, first = data.draw(st.sampled_from(self.batches))
        response = self.call("provider", "POST", "/v1/attendance", json=body,
                             headers={"Idempotency-Key": key})
        assert response.status_code == first.status_code
        assert response.json() == first.json()

    # Sanction cases --------------------------------------------------------------------------
    def cases(self) -> list[SanctionCase]:
        ids = [uuid.UUID(c) for c in self.citizens]
        with Session(self.world.engines[ServiceName.activation]) as session:
            return list(session.exec(select(SanctionCase).where(
                SanctionCase.citizen_id.in_(ids)).order_by(SanctionCase.opened_at)))  # type: ignore[attr-defined]

    def draw_case(self, data: st.DataObject) -> SanctionCase | None:
        """Mostly a live case (open or in hearing), now and then any, closed ones too."""
        # In an order that replays exactly (ids and timestamps differ from run to run).
        order = {placement: i for i, placement in enumerate(self.placements)}
        cases = sorted(self.cases(), key=lambda c: (
            order.get(str(c.attendance_placement_id), -1), c.occurred_on, c.kind))
        live = [c for c in cases if c.status in ("open", "hearing")]
        if live and data.draw(st.integers(0, 3)) > 0:
            cases = live
        return data.draw(st.sampled_from(cases)) if cases else None

    @rule(data=st.data())
    @precondition(lambda self: self.reported)
    def hearing(self, data: st.DataObject) -> None:
        case = self.draw_case(data)
        if case is not None:
            self.send_hearing(case)

    @rule(data=st.data(), reached=st.booleans())
    @precondition(lambda self: self.reported)
    def contact_attempt(self, data: st.DataObject, reached: bool) -> None:
        """An attempt to reach an activity-ready citizen in person, before a sanction."""
        case = self.draw_case(data)
        if case is not None:
            expect(self.call("caseworker", "POST",
                             f"/v1/sanction-cases/{case.id}/contact-attempts",
                             json={"at": datetime.now(UTC).isoformat(), "channel": "phone",
                                   "reached": reached},
                             citizen_id=str(case.citizen_id), service=ServiceName.activation),
                   "201", "case_closed")

    @rule(data=st.data(), sanction=st.booleans(), replace=st.booleans())
    @precondition(lambda self: self.reported)
    def decide(self, data: st.DataObject, sanction: bool, replace: bool) -> None:
        """A decision on any case: before a hearing it must be refused."""
        case = self.draw_case(data)
        if case is not None:
            self.decision(case, sanction, replace)

    @rule(data=st.data(), sanction=st.booleans())
    @precondition(lambda self: self.reported)
    def hear_and_decide(self, data: st.DataObject, sanction: bool) -> None:
        """The usual course: the hearing, then the decision."""
        case = self.draw_case(data)
        if case is not None:
            self.send_hearing(case)
            self.decision(case, sanction, replace=False)

    def send_hearing(self, case: SanctionCase) -> None:
        expect(self.call("caseworker", "POST", f"/v1/sanction-cases/{case.id}/hearing",
                         json=HEARING, citizen_id=str(case.citizen_id),
                         service=ServiceName.activation),
               "200", "case_closed")

    def decision(self, case: SanctionCase, sanction: bool, replace: bool) -> None:
        body: dict[str, Any] = (
            {"outcome": "sanction", "reasonable_excuse": False, "deduction_days": 1,
             "justification": "No reasonable excuse was given."} if sanction else
            {"outcome": "no_sanction", "reasonable_excuse": True, "deduction_days": 0,
             "justification": "Documented illness."})
        if replace:
            with Session(self.world.engines[ServiceName.activation]) as session:
                decisions = list(session.exec(select(SanctionDecision).where(
                    SanctionDecision.case_id == case.id)))
            replaced = {d.replaces_id for d in decisions}
            current = [d for d in decisions if d.id not in replaced]
            if current:
                body["replaces"] = str(current[0].id)
        expect(self.call("caseworker", "POST", f"/v1/sanction-cases/{case.id}/decision",
                         json=body, citizen_id=str(case.citizen_id),
                         service=ServiceName.activation),
               "200", "hearing_required", "guidance_missing", "contact_attempt_required",
               "deadline_passed", "case_closed", "decision_not_current")

    # Invariants -----------------------------------------------------------------------------
    def rows(self) -> tuple[list[Placement], dict[uuid.UUID, HoursCap]]:
        ids = [uuid.UUID(c) for c in self.citizens]
        with Session(self.world.engines[ServiceName.activation]) as session:
            placements = list(session.exec(select(Placement).where(
                Placement.citizen_id.in_(ids))))  # type: ignore[attr-defined]
            caps = {c.citizen_id: c for c in session.exec(select(HoursCap).where(
                HoursCap.citizen_id.in_(ids)))}  # type: ignore[attr-defined]
        return placements, caps

    @invariant()
    def no_week_over_a_cap(self) -> None:
        placements, caps = self.rows()
        monday = local_today() - timedelta(days=local_today().weekday())
        by_citizen: dict[uuid.UUID, list[Placement]] = defaultdict(list)
        for p in placements:
            by_citizen[p.citizen_id].append(p)
        for citizen, mine in by_citizen.items():
            assert citizen in caps, "a placement without an hours cap"
            end = max((last_day(p) for p in mine), default=monday)
            week = monday
            while week <= end:
                sunday = week + timedelta(days=6)
                tenths = sum(p.weekly_tenths for p in mine
                             if p.starts_on <= sunday and last_day(p) >= week)
                assert tenths <= caps[citizen].weekly_tenths, (
                    f"{tenths / 10} hours in the week of {week}, over the cap of "
                    f"{caps[citizen].weekly_tenths / 10}")
                week += timedelta(days=7)

    @invariant()
    def no_contract_over_capacity(self) -> None:
        with Session(self.world.engines[ServiceName.activation]) as session:
            for contract, capacity in self.contracts.items():
                placements = list(session.exec(select(Placement).where(
                    Placement.contract_id == uuid.UUID(contract))))
                for start in {p.starts_on for p in placements}:
                    seated = sum(1 for p in placements
                                 if p.starts_on <= start <= last_day(p))
                    assert seated <= capacity, f"{seated} seats on {start}, capacity {capacity}"

    @invariant()
    def every_unexcused_absence_has_one_case(self) -> None:
        placements = [uuid.UUID(p) for p in self.placements]
        with Session(self.world.engines[ServiceName.activation]) as session:
            absences = {(r.placement_id, r.day) for r in session.exec(
                select(AttendanceRecord).where(
                    AttendanceRecord.placement_id.in_(placements),  # type: ignore[attr-defined]
                    AttendanceRecord.current.is_(True),  # type: ignore[attr-defined]
                    AttendanceRecord.status == "absent_unexcused"))}
            cases = list(session.exec(select(SanctionCase).where(
                SanctionCase.attendance_placement_id.in_(placements),  # type: ignore[union-attr]
                SanctionCase.status != "withdrawn")))
        count: dict[tuple[uuid.UUID | None, date], int] = defaultdict(int)
        for case in cases:
            count[(case.attendance_placement_id, case.occurred_on)] += 1
            if case.status in ("open", "hearing"):
                assert (case.attendance_placement_id, case.occurred_on) in absences, (
                    "an open case whose absence was corrected away")
        for absence in absences:
            assert count[absence] == 1, f"{count[absence]} cases for one absence"
        assert all(n == 1 for n in count.values()), "two live cases for one day"

    @invariant()
    def no_decision_without_a_hearing(self) -> None:
        cases = self.cases()
        with Session(self.world.engines[ServiceName.activation]) as session:
            decided = {d.case_id for d in session.exec(select(SanctionDecision).where(
                SanctionDecision.case_id.in_([c.id for c in cases])))}  # type: ignore[attr-defined]
        for case in cases:
            if case.id in decided:
                assert case.hearing_sent_on is not None, "a decision without a hearing"
            assert (case.status == "decided") == (case.id in decided)

    @invariant()
    def every_write_is_on_record(self) -> None:
        new, self.checked = self.sent[self.checked:], len(self.sent)
        for sent in new:
            if sent.service is None:
                continue
            with Session(self.world.engines[sent.service]) as session:
                entries = list(session.exec(select(AuditEntry).where(
                    AuditEntry.request_id == sent.request_id,
                    AuditEntry.actor == sent.actor)))
            successes = [e for e in entries if e.outcome == "success"]
            if sent.status < 300:
                assert successes, f"{sent.method} {sent.path} succeeded with no audit entry"
                if sent.citizen_id not in (None, "*"):
                    assert {str(e.citizen_id) for e in successes} == {sent.citizen_id}
            else:
                assert not successes, f"a refused {sent.method} {sent.path} audited as success"

    def teardown(self) -> None:
        """Exactly one gateway entry per request sent, by the caller, with the status
        answered (the gateway writes its entries in batches a few times a second; a
        service's own calls through the gateway carry the same request id, by its own
        client)."""
        if not self.sent:
            return
        wanted = {(s.request_id, s.actor): [str(s.status)] for s in self.sent}
        deadline = time.monotonic() + 10
        while True:
            found: dict[tuple[str, str], list[str]] = defaultdict(list)
            with Session(self.world.engines[ServiceName.gateway]) as session:
                for request_id, actor, outcome in session.exec(
                    select(AuditEntry.request_id, AuditEntry.actor, AuditEntry.outcome).where(
                        AuditEntry.action == "gateway.forward",
                        AuditEntry.request_id.in_({rid for rid, _ in wanted}))):  # type: ignore[attr-defined]
                    if (request_id, actor) in wanted:
                        found[(request_id, actor)].append(outcome)
            if len(found) >= len(wanted) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert dict(found) == wanted


def test_activation_rules_hold_under_any_sequence(world: World) -> None:
    ActivationMachine.world = world
    long_run = "SIKKERBY_STATE_EXAMPLES" in os.environ
    run_state_machine_as_test(ActivationMachine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None,
        derandomize=not long_run, suppress_health_check=list(HealthCheck),
        # Shrinking replays sequences against a system whose state moved on: long runs
        # only, where a short failing sequence is worth the time.
        phases=list(Phase) if long_run else [Phase.explicit, Phase.generate]))
