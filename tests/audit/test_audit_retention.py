"""Audit retention: entries past their time go, only those, and only through a cut that
verification accepts; on SQLite and on PostgreSQL as deployed (the services as a role
that owns nothing, retention as the owner).

The tests in this module run in order on one system: a cut made by one stays."""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from gateway.cli import main
from services.platform import audit_retention
from services.platform.audit import AuditCut, AuditEntry
from services.platform.clock import LOCAL_ZONE, add_years, local_today
from services.platform.db import make_engine, new_session
from services.platform.settings import ServiceName

from ..support.builders import make_contract, make_provider, register
from ..support.system import System, bearer
from .conftest import AuditSystem, as_owner, plain


class Retention:
    client_id = "test-retention"
    role = "system"


def verify(http: httpx.Client, auditor: dict[str, str]) -> dict[str, Any]:
    response = http.get("/v1/audit/verify", headers=auditor)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def admin(system: System) -> dict[str, str]:
    return bearer(system.admin_token())


def activity(http: httpx.Client, caseworker: dict[str, str], admin: dict[str, str]) -> None:
    """Entries in every service's chain, and the gateway's."""
    citizen = register(http, caseworker)
    assert http.get(f"/v1/citizens/{citizen['id']}", headers=caseworker).status_code == 200
    assert http.put(f"/v1/hours-caps/{citizen['id']}", headers=caseworker,
                    json={"weekly_hours": 20, "reason": "assessed"}).status_code == 200
    assert http.get(f"/v1/constraints/{citizen['id']}", headers=caseworker).status_code == 200
    make_contract(http, admin, make_provider(http, admin)["id"])


def chain(audit_system: AuditSystem, service: ServiceName) -> list[tuple[int, datetime]]:
    engine = make_engine(audit_system.owner_urls[service], writer=False)
    try:
        with new_session(engine) as session:
            return [(seq, at) for seq, at in session.exec(
                select(AuditEntry.seq, AuditEntry.at).order_by(AuditEntry.seq))]
    finally:
        engine.dispose()


def cut(audit_system: AuditSystem, service: ServiceName, before: datetime
        ) -> audit_retention.AuditRetention:
    engine = make_engine(audit_system.owner_urls[service])
    try:
        with new_session(engine) as session:
            done = audit_retention.apply(session, Retention(), before)
            session.commit()
            return done
    finally:
        engine.dispose()


def flush_gateway_audit(http: httpx.Client, auditor: dict[str, str]) -> None:
    verify(http, auditor)  # the gateway writes its batched entries before verifying


@pytest.fixture(scope="module")
def halves(system: System, http: httpx.Client, auditor: dict[str, str],
           caseworker: dict[str, str], admin: dict[str, str]) -> datetime:
    """Activity, a verification (which records every chain's head), then the instant
    that splits the entries, then more activity."""
    activity(http, caseworker, admin)
    assert verify(http, auditor)["ok"] is True
    time.sleep(0.05)
    middle = datetime.now(UTC)
    time.sleep(0.05)
    activity(http, caseworker, admin)
    flush_gateway_audit(http, auditor)
    return middle


def test_a_cut_deletes_the_older_entries_and_the_chain_still_verifies(
        audit_system: AuditSystem, http: httpx.Client, auditor: dict[str, str],
        halves: datetime) -> None:
    before = {service: chain(audit_system, service) for service in ServiceName}
    for service in ServiceName:
        older = [seq for seq, at in before[service] if at < halves]
        first_kept = min(seq for seq, at in before[service] if at >= halves)
        done = cut(audit_system, service, halves)
        assert (done.entries, done.first_kept_seq) == (
            len([seq for seq in older if seq < first_kept]), first_kept), service
        after = chain(audit_system, service)
        assert after[0][0] == first_kept, service
        assert all(at >= halves for seq, at in after[:-1]), service
        assert len(after) == len(before[service]) - done.entries + 1  # + the run's entry
    result = verify(http, auditor)
    # Whole, although the heads recorded by the verification before the cut are gone.
    assert result["ok"] is True, result
    for service in ServiceName:
        verified = result["chains"][service.value]
        assert verified["ok"] is True
        assert verified["starts_at_seq"] == chain(audit_system, service)[0][0]
        assert datetime.fromisoformat(verified["retained_before"]) == halves
    # The cut is on record in what remains.
    trail = http.get("/v1/audit", params={"limit": 500}, headers=auditor).json()["items"]
    cuts = [e for e in trail if e["action"] == "audit.retention"]
    assert {e["service"] for e in cuts} == {s.value for s in ServiceName}
    assert all(e["actor"] == "test-retention" and e["role"] == "system" for e in cuts)
    # A second run with the same cut-off finds nothing more to delete.
    for service in ServiceName:
        assert cut(audit_system, service, halves).entries == 0


