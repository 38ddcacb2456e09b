"""Citizens at scale: the enrolment report and a CPR lookup through the gateway, on a
million citizens with enrolment histories in PostgreSQL.

    python -m bench.citizens.run [--citizens N] [--quick] [--workers W] [--seed S]
                                 [--report-requests N] [--lookup-requests N]
                                 [--strict] [--json PATH]

What it does, all on 127.0.0.1 and in temporary directories that are removed at the end:

1. starts a throwaway PostgreSQL cluster from the installed server binaries (as the
   tests do) with one database for the citizens service and one for the gateway, and
   applies their real migrations (`services.platform.migrate.upgrade`) with the rest of
   what `gateway.cli.prepare` does (signing key, configured clients);
2. builds N citizens (default 1,000,000) with enrolment histories spread over several
   years and loads them with COPY from several worker processes. The rows are what
   `register_citizen`, `enrol` and `exit` would have written: the CPR number encrypted
   with the service's FieldCipher and context, its keyed hash with the same purpose, the
   birth date parsed from it, periods that never overlap, at most one open per citizen,
   and `next_enrolled_on` set on every period that was followed by another;
3. checks the data (invariants in SQL, a sample decrypted, the report against the
   builder's own count), runs VACUUM ANALYZE, restarts the cluster with fsync on;
4. starts the citizens service and the gateway as uvicorn processes (the command line of
   `sikkerby up`) and measures, sequentially, through the gateway:
   GET /v1/reports/enrolment?as_of=... (team_lead token) and POST /v1/citizens/lookup
   (caseworker token), and prints p50/p95/p99 beside the targets with PASS/FAIL, and the
   EXPLAIN ANALYZE of the report's query.

Targets: report p95 under 500 ms, lookup p95 under 20 ms. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import event

from bench.common import (
    ADMIN_CLIENT_ID,
    HOST,
    BenchError,
    bench_main,
    load_average,
    system_environment,
)
from bench.gateway.run import (
    Processes,
    child_environment,
    environment,
    free_ports,
    uvicorn_command,
    wait_healthy,
)
from gateway.cli import APP_FACTORIES, ensure_configured_clients
from gateway.keys import ensure_key_file
from services.citizens.logic import CPR_CONTEXT, CprKeys
from services.citizens.report import enrolment_report
from services.citizens.schemas import Benefit, ExitReason, Readiness, ReferralSource
from services.platform.clock import local_today
from services.platform.cpr import parse_cpr
from services.platform.crypto import (
    cipher_from_settings,
    ensure_dev_secrets,
    hasher_from_settings,
)
from services.platform.db import make_engine, new_session
from services.platform.migrate import upgrade
from services.platform.settings import DOWNSTREAM_SERVICES, ServiceName, Settings
from tests.support.postgres import PostgresCluster, find_bindir

# Targets (p95, through the gateway, sequential requests).
REPORT_P95_TARGET_MS = 500.0
LOOKUP_P95_TARGET_MS = 20.0

DEFAULT_CITIZENS = 1_000_000
QUICK_CITIZENS = 50_000
MAX_CITIZENS = 5_000_000  # the CPR numbering below stays unique up to here
TOKEN_REFRESH_AFTER_SECONDS = 300
WARMUP_REPORTS = 5
WARMUP_LOOKUPS = 50

# The data set -----------------------------------------------------------------------
YEARS_OF_HISTORY = 6  # the programme started on 1 January, this many years before this year
BIRTH_FIRST = date(1960, 1, 1)
BIRTH_LAST = date(2005, 12, 31)
BIRTH_SPAN_DAYS = (BIRTH_LAST - BIRTH_FIRST).days + 1
# Multiplier spreading consecutive citizens over the birth dates (coprime with the span).
BIRTH_STRIDE = 7919
NEVER_ENROLLED = 0.03  # registered, never enrolled
# Planned periods per enrolled citizen (later ones are cut off where they would start
# after today); most have one.
PERIODS = ((1, 0.75), (2, 0.18), (3, 0.05), (4, 0.02))
STILL_OPEN = 0.35  # the last planned period is still open
MEAN_PERIOD_DAYS = 320
MIN_PERIOD_DAYS = 7
MEAN_GAP_DAYS = 200
REFERRALS = ((ReferralSource.jobcenter, 45), (ReferralSource.police, 30),
             (ReferralSource.prison_service, 15), (ReferralSource.other, 10))
EXIT_REASONS = ((ExitReason.job, 30), (ExitReason.education, 15),
                (ExitReason.benefit_ended, 20), (ExitReason.imprisonment, 12),
                (ExitReason.moved, 10), (ExitReason.other, 10), (ExitReason.death, 3))
CASEWORKERS = 40  # distinct enrolled_by / exited_by client ids

CITIZEN_COLUMNS = ("id", "cpr_encrypted", "cpr_hash", "birth_date", "name", "benefit",
                   "readiness", "version", "created_at", "updated_at")
ENROLMENT_COLUMNS = ("id", "citizen_id", "enrolled_on", "referral_source", "exited_on",
                     "exit_reason", "enrolled_by", "exited_by", "next_enrolled_on",
                     "created_at")
NULL = "\\N"  # COPY's text format


class BenchCluster(PostgresCluster):
    """The tests' throwaway cluster, with settings for a bulk load (no fsync, large WAL)
    while building, and PostgreSQL's durable defaults (fsync on) while measuring."""

    durable = False

    def pg_ctl_start(self) -> None:
        options = (f"-p {self.port} -k {self.socketdir} -c listen_addresses=127.0.0.1 "
                   "-c max_connections=300 -c shared_buffers=256MB -c max_wal_size=4GB "
                   "-c maintenance_work_mem=256MB")
        if not self.durable:  # the load; VACUUM ANALYZE follows it, autovacuum need not
            options += (" -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
                        " -c autovacuum=off")
        self._pg("pg_ctl", "-D", str(self.datadir), "-o", options, "-l",
                 str(self.root / "log"), "-w", "-t", "120", "start")

    def restart_durable(self) -> None:
        self.stop("fast")
        self.durable = True
        self.pg_ctl_start()

    def dsn(self, url: str) -> str:
        return url.replace("+psycopg", "")


