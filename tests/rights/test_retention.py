"""`sikkerby retention run`: what has passed its time goes, tested by moving the clock
(`--today` years ahead) over data built through the API, on SQLite and PostgreSQL.

The tests in this module run in order on one system: each run of retention is a step
further in time, and what a run removed stays removed."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import inspect, text
from sqlmodel import Session, select

from gateway.cli import main, retention_run
from services.activation.models import AttendanceRecord, Placement
from services.activation.retention import ANONYMOUS
from services.platform.audit import AuditEntry, verify_chain
from services.platform.clock import add_years, local_today
from services.platform.db import make_engine
from services.platform.idempotency import IdempotencyKey
from services.platform.settings import ServiceName

from ..support.builders import enrolled_citizen, make_contract, make_cpr, make_provider, place
from ..support.system import System, bearer

T = local_today()
RIGHTS_DBS = (ServiceName.citizens, ServiceName.activation, ServiceName.security)


def day(offset: int, base: date = T) -> str:
    return (base + timedelta(days=offset)).isoformat()


def ok(response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture(scope="module")
def world(system: System) -> dict:
    """Three citizens with placements and attendance, and four police uploads."""
    admin = bearer(system.admin_token())
    w: dict = {"caseworker": bearer(system.token_for("caseworker")),
               "police": bearer(system.token_for("police")),
               "security": bearer(system.token_for("security_officer")),
               "analyst": bearer(system.token_for("analyst"))}
    cw = w["caseworker"]
    with system.http() as http:
        provider = make_provider(http, admin)
        contract = make_contract(http, admin, provider["id"], starts_on="2025-01-01",
                                 ends_on=day(400))
        w["provider"] = bearer(system.token_for("provider", provider_id=provider["id"]))

        def placement(citizen: dict, starts_on: str, ends_on: str) -> str:
            return ok(place(http, cw, citizen["id"], contract["id"], weekly_hours=10,
                            starts_on=starts_on, ends_on=ends_on), 201)["id"]

        def attendance(records: list[dict], key: str | None = None) -> None:
            headers = {**w["provider"], **({"Idempotency-Key": key} if key else {})}
            ok(http.post("/v1/attendance", headers=headers, json={"records": records}))

        # A: one period, exited yesterday; an absence case; a correction; a keyed batch.
        a = enrolled_citizen(http, cw)
        w["a_placement"] = placement(a, day(-20), day(30))
        w["a_key"] = f"batch-{uuid.uuid4()}"
        w["a_batch"] = [
            {"placement_id": w["a_placement"], "date": day(-10), "status": "present",
             "hours": 6},
            {"placement_id": w["a_placement"], "date": day(-9), "status": "absent_unexcused"},
            {"placement_id": w["a_placement"], "date": day(-8), "status": "present",
             "hours": 5}]
        attendance(w["a_batch"], key=w["a_key"])
        attendance([{"placement_id": w["a_placement"], "date": day(-8), "status": "late",
                     "hours": 4}])
        ok(http.post(f"/v1/citizens/{a['id']}/exit", headers=cw,
                     json={"exited_on": day(-1), "reason": "job"}))
        # B: still enrolled.
        b = enrolled_citizen(http, cw)
        w["b_placement"] = placement(b, day(-20), day(30))
        attendance([{"placement_id": w["b_placement"], "date": day(-10), "status": "present",
                     "hours": 6}])
        # C: a first period that ended on 3 March 2025, and a second one still open.
        c = enrolled_citizen(http, cw)
        w["c_first"] = placement(c, "2025-02-03", "2025-02-28")
        attendance([{"placement_id": w["c_first"], "date": "2025-02-10", "status": "present",
                     "hours": 2}])
        ok(http.post(f"/v1/citizens/{c['id']}/exit", headers=cw,
                     json={"exited_on": "2025-03-03", "reason": "other"}))
        ok(http.post(f"/v1/citizens/{c['id']}/enrolments", headers=cw,
                     json={"enrolled_on": "2025-04-07", "referral_source": "jobcenter"}), 201)
        w["c_second"] = placement(c, day(-20), day(30))
        attendance([{"placement_id": w["c_second"], "date": day(-10), "status": "present",
                     "hours": 2}])
        w.update(a=a, b=b, c=c)

        def upload(cpr: str, valid_from: str, valid_until: str, level: int = 3,
                   measures: list[str] | None = None) -> str:
            return ok(http.post("/v1/threat-assessments", headers=w["police"], json={
                "cpr": cpr, "level": level, "valid_from": valid_from,
                "valid_until": valid_until, "affiliations": [], "measures": measures or []}),
                202)["id"]

        # X: a person unknown to the unit (a referral); expired yesterday.
        w["x_upload"] = upload(make_cpr(date(1987, 3, 4)), day(-30), day(-1))
        # P: a long level-4 assessment, superseded by a short one that has expired since.
        p = enrolled_citizen(http, cw)
        w["p_long"] = upload(p["cpr"], day(-100), day(200), level=4,
                             measures=["individual_only"])
        w["p_short"] = upload(p["cpr"], day(-50), day(-10), level=1)
        # Y: in force until 100 days from now.
        y = enrolled_citizen(http, cw)
        w["y_upload"] = upload(y["cpr"], day(-10), day(100))
        w.update(p=p, y=y)
    return w


@pytest.fixture
def http(system: System):
    with system.http() as client:
        yield client


def run(system: System, today: date, dry_run: bool = False) -> list[str]:
    lines: list[str] = []
    assert retention_run(system.settings, today=today, dry_run=dry_run,
                         say=lines.append) == 0
    return lines


def activation_line(lines: list[str]) -> str:
    return next(line for line in lines if line.startswith("activation:"))


def security_line(lines: list[str]) -> str:
    return next(line for line in lines if line.startswith("security:"))


def snapshot(system: System) -> dict[str, dict[str, list[str]]]:
    """Every row of every table of the three databases retention touches."""
    result = {}
    for service in RIGHTS_DBS:
        engine = make_engine(system.settings.database_url(service), writer=False)
        with engine.connect() as connection:
            tables = inspect(connection).get_table_names()
            result[service.value] = {
                table: sorted(repr(tuple(row)) for row in
                              connection.execute(text(f'SELECT * FROM "{table}"')))  # noqa: S608
                for table in tables}
        engine.dispose()
    return result


def query(system: System, service: ServiceName, sql: str, **params: object) -> list:
    engine = make_engine(system.settings.database_url(service), writer=False)
    with engine.connect() as connection:
        rows = list(connection.execute(text(sql), params))
    engine.dispose()
    return rows


@contextmanager
def activation_session(system: System) -> Iterator[Session]:
    engine = make_engine(system.settings.database_url(ServiceName.activation), writer=False)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def audit(system: System, service: ServiceName) -> tuple[bool, list[AuditEntry]]:
    engine = make_engine(system.settings.database_url(service), writer=False)
    with Session(engine) as session:
        intact, _ = verify_chain(session)
        entries = list(session.exec(select(AuditEntry).order_by(AuditEntry.seq)))
    engine.dispose()
    return intact, entries


def export(http: httpx.Client, world: dict, who: str) -> dict:
    return ok(http.get(f"/v1/citizens/{world[who]['id']}/export",
                       headers=world["caseworker"]))


def settings_env(system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SIKKERBY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SIKKERBY_ENV", "test")
    monkeypatch.setenv("SIKKERBY_DATA_DIR", str(system.settings.data_dir))
    for service in ServiceName:  # every database: the run also cuts every audit chain
        url = getattr(system.settings, f"{service.value}_database_url")
        if url:
            monkeypatch.setenv(f"SIKKERBY_{service.value.upper()}_DATABASE_URL", url)


def test_a_dry_run_prints_what_it_would_do_and_changes_nothing(
        world, system: System, monkeypatch, capsys) -> None:
    settings_env(system, monkeypatch)
    before = snapshot(system)
    far = add_years(T, 20)
    assert main(["retention", "run", "--dry-run", "--today", far.isoformat()]) == 0
    out = capsys.readouterr().out
    assert f"retention as of {far} (dry run: nothing is changed)" in out
    # A's placement and C's first (4 + 1 attendance versions, one keyed batch); B's and
    # C's second are in open periods. Every police upload has long expired by then; the
    # unknown person's subject stays for the referral.
    assert ("activation: 2 placements of 2 citizens to anonymise, 5 attendance versions "
            "to delete, 1 stored idempotent answers to delete") in out
    assert "security: 4 threat assessments and 2 subjects to delete" in out
    assert snapshot(system) == before  # not even an audit entry


def test_the_command_refuses_a_day_that_is_no_date(system: System, monkeypatch) -> None:
    settings_env(system, monkeypatch)
    with pytest.raises(SystemExit) as exit_:
        main(["retention", "run", "--today", "2031-02-30"])
    assert exit_.value.code == 2


def test_a_threat_assessment_goes_a_year_after_it_stopped_being_in_force(
        world, system: System, http) -> None:
    def exists(assessment_id: str) -> bool:
        response = http.get(f"/v1/threat-assessments/{assessment_id}",
                            headers=world["security"])
        assert response.status_code in (200, 404), response.text
        return response.status_code == 200

    def measures(citizen: dict) -> list[str]:
        return ok(http.get(f"/v1/constraints/{citizen['id']}",
                           headers=world["caseworker"]))["measures"]

    assert measures(world["p"]) == []  # the short upload superseded the long one
    assert measures(world["y"]) != []
    a_year_on = add_years(T, 1)  # X expired yesterday: one year from today
    lines = run(system, a_year_on - timedelta(days=1))
    # P's long upload stopped being in force when the short one began (51 days ago),
    # not at its own valid_until: both are due, and deleting them brings nothing back.
    assert not exists(world["p_short"]) and not exists(world["p_long"])
    assert measures(world["p"]) == []
    assert exists(world["x_upload"]) and exists(world["y_upload"])
    assert security_line(lines).startswith("security: 2 threat assessments and 1 subjects "
                                           "deleted")
    assert activation_line(lines).startswith("activation: 0 placements")

    run(system, a_year_on)
    assert not exists(world["x_upload"]) and exists(world["y_upload"])
    referrals = ok(http.get("/v1/referrals", headers=world["security"]))["items"]
    assert referrals, "the referral stays: it is not part of this rule"

    y_due = add_years(T + timedelta(days=101), 1)  # valid through T+100
    run(system, y_due - timedelta(days=1))
    assert exists(world["y_upload"])
    lines = run(system, y_due)
    assert not exists(world["y_upload"]) and measures(world["y"]) == []
    assert security_line(lines).startswith("security: 1 threat assessments and 1 subjects")
    assert query(system, ServiceName.security,
                 "SELECT count(*) FROM threat_subject WHERE citizen_id IS NOT NULL")[0][0] == 0


def reports(http: httpx.Client, world: dict) -> list[dict]:
    analyst = world["analyst"]
    return [ok(http.get("/v1/reports/spending", params={"year": year}, headers=analyst))
            for year in (2025, T.year)] + [
        ok(http.get("/v1/reports/enrolment", params={"as_of": as_of}, headers=analyst))
        for as_of in ("2025-03-31", T.isoformat())]


def test_placements_and_attendance_go_five_years_after_the_exit(
        world, system: System, http) -> None:
    a, c = world["a"], world["c"]
    reports_before = reports(http, world)
    b_before = export(http, world, "b")["activation"]
    with activation_session(system) as session:
        placements_before = len(list(session.exec(select(Placement.id))))

    # C's first period ended on 3 March 2025: its placement goes on 3 March 2030.
    lines = run(system, date(2030, 3, 2))
    assert activation_line(lines).startswith("activation: 0 placements")
    lines = run(system, date(2030, 3, 3))
    assert activation_line(lines).startswith(
        "activation: 1 placements of 1 citizens anonymised, 1 attendance versions deleted")
    c_now = export(http, world, "c")["activation"]
    assert [p["id"] for p in c_now["placements"]] == [world["c_second"]]
    assert {r["placement_id"] for r in c_now["attendance"]} == {world["c_second"]}

    # A exited yesterday: everything stays until five years from yesterday.
    a_due = add_years(T - timedelta(days=1), 5)
    run(system, a_due - timedelta(days=1))
    assert [p["id"] for p in export(http, world, "a")["activation"]["placements"]] == [
        world["a_placement"]]
    lines = run(system, a_due)
    assert activation_line(lines).startswith(
        "activation: 1 placements of 1 citizens anonymised, 4 attendance versions deleted, "
        "1 stored idempotent answers deleted")
    a_now = export(http, world, "a")
    assert a_now["activation"]["placements"] == [] and a_now["activation"]["attendance"] == []
    # The sanction case is not part of the rule; the placement it names is gone.
    assert [s["placement_id"] for s in a_now["activation"]["sanction_cases"]] == [
        world["a_placement"]]
    assert any(e["action"] == "retention.anonymise" and e["role"] == "system"
               for e in a_now["access_log"])
    assert export(http, world, "b")["activation"]["placements"] == b_before["placements"]
    assert export(http, world, "b")["activation"]["attendance"] == b_before["attendance"]

    # Anonymised, not deleted: nothing ties a row to a person, the accounts still add up.
    with activation_session(system) as session:
        placements = list(session.exec(select(Placement)))
        assert len(placements) == placements_before
        assert not {world["a_placement"], world["c_first"]} & {str(p.id) for p in placements}
        anonymous = [p for p in placements if p.citizen_id == ANONYMOUS]
        assert len(anonymous) == 2
        assert all((p.created_by, p.cohort_id, p.end_reason, p.absence_notice_given_on)
                   == ("retention", None, None, None) for p in anonymous)
        assert uuid.UUID(a["id"]) not in {p.citizen_id for p in placements}
        assert uuid.UUID(a["id"]) not in set(session.exec(select(AttendanceRecord.citizen_id)))
        bodies = session.exec(select(IdempotencyKey.response_body))
        assert not any(world["a_placement"] in (body or "") for body in bodies)
    # Reports: the spending of 2025 and this year, and the enrolment counts, unchanged.
    assert reports(http, world) == reports_before

    # A retry of the keyed batch now names a placement that is not there: refused whole.
    retry = http.post("/v1/attendance", json={"records": world["a_batch"]},
                      headers={**world["provider"], "Idempotency-Key": world["a_key"]})
    assert retry.status_code == 404, retry.text

    # Nothing left to do, and every run is on record, with the chains intact.
    assert activation_line(run(system, a_due)).startswith("activation: 0 placements")
    for service in RIGHTS_DBS:
        intact, entries = audit(system, service)
        assert intact, service
        assert any(e.action == "retention.run" and e.role == "system" for e in entries)
    anonymised = {e.citizen_id for e in audit(system, ServiceName.activation)[1]
                  if e.action == "retention.anonymise"}
    assert anonymised == {uuid.UUID(a["id"]), uuid.UUID(c["id"])}