def test_deleting_the_first_kept_entry_shows(
        audit_system: AuditSystem, http: httpx.Client, auditor: dict[str, str],
        halves: datetime) -> None:
    citizens = ServiceName.citizens
    first_seq = chain(audit_system, citizens)[0][0]
    with as_owner(audit_system, citizens) as connection:
        saved = [dict(row._mapping) for row in connection.execute(
            select(AuditEntry.__table__).where(AuditEntry.seq == first_seq))]
        connection.execute(text("DELETE FROM audit_entry WHERE seq = :s"), {"s": first_seq})
    try:
        verified = verify(http, auditor)["chains"]["citizens"]
        assert (verified["ok"], verified["problem"], verified["broken_at_seq"]) == (
            False, "entry_changed_or_deleted", chain(audit_system, citizens)[0][0])
    finally:
        with as_owner(audit_system, citizens) as connection:
            connection.execute(AuditEntry.__table__.insert(), saved)
    assert verify(http, auditor)["ok"] is True


def test_a_prefix_that_does_not_verify_is_not_cut(
        audit_system: AuditSystem, http: httpx.Client, auditor: dict[str, str],
        caseworker: dict[str, str], admin: dict[str, str]) -> None:
    activation = ServiceName.activation
    activity(http, caseworker, admin)
    entries = chain(audit_system, activation)
    changed = entries[1][0]
    with as_owner(audit_system, activation) as connection:
        actor = connection.execute(text("SELECT actor FROM audit_entry WHERE seq = :s"),
                                   {"s": changed}).scalar_one()
        connection.execute(text("UPDATE audit_entry SET actor = 'someone-else' "
                                "WHERE seq = :s"), {"s": changed})
    try:
        with pytest.raises(audit_retention.ChainNotVerified) as refused:
            cut(audit_system, activation, datetime.now(UTC) + timedelta(days=1))
        assert refused.value.report.broken_at_seq == changed
        assert chain(audit_system, activation) == entries  # nothing deleted
    finally:
        with as_owner(audit_system, activation) as connection:
            connection.execute(text("UPDATE audit_entry SET actor = :a WHERE seq = :s"),
                               {"a": actor, "s": changed})
    assert verify(http, auditor)["ok"] is True