# ------------------------------------------------------------------------------------
# The data set: pure functions of (seed, citizen number)


def cpr_of(number: int) -> str:
    """The CPR number of citizen `number`: unique for every number below MAX_CITIZENS,
    a real date, and a 7th digit that gives the right century (0-3 for the 1900s,
    4 for 2000-2036)."""
    day_index = (number * BIRTH_STRIDE) % BIRTH_SPAN_DAYS
    round_no = number // BIRTH_SPAN_DAYS  # at most 297 below MAX_CITIZENS
    birth = BIRTH_FIRST + timedelta(days=day_index)
    spread = round_no * 1237 + day_index * 7  # 1237 is coprime with 4000 and 1000
    serial = spread % 4000 if birth.year < 2000 else 4000 + spread % 1000
    return f"{birth:%d%m%y}{serial:04d}"


def citizen_id_of(seed: int, number: int) -> uuid.UUID:
    """A version-4 UUID, reproducible from the seed, so a lookup can be checked."""
    digest = hashlib.blake2b(f"{seed}:{number}".encode(), digest_size=16).digest()
    return uuid.UUID(bytes=digest, version=4)


def _weighted(rng: random.Random, choices: tuple[tuple[Any, int | float], ...]) -> Any:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _eighteenth_birthday(birth: date) -> date:
    if birth.month == 2 and birth.day == 29:
        return date(birth.year + 18, 3, 1)
    return birth.replace(year=birth.year + 18)


@dataclass
class Period:
    enrolled_on: date
    referral_source: str
    exited_on: date | None = None
    exit_reason: str | None = None
    next_enrolled_on: date | None = None


def history(rng: random.Random, birth: date, programme_start: date,
            today: date) -> list[Period]:
    """A citizen's enrolment periods, oldest first: never overlapping (a new period
    starts on or after the last exit), only the last may be open, nothing after today,
    nobody enrolled before 18, no one comes back after a death."""
    if rng.random() < NEVER_ENROLLED:
        return []
    first_day = max(programme_start, _eighteenth_birthday(birth))
    if first_day > today:
        return []
    planned = _weighted(rng, PERIODS)
    start = first_day + timedelta(days=rng.randrange((today - first_day).days + 1))
    periods: list[Period] = []
    for k in range(planned):
        period = Period(start, _weighted(rng, REFERRALS).value)
        periods.append(period)
        last = k == planned - 1
        if last and rng.random() < STILL_OPEN:
            break
        exit_day = start + timedelta(
            days=MIN_PERIOD_DAYS + int(rng.expovariate(1 / MEAN_PERIOD_DAYS)))
        if exit_day > today:
            break  # still open today
        reason = _weighted(rng, EXIT_REASONS)
        while reason is ExitReason.death and not last:
            reason = _weighted(rng, EXIT_REASONS)
        period.exited_on, period.exit_reason = exit_day, reason.value
        if last:
            break
        start = exit_day + timedelta(days=int(rng.expovariate(1 / MEAN_GAP_DAYS)))
        if start > today:
            break
        period.next_enrolled_on = start
    return periods


@dataclass
class Tally:
    """What the builder made, counted the plain way: the report for as_of=today must
    say the same."""

    citizens: int = 0
    persons: int = 0  # with at least one period
    periods: int = 0
    active: int = 0
    reenrolled: int = 0  # with more than one period
    by_reason: dict[str, int] = field(default_factory=dict)
    days_this_year: int = 0  # enrolled days from 1 January through today

    def add(self, other: Tally) -> None:
        self.citizens += other.citizens
        self.persons += other.persons
        self.periods += other.periods
        self.active += other.active
        self.reenrolled += other.reenrolled
        self.days_this_year += other.days_this_year
        for reason, count in other.by_reason.items():
            self.by_reason[reason] = self.by_reason.get(reason, 0) + count


def _timestamp(day: date, rng: random.Random) -> str:
    # Office hours in UTC, so the same day in Copenhagen.
    return f"{day.isoformat()} {8 + rng.randrange(7):02d}:{rng.randrange(60):02d}:" \
           f"{rng.randrange(60):02d}.{rng.randrange(1_000_000):06d}+00"


def build_rows(keys: CprKeys, seed: int, first: int, stop: int, programme_start: date,
               today: date) -> tuple[str, str, Tally]:
    """COPY text for citizens first..stop-1 and their periods, and what they add up to."""
    rng = random.Random(seed * 1_000_003 + first)
    year_start = today.replace(month=1, day=1)
    day_after = today + timedelta(days=1)
    benefits = [b.value for b in Benefit]
    readiness = [r.value for r in Readiness]
    citizen_lines: list[str] = []
    enrolment_lines: list[str] = []
    tally = Tally()
    for number in range(first, stop):
        cpr = parse_cpr(cpr_of(number))  # the service's own parser gives the birth date
        citizen_id = citizen_id_of(seed, number)
        periods = history(rng, cpr.birth_date, programme_start, today)
        registered = (periods[0].enrolled_on - timedelta(days=rng.randrange(60))
                      if periods else
                      programme_start + timedelta(
                          days=rng.randrange((today - programme_start).days + 1)))
        created = _timestamp(registered, rng)
        citizen_lines.append("\t".join((
            str(citizen_id),
            keys.cipher.encrypt(cpr.digits, context=f"{CPR_CONTEXT}:{citizen_id}"),
            keys.hash(cpr.digits),
            cpr.birth_date.isoformat(),
            f"Testborger {number:07d}",
            rng.choice(benefits),
            rng.choice(readiness),
            "1",
            created,
            created,
        )) + "\n")
        tally.citizens += 1
        if not periods:
            continue
        tally.persons += 1
        tally.periods += len(periods)
        tally.reenrolled += len(periods) > 1
        latest = periods[-1]
        if latest.exited_on is None:
            tally.active += 1
        else:
            tally.by_reason[latest.exit_reason or ""] = (
                tally.by_reason.get(latest.exit_reason or "", 0) + 1)
        for period in periods:
            begin = max(period.enrolled_on, year_start)
            end = min(period.exited_on or day_after, day_after)
            tally.days_this_year += max(0, (end - begin).days)
            worker = f"bench-caseworker-{rng.randrange(CASEWORKERS):02d}"
            enrolment_lines.append("\t".join((
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                str(citizen_id),
                period.enrolled_on.isoformat(),
                period.referral_source,
                period.exited_on.isoformat() if period.exited_on else NULL,
                period.exit_reason or NULL,
                worker,
                worker if period.exited_on else NULL,
                period.next_enrolled_on.isoformat() if period.next_enrolled_on else NULL,
                _timestamp(period.enrolled_on, rng),
            )) + "\n")
    return "".join(citizen_lines), "".join(enrolment_lines), tally


# ------------------------------------------------------------------------------------
# The build: worker processes, each generating a chunk and loading it with COPY