def test_only_entries_below_the_latest_cut_can_be_deleted(
        audit_system: AuditSystem) -> None:
    """Even the owner, triggers on: the kept entries and the cuts are append-only."""
    service = ServiceName.citizens
    first_seq = chain(audit_system, service)[0][0]
    engine = make_engine(audit_system.owner_urls[service])
    try:
        for statement in ("DELETE FROM audit_entry WHERE seq = :s",
                          "UPDATE audit_entry SET actor = 'x' WHERE seq = :s",
                          "UPDATE audit_cut SET first_kept_seq = :s + 1",
                          "DELETE FROM audit_cut"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
                connection.execute(text(statement), {"s": first_seq})
    finally:
        engine.dispose()
    assert chain(audit_system, service)[0][0] == first_seq


def test_on_postgresql_the_application_role_cannot_record_a_cut(
        audit_system: AuditSystem) -> None:
    if not audit_system.app_roles:
        pytest.skip("database roles are PostgreSQL's")
    import psycopg

    service = ServiceName.security
    url = audit_system.system.settings.database_url(service)
    with psycopg.connect(plain(url), autocommit=True) as connection:
        for statement in (
                "INSERT INTO audit_cut (at, before, first_kept_seq, prev_hash, "
                "entries_deleted, request_id) VALUES (now(), now(), 1000000, 'x', 0, 'r')",
                "DELETE FROM audit_cut", "DELETE FROM audit_entry"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute(statement)


def test_the_command_cuts_every_chain_after_the_configured_years(
        audit_system: AuditSystem, http: httpx.Client, auditor: dict[str, str],
        caseworker: dict[str, str], admin: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name in list(os.environ):
        if name.startswith("SIKKERBY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SIKKERBY_ENV", "test")
    monkeypatch.setenv("SIKKERBY_DATA_DIR", str(audit_system.system.settings.data_dir))
    # As deployed: the services' URLs name their own roles (PostgreSQL), and the run
    # connects as each owner, like `migrate`.
    for service, url in audit_system.owner_urls.items():
        name = service.value.upper()
        monkeypatch.setenv(f"SIKKERBY_{name}_DATABASE_URL",
                           audit_system.system.settings.database_url(service))
        monkeypatch.setenv(f"SIKKERBY_{name}_MIGRATION_DATABASE_URL", url)
    activity(http, caseworker, admin)
    flush_gateway_audit(http, auditor)
    today = local_today()
    counts = {service: len(chain(audit_system, service)) for service in ServiceName}

    # Five years on, to the day: what was stamped today is not yet five years old.
    on_the_day = add_years(today, 5)
    assert main(["retention", "run", "--today", on_the_day.isoformat(), "--dry-run"]) == 0
    out = capsys.readouterr().out
    for service in ServiceName:
        assert (f"audit ({service.value}): 0 entries stamped before {today} to delete "
                "(5 years)") in out
    assert {s: len(chain(audit_system, s)) for s in ServiceName} == counts

    # A day later all of it is: every chain keeps only its last entry, and the run's own.
    day_after = on_the_day + timedelta(days=1)
    assert main(["retention", "run", "--dry-run", "--today", day_after.isoformat()]) == 0
    out = capsys.readouterr().out
    for service in ServiceName:
        assert (f"audit ({service.value}): {counts[service] - 1} entries stamped before "
                f"{today + timedelta(days=1)} to delete (5 years)") in out
    assert {s: len(chain(audit_system, s)) for s in ServiceName} == counts

    assert main(["retention", "run", "--today", day_after.isoformat()]) == 0
    out = capsys.readouterr().out
    midnight = datetime.combine(today + timedelta(days=1), datetime.min.time(), LOCAL_ZONE)
    for service in ServiceName:
        # The run's own entries before the cut (retention.run in citizens) go too.
        deleted = re.search(rf"audit \({service.value}\): (\d+) entries stamped before "
                            rf"{today + timedelta(days=1)} deleted \(5 years\)", out)
        assert deleted is not None, (service, out)
        assert int(deleted.group(1)) >= counts[service] - 1
        remaining = chain(audit_system, service)
        assert len(remaining) == 2, (service, remaining)
        engine = make_engine(audit_system.owner_urls[service], writer=False)
        try:
            with new_session(engine) as session:
                last_cut = session.exec(select(AuditCut).order_by(AuditCut.id.desc())).first()
                last = session.exec(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        finally:
            engine.dispose()
        assert last_cut is not None and last is not None
        assert (last_cut.entries_deleted, last_cut.first_kept_seq, last_cut.before) == (
            int(deleted.group(1)), remaining[0][0], midnight)
        assert last.action == "audit.retention" and last.actor == "sikkerby-retention"
    result = verify(http, auditor)
    assert result["ok"] is True, result
    assert {name: datetime.fromisoformat(c["retained_before"])
            for name, c in result["chains"].items()} == {s.value: midnight for s in ServiceName}