_WORKER: dict[str, Any] = {}


def _worker_init(dsn: str, field_keys: str, active_kid: str, hash_key: str, seed: int,
                 programme_start: date, today: date) -> None:
    # The parent turns SIGTERM into KeyboardInterrupt; a worker just ends (the pool's
    # terminate), and leaves Ctrl-C to the parent.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import psycopg

    # Built exactly as the service builds them (services.platform.app), from the same
    # values the service gets in its environment.
    settings = Settings(field_encryption_keys=SecretStr(field_keys),
                        field_encryption_active_key=active_kid, hash_key=SecretStr(hash_key))
    cipher, hasher = cipher_from_settings(settings), hasher_from_settings(settings)
    assert cipher is not None and hasher is not None
    _WORKER.update(keys=CprKeys(cipher, hasher), seed=seed, start=programme_start,
                   today=today, connection=psycopg.connect(dsn))


def _load_chunk(bounds: tuple[int, int]) -> tuple[Tally, float, float]:
    first, stop = bounds
    began = time.perf_counter()
    citizens, enrolments, tally = build_rows(_WORKER["keys"], _WORKER["seed"], first, stop,
                                             _WORKER["start"], _WORKER["today"])
    generated = time.perf_counter()
    connection = _WORKER["connection"]
    with connection.transaction(), connection.cursor() as cursor:
        with cursor.copy(f"COPY citizen ({', '.join(CITIZEN_COLUMNS)}) FROM STDIN") as copy:
            copy.write(citizens)
        with cursor.copy(f"COPY enrolment ({', '.join(ENROLMENT_COLUMNS)}) FROM STDIN") as copy:
            copy.write(enrolments)
    return tally, generated - began, time.perf_counter() - generated


def build(dsn: str, settings: Settings, citizens: int, workers: int, seed: int,
          programme_start: date, today: date) -> Tally:
    assert settings.field_encryption_keys is not None and settings.hash_key is not None
    chunk = max(2_000, min(20_000, citizens // (workers * 8) or 1))
    bounds = [(first, min(first + chunk, citizens)) for first in range(0, citizens, chunk)]
    total = Tally()
    generating = copying = 0.0
    done = 0
    last_note = time.monotonic()
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_worker_init, initargs=(
            dsn, settings.field_encryption_keys.get_secret_value(),
            settings.field_encryption_active_key or "",
            settings.hash_key.get_secret_value(), seed, programme_start, today)) as pool:
        for tally, gen_s, copy_s in pool.imap_unordered(_load_chunk, bounds):
            total.add(tally)
            generating += gen_s
            copying += copy_s
            done += 1
            if time.monotonic() - last_note > 15 or done == len(bounds):
                last_note = time.monotonic()
                print(f"  {total.citizens:>9,} citizens, {total.periods:>9,} periods "
                      f"({done}/{len(bounds)} chunks)", flush=True)
    print(f"  worker time: {generating:.1f} s generating rows (AES-GCM, HMAC, histories), "
          f"{copying:.1f} s in COPY; {workers} workers, chunks of {chunk:,}")
    return total


# ------------------------------------------------------------------------------------
# Set-up


def prepare(settings: Settings) -> dict[str, str]:
    """`gateway.cli.prepare` for the two processes this bench runs: the signing key, the
    real migrations of the citizens and gateway databases, the configured clients. (The
    idle services' databases are left alone: their migrations are not what is measured.)
    Returns what `sikkerby up` hands its children."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shared = ensure_dev_secrets(settings)  # nothing: the bench gives the keys itself
    ensure_key_file(settings.signing_key_path, allow_generate=True)
    for service in (ServiceName.citizens, ServiceName.gateway):
        upgrade(service, settings.database_url(service))
    shared.update(ensure_configured_clients(settings, generate_missing=True))
    return shared


# ------------------------------------------------------------------------------------
# Checks on what was built


def check_data(dsn: str, keys: CprKeys, tally: Tally) -> None:
    import psycopg

    with psycopg.connect(dsn) as connection:
        citizens = connection.execute("SELECT count(*) FROM citizen").fetchone()[0]
        periods = connection.execute("SELECT count(*) FROM enrolment").fetchone()[0]
        if (citizens, periods) != (tally.citizens, tally.periods):
            raise BenchError(f"loaded {citizens} citizens and {periods} periods, built "
                             f"{tally.citizens} and {tally.periods}")
        # Periods in order never overlap, and next_enrolled_on is the next period's start.
        bad = connection.execute("""
            SELECT count(*) FILTER (WHERE previous_exit IS NULL AND previous_start IS NOT NULL),
                   count(*) FILTER (WHERE enrolled_on < previous_exit),
                   count(*) FILTER (WHERE next_enrolled_on IS DISTINCT FROM next_start),
                   count(*) FILTER (WHERE exited_on < enrolled_on)
            FROM (SELECT enrolled_on, exited_on, next_enrolled_on,
                         lag(exited_on) OVER w AS previous_exit,
                         lag(enrolled_on) OVER w AS previous_start,
                         lead(enrolled_on) OVER w AS next_start
                  FROM enrolment
                  WINDOW w AS (PARTITION BY citizen_id ORDER BY enrolled_on)) AS p
        """).fetchone()
        if any(bad):
            raise BenchError("broken enrolment histories (open before a later period, "
                             "overlaps, wrong next_enrolled_on, exit before start): "
                             f"{bad}")
        # A sample decrypts with the service's context and matches its hash and birth date.
        sample = connection.execute(
            "SELECT id, cpr_encrypted, cpr_hash, birth_date FROM citizen "
            "TABLESAMPLE SYSTEM (1) LIMIT 500").fetchall()
        for citizen_id, encrypted, cpr_hash, birth_date in sample:
            digits = keys.cipher.decrypt(encrypted, context=f"{CPR_CONTEXT}:{citizen_id}")
            if keys.hash(digits) != cpr_hash or parse_cpr(digits).birth_date != birth_date:
                raise BenchError(f"citizen {citizen_id}: CPR, hash and birth date disagree")
    print(f"  checked: {citizens:,} citizens, {periods:,} periods; no overlaps, at most one "
          f"open period each, next_enrolled_on right; {len(sample)} CPR numbers decrypted "
          "and matched their hash and birth date")


def vacuum_analyze(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection:
        for table in ("citizen", "enrolment", "citizen_change", "audit_entry"):
            connection.execute(f"VACUUM (ANALYZE) {table}")


def table_sizes(dsn: str) -> str:
    import psycopg

    with psycopg.connect(dsn) as connection:
        rows = connection.execute("""
            SELECT relname, pg_size_pretty(pg_relation_size(oid)),
                   pg_size_pretty(pg_indexes_size(oid))
            FROM pg_class WHERE relname IN ('citizen', 'enrolment') ORDER BY relname
        """).fetchall()
        version = connection.execute("SHOW server_version").fetchone()[0]
        settings = {name: connection.execute(f"SHOW {name}").fetchone()[0] for name in (
            "shared_buffers", "fsync", "synchronous_commit", "max_parallel_workers_per_gather",
            "work_mem")}
    parts = [f"{name} {heap} + indexes {indexes}" for name, heap, indexes in rows]
    return (f"PostgreSQL {version}; " + "; ".join(parts) + "\n  settings: "
            + ", ".join(f"{k}={v}" for k, v in settings.items()))


# ------------------------------------------------------------------------------------
# The report query, as the service runs it


def explain_report(url: str, as_of: date) -> tuple[str, dict[str, Any]]:
    """EXPLAIN ANALYZE of the exact statement `enrolment_report` sends, and its figures
    computed in this process (the same code, straight on the database)."""
    engine = make_engine(url)
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any,
                _context: Any, _many: bool) -> None:
        if "enrolment" in statement:
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with new_session(engine) as session:
            figures = enrolment_report(session, as_of).model_dump(mode="json")
        event.remove(engine, "before_cursor_execute", capture)
        statement, parameters = captured[-1]
        with engine.connect() as connection:
            plan = connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).fetchall()
        return "\n".join(row[0] for row in plan), figures
    finally:
        engine.dispose()


def expected_report(tally: Tally, as_of: date) -> dict[str, Any]:
    year_start = as_of.replace(month=1, day=1)
    exits = tally.persons - tally.active
    return {"enrolled_since_start": tally.persons, "active": tally.active, "exited": exits,
            "exit_reasons": {r.value: tally.by_reason.get(r.value, 0) for r in ExitReason},
            "full_year_persons": round(tally.days_this_year
                                       / ((as_of - year_start).days + 1), 2)}


def report_matches(figures: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Differences, ignoring suppressed (null) cells."""
    differences = []
    for key in ("enrolled_since_start", "active", "exited", "full_year_persons"):
        if figures[key] is not None and figures[key] != expected[key]:
            differences.append(f"{key}: {figures[key]} != {expected[key]}")
    for reason, count in expected["exit_reasons"].items():
        got = figures["exit_reasons"][reason]
        if got is not None and got != count:
            differences.append(f"exit_reasons.{reason}: {got} != {count}")
    return differences


# ------------------------------------------------------------------------------------
# Through the gateway


class Api:
    def __init__(self, gateway_url: str, admin_secret: str) -> None:
        self.http = httpx.Client(base_url=gateway_url, timeout=60.0)
        self.admin_secret = admin_secret
        self.tokens: dict[str, tuple[str, float]] = {}
        self.credentials: dict[str, tuple[str, str]] = {}

    def close(self) -> None:
        self.http.close()

    def _issue(self, client_id: str, secret: str) -> str:
        response = self.http.post("/v1/auth/token", data={
            "grant_type": "client_credentials", "client_id": client_id,
            "client_secret": secret})
        if response.status_code != 200:
            raise BenchError(f"token request: {response.status_code} {response.text[:300]}")
        return response.json()["access_token"]

    def make_client(self, role: str) -> None:
        admin = self._issue(ADMIN_CLIENT_ID, self.admin_secret)
        response = self.http.post("/v1/admin/clients", json={"name": f"bench {role}",
                                                              "role": role},
                                  headers={"Authorization": f"Bearer {admin}"})
        if response.status_code != 201:
            raise BenchError(f"create {role} client: {response.status_code} "
                             f"{response.text[:300]}")
        body = response.json()
        self.credentials[role] = (body["client_id"], body["client_secret"])

    def headers(self, role: str) -> dict[str, str]:
        token, at = self.tokens.get(role, ("", 0.0))
        if not token or time.monotonic() - at > TOKEN_REFRESH_AFTER_SECONDS:
            token = self._issue(*self.credentials[role])
            self.tokens[role] = (token, time.monotonic())
        return {"Authorization": f"Bearer {token}"}

    def report(self, as_of: date) -> tuple[float, dict[str, Any]]:
        headers = self.headers("team_lead")
        began = time.perf_counter()
        response = self.http.get("/v1/reports/enrolment", params={"as_of": as_of.isoformat()},
                                 headers=headers)
        elapsed = (time.perf_counter() - began) * 1000
        if response.status_code != 200:
            raise BenchError(f"report as of {as_of}: {response.status_code} "
                             f"{response.text[:300]}")
        return elapsed, response.json()

    def lookup(self, cpr: str, expected_id: uuid.UUID) -> float:
        headers = self.headers("caseworker")
        began = time.perf_counter()
        response = self.http.post("/v1/citizens/lookup", json={"cpr": cpr}, headers=headers)
        elapsed = (time.perf_counter() - began) * 1000
        if response.status_code != 200 or response.json().get("id") != str(expected_id):
            raise BenchError(f"lookup: {response.status_code} {response.text[:300]}")
        return elapsed


@dataclass
class Latency:
    name: str
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    target_p95_ms: float

    @property
    def passed(self) -> bool:
        return self.p95_ms < self.target_p95_ms


def latency(name: str, samples: list[float], target: float) -> Latency:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return Latency(name, len(samples), cuts[49], cuts[94], cuts[98], max(samples), target)


def print_table(rows: list[Latency]) -> None:
    header = (f"{'measurement':<44} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
              f"{'max ms':>8}   {'target p95':>11}  result")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row.name:<44} {row.count:>5} {row.p50_ms:>8.1f} {row.p95_ms:>8.1f} "
              f"{row.p99_ms:>8.1f} {row.max_ms:>8.1f}   {'< ' + format(row.target_p95_ms, 'g'):>11}"
              f"  {'PASS' if row.passed else 'FAIL'}")


# ------------------------------------------------------------------------------------
# Main




def run(args: argparse.Namespace) -> int:
    bindir = find_bindir()
    if bindir is None:
        raise BenchError("PostgreSQL server binaries (initdb, pg_ctl) are not installed "
                         "(Debian package: postgresql)")
    today = local_today()
    programme_start = date(today.year - YEARS_OF_HISTORY, 1, 1)
    tmp = Path(tempfile.mkdtemp(prefix="sikkerby-bench-citizens-"))
    processes = Processes(tmp)
    cluster = BenchCluster(bindir)
    api: Api | None = None
    try:
        print("Starting a throwaway PostgreSQL cluster from the installed server binaries...",
              flush=True)
        cluster.start()
        citizens_url = cluster.create_database("citizens")
        gateway_db_url = cluster.create_database("gateway")
        dsn = cluster.dsn(citizens_url)

        names = ["gateway", *(s.value for s in DOWNSTREAM_SERVICES)]
        ports = dict(zip(names, free_ports(len(names)), strict=True))
        # The keys the rows are built with are the keys the service is given.
        bench_env = system_environment(tmp / "data", ports, {
            "citizens": citizens_url, "gateway": gateway_db_url})
        print("Migrating the citizens and gateway databases (alembic, the real "
              "migrations)...", flush=True)
        with environment(bench_env):
            settings = Settings()
            shared = prepare(settings)
        cipher, hasher = cipher_from_settings(settings), hasher_from_settings(settings)
        assert cipher is not None and hasher is not None
        keys = CprKeys(cipher, hasher)

        print(f"Building {args.citizens:,} citizens with enrolment histories from "
              f"{programme_start} to {today} ({args.workers} worker processes, COPY)...",
              flush=True)
        began = time.perf_counter()
        tally = build(dsn, settings, args.citizens, args.workers, args.seed,
                      programme_start, today)
        build_seconds = time.perf_counter() - began
        began = time.perf_counter()
        vacuum_analyze(dsn)
        analyze_seconds = time.perf_counter() - began
        print(f"Built in {build_seconds:.1f} s ({tally.citizens / build_seconds:,.0f} "
              f"citizens/s); VACUUM ANALYZE {analyze_seconds:.1f} s.")
        print(f"  {tally.persons:,} enrolled at some time ({tally.citizens - tally.persons:,} "
              f"never), {tally.reenrolled:,} of them re-enrolled, {tally.active:,} "
              f"active today, {tally.periods:,} periods")
        print("  latest exits: " + ", ".join(
            f"{r.value} {tally.by_reason.get(r.value, 0):,}" for r in ExitReason))
        check_data(dsn, keys, tally)

        print("Restarting PostgreSQL with fsync on (the load ran without it)...", flush=True)
        cluster.restart_durable()
        print("  " + table_sizes(dsn))

        gateway_url = f"http://{HOST}:{ports['gateway']}"
        citizens_service = f"http://{HOST}:{ports['citizens']}"
        processes.start("citizens", uvicorn_command(
            APP_FACTORIES[ServiceName.citizens], ports["citizens"]),
            child_environment(bench_env, shared, ServiceName.citizens))
        processes.start("gateway", uvicorn_command(
            APP_FACTORIES[ServiceName.gateway], ports["gateway"]),
            child_environment(bench_env, shared, ServiceName.gateway))
        wait_healthy(processes, "citizens", citizens_service)
        wait_healthy(processes, "gateway", gateway_url)

        api = Api(gateway_url, bench_env["SIKKERBY_ADMIN_CLIENT_SECRET"])
        api.make_client("team_lead")
        api.make_client("caseworker")

        # Sanity first: the report for today says what the builder counted.
        _, figures = api.report(today)
        print()
        print(f"The report as of {today}, through the gateway:")
        print("  " + json.dumps(figures))
        differences = report_matches(figures, expected_report(tally, today))
        if differences:
            raise BenchError("the report disagrees with the builder's count: "
                             + "; ".join(differences))
        print("  matches the builder's own count of persons, active, exits by reason and "
              "full-year persons")

        rng = random.Random(args.seed)
        span = (today - programme_start).days
        spread = [programme_start + timedelta(days=round(span * k / (args.report_requests - 1)))
                  for k in range(args.report_requests)]
        rng.shuffle(spread)
        numbers = [rng.randrange(args.citizens) for _ in range(args.lookup_requests)]

        print()
        print("Measuring, one request at a time, through the gateway (keep-alive client):")
        load_before = load_average()
        print(f"  warm-up: {WARMUP_REPORTS} reports and {WARMUP_LOOKUPS} lookups, not counted")
        for k in range(WARMUP_REPORTS):
            api.report(spread[k % len(spread)])
        for number in numbers[:WARMUP_LOOKUPS]:
            api.lookup(cpr_of(number), citizen_id_of(args.seed, number))
        processes.check_alive()
        print(f"  {len(spread)} reports, as_of spread evenly over {programme_start} .. {today}",
              flush=True)
        spread_ms = [api.report(day)[0] for day in spread]
        print(f"  {args.today_requests} reports, as_of today (every period counts)",
              flush=True)
        today_ms = [api.report(today)[0] for _ in range(args.today_requests)]
        print(f"  {len(numbers)} lookups of random existing CPR numbers (with and without "
              "the dash)", flush=True)
        lookup_ms = []
        for k, number in enumerate(numbers):
            cpr = cpr_of(number)
            lookup_ms.append(api.lookup(cpr if k % 2 else f"{cpr[:6]}-{cpr[6:]}",
                                        citizen_id_of(args.seed, number)))
        processes.check_alive()

        load_after = load_average()
        rows = [
            latency("GET /v1/reports/enrolment, as_of spread", spread_ms,
                    REPORT_P95_TARGET_MS),
            latency("GET /v1/reports/enrolment, as_of today", today_ms, REPORT_P95_TARGET_MS),
            latency("POST /v1/citizens/lookup", lookup_ms, LOOKUP_P95_TARGET_MS),
        ]
        print()
        print(f"Results: {tally.citizens:,} citizens, {tally.periods:,} periods; built in "
              f"{build_seconds:.0f} s on {os.cpu_count()} CPU(s); load average (1 min) "
              f"{load_before} before measuring, {load_after} after")
        print_table(rows)
        print(f"Targets: report p95 < {REPORT_P95_TARGET_MS:g} ms, lookup p95 < "
              f"{LOOKUP_P95_TARGET_MS:g} ms (sequential requests through the gateway; the")
        print("service, the gateway, PostgreSQL and this client share the machine's CPUs).")

        plan, direct = explain_report(citizens_url, today)
        if direct != figures:
            raise BenchError("the report computed in-process differs from the API's answer")
        print()
        print(f"EXPLAIN (ANALYZE, BUFFERS) of the report's query (as_of {today}), the exact "
              "statement the service sends:")
        print("\n".join("  " + line for line in plan.splitlines()))

        if args.json:
            out = Path(args.json)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({
                "citizens": tally.citizens, "periods": tally.periods,
                "build_seconds": round(build_seconds, 1),
                "vacuum_analyze_seconds": round(analyze_seconds, 1),
                "workers": args.workers, "cpu_count": os.cpu_count(),
                "load_average_before": load_before, "load_average_after": load_after,
                "report_as_of_today": figures,
                "results": [asdict(row) | {"passed": row.passed} for row in rows],
                "report_plan": plan,
            }, indent=2) + "\n")
            print(f"\nResults written to {args.json}")
        failed = not all(row.passed for row in rows)
        return 1 if (args.strict and failed) else 0
    finally:
        if api is not None:
            api.close()
        processes.stop_all()
        cluster.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.citizens.run", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--citizens", type=int, default=None,
                        help=f"citizens to build (default {DEFAULT_CITIZENS:,}; "
                        f"{QUICK_CITIZENS:,} with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke run: {QUICK_CITIZENS:,} citizens and fewer requests")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="processes building and loading rows (default: one per CPU)")
    parser.add_argument("--seed", type=int, default=2026, help="the data set's seed")
    parser.add_argument("--report-requests", type=int, default=80,
                        help="reports with as_of spread over the years (default 80)")
    parser.add_argument("--today-requests", type=int, default=40,
                        help="reports as of today (default 40)")
    parser.add_argument("--lookup-requests", type=int, default=1000,
                        help="CPR lookups (default 1000)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a target fails (default: report only)")
    args = parser.parse_args(argv)
    if args.citizens is None:
        args.citizens = QUICK_CITIZENS if args.quick else DEFAULT_CITIZENS
    if args.quick:
        args.report_requests, args.today_requests, args.lookup_requests = 30, 20, 300
    if not 1_000 <= args.citizens <= MAX_CITIZENS:
        parser.error(f"--citizens must be between 1,000 and {MAX_CITIZENS:,}")
    if not 1 <= args.workers <= 32:
        parser.error("--workers must be between 1 and 32")
    if args.report_requests < 20 or args.today_requests < 20 or args.lookup_requests < 100:
        parser.error("at least 20 reports of each kind and 100 lookups (for a p95)")
    return args


def main(argv: list[str] | None = None) -> int:
    return bench_main(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
