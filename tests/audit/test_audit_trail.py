"""The one audit trail: `/v1/audit` and `/v1/audit/verify` at the gateway, merged from
every service's own chain; tamper detection; the services' internal routes."""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import Connection, delete, insert, select, text

from services.platform.audit import GENESIS_HASH, AuditEntry, entry_hash, verify_chain
from services.platform.clock import local_today
from services.platform.db import make_engine, new_session
from services.platform.settings import ServiceName

from ..support.builders import make_provider, register
from ..support.servers import ThreadedServer
from ..support.system import FACTORIES, System, bearer
from .conftest import AuditSystem, as_owner, plain

ROLES_WITHOUT_AUDIT = ["caseworker", "team_lead", "police", "security_officer", "analyst",
                       "admin"]
FIELDS = {"at", "actor", "role", "action", "resource", "citizen_id", "purpose", "outcome",
          "request_id", "hash", "service", "seq"}


@pytest.fixture(scope="module")
def other_roles(system: System) -> dict[str, str]:
    """A token of every role but the auditor's (clients made in parallel: each secret is
    a slow hash)."""
    admin = bearer(system.admin_token())
    with system.http() as http:
        provider = make_provider(http, admin)

    def token(role: str) -> tuple[str, str]:
        extra = {"provider_id": provider["id"]} if role == "provider" else {}
        response = httpx.post(f"{system.url}/v1/admin/clients", headers=admin, timeout=30,
                              json={"name": f"test {role}", "role": role, **extra})
        assert response.status_code == 201, response.text
        client = response.json()
        return role, system.token(client["client_id"], client["client_secret"])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return dict(pool.map(token, [*ROLES_WITHOUT_AUDIT, "provider"]))


def read_all(http: httpx.Client, headers: dict[str, str], **params: Any) -> list[dict]:
    response = http.get("/v1/audit", params={"limit": 500, **params}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return response.json()["items"]


def key(entry: dict) -> tuple[datetime, str, int]:
    return datetime.fromisoformat(entry["at"]), entry["service"], entry["seq"]


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat()


@pytest.fixture(scope="module")
def story(http: httpx.Client, caseworker: dict[str, str]) -> dict[str, Any]:
    """One citizen touched in two services, with a refusal; `until` ends the period."""
    citizen = register(http, caseworker)
    base = {**caseworker, "X-Request-ID": "story-" + uuid.uuid4().hex}
    assert http.get(f"/v1/citizens/{citizen['id']}", headers=base).status_code == 200
    enrolment = {"enrolled_on": "2025-01-06", "referral_source": "police"}
    assert http.post(f"/v1/citizens/{citizen['id']}/enrolments", json=enrolment,
                     headers=caseworker).status_code == 201
    refused_id = "refused-" + uuid.uuid4().hex
    again = http.post(f"/v1/citizens/{citizen['id']}/enrolments", json=enrolment,
                      headers={**caseworker, "X-Request-ID": refused_id})
    assert again.status_code == 409 and again.json()["code"] == "already_enrolled"
    assert http.put(f"/v1/hours-caps/{citizen['id']}", headers=caseworker,
                    json={"weekly_hours": 20, "reason": "assessed"}).status_code == 200
    assert http.get(f"/v1/hours-caps/{citizen['id']}", headers=caseworker).status_code == 200
    time.sleep(0.01)
    return {"citizen": citizen, "refused_id": refused_id, "until": now_rfc3339()}


# Who may read it ----------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/audit", "/v1/audit/verify"])
def test_only_the_auditor_reads_the_audit_log(http: httpx.Client, auditor: dict[str, str],
                                              other_roles: dict[str, str], path: str) -> None:
    assert http.get(path, headers=auditor).status_code == 200
    assert http.get(path).status_code == 401
    assert http.get(path, headers=bearer("not.a.token")).status_code == 401
    tokens = other_roles
    marker = "denied-" + uuid.uuid4().hex
    for role, token in tokens.items():
        response = http.get(path, headers={**bearer(token), "X-Request-ID": f"{marker}-{role}"})
        assert response.status_code == 403, role
        assert response.json()["code"] == "insufficient_scope"
        assert response.headers["content-type"].startswith("application/problem+json")
    # Each refused look is on record, in the gateway's chain.
    refused = [e for e in read_all(http, auditor) if e["request_id"].startswith(marker)]
    assert sorted(e["role"] for e in refused) == sorted(tokens)
    assert {(e["service"], e["outcome"], e["resource"]) for e in refused} == {
        ("gateway", "refused:insufficient_scope", f"GET {path}")}


def test_the_internal_routes_are_not_reachable_through_the_gateway(
        system: System, http: httpx.Client, auditor: dict[str, str],
        caseworker: dict[str, str]) -> None:
    for path in ("/internal/audit", "/internal/audit/verify", "/v1/internal/audit"):
        assert http.get(path, headers=auditor).status_code == 404
    # The service checks the token itself: right scope or nothing, whoever calls.
    citizens = system.settings.service_url(ServiceName.citizens)
    assert httpx.get(f"{citizens}/internal/audit", headers=auditor).status_code == 200
    assert httpx.get(f"{citizens}/internal/audit", headers=caseworker).status_code == 403
    assert httpx.get(f"{citizens}/internal/audit").status_code == 401
    paths = httpx.get(f"{system.url}/openapi.json").json()["paths"]
    assert "/v1/audit" in paths and "/v1/audit/verify" in paths
    assert not [p for p in paths if p.startswith("/internal")]


# What it holds -------------------------------------------------------------------------
def test_the_trail_merges_every_service_in_time_order(
        http: httpx.Client, auditor: dict[str, str], story: dict[str, Any]) -> None:
    citizen_id = story["citizen"]["id"]
    entries = read_all(http, auditor, citizen_id=citizen_id, to=story["until"])
    assert all(set(e) == FIELDS for e in entries)
    assert all(e["citizen_id"] == citizen_id for e in entries)
    assert [key(e) for e in entries] == sorted(key(e) for e in entries)
    actions = [(e["service"], e["action"], e["outcome"]) for e in entries]
    for expected in [("citizens", "citizen.create", "success"),
                     ("citizens", "citizen.read", "success"),
                     ("citizens", "enrolment.create", "success"),
                     ("citizens", "enrolment.create", "refused:already_enrolled")]:
        assert expected in actions
    assert {"activation"} <= {e["service"] for e in entries}
    read = next(e for e in entries if e["action"] == "citizen.read")
    assert read["role"] == "caseworker" and read["purpose"] == "case_handling"
    assert read["resource"] == f"citizen/{citizen_id}"
    assert len(read["hash"]) == 64 and datetime.fromisoformat(read["at"]).tzinfo is not None


def test_a_refused_request_is_on_record_with_its_refusal(
        http: httpx.Client, auditor: dict[str, str], story: dict[str, Any]) -> None:
    entries = read_all(http, auditor, citizen_id=story["citizen"]["id"])
    refused = [e for e in entries if e["request_id"] == story["refused_id"]]
    assert [(e["service"], e["action"], e["outcome"]) for e in refused] == [
        ("citizens", "enrolment.create", "refused:already_enrolled")]


def test_filters_by_time(http: httpx.Client, auditor: dict[str, str],
                         story: dict[str, Any]) -> None:
    citizen_id = story["citizen"]["id"]
    entries = read_all(http, auditor, citizen_id=citizen_id, to=story["until"])
    middle = entries[len(entries) // 2]["at"]
    later = read_all(http, auditor, citizen_id=citizen_id, to=story["until"], **{"from": middle})
    earlier = read_all(http, auditor, citizen_id=citizen_id, to=middle)
    assert earlier + later == entries and earlier and later
    assert all(e["at"] >= middle for e in later)
    # A date is a whole Copenhagen day: `to` includes it.
    today, yesterday = local_today(), local_today() - timedelta(days=1)
    assert read_all(http, auditor, citizen_id=citizen_id, to=str(yesterday)) == []
    assert read_all(http, auditor, citizen_id=citizen_id, to=str(today),
                    **{"from": str(today)})[:len(entries)] == entries
    for bad in ({"from": "yesterday"}, {"to": "2026-05-01T10:00:00"}, {"limit": 501},
                {"limit": 0}, {"cursor": "not-a-cursor"}, {"citizen_id": "123"}):
        response = http.get("/v1/audit", params=bad, headers=auditor)
        assert response.status_code == 422, bad
        assert response.json()["code"] in ("validation_error", "invalid_cursor")


def test_pages_of_the_merged_trail_are_exact(http: httpx.Client, auditor: dict[str, str],
                                             story: dict[str, Any]) -> None:
    until = now_rfc3339()
    everything = read_all(http, auditor, to=until)
    assert len({e["service"] for e in everything}) >= 3
    for limit in (1, 7):
        pages: list[dict] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": limit, "to": until}
            if cursor:
                params["cursor"] = cursor
            response = http.get("/v1/audit", params=params, headers=auditor)
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["items"]) <= limit
            pages += body["items"]
            cursor = body["next_cursor"]
            if cursor is None:
                break
            if limit == 1 and len(pages) >= 40:
                break  # the first 40 are enough one by one
        assert pages == everything[:len(pages)]
        if limit == 7:
            assert pages == everything


def test_reading_the_trail_is_itself_on_record(http: httpx.Client, auditor: dict[str, str],
                                                story: dict[str, Any]) -> None:
    citizen_id = story["citizen"]["id"]
    marker = "look-" + uuid.uuid4().hex
    assert http.get("/v1/audit", params={"citizen_id": citizen_id},
                    headers={**auditor, "X-Request-ID": marker}).status_code == 200
    looks = [e for e in read_all(http, auditor, citizen_id=citizen_id)
             if e["request_id"] == marker]
    assert [(e["service"], e["role"], e["action"], e["purpose"]) for e in looks] == [
        ("gateway", "auditor", "audit.read", "audit")]


# Verification and tampering ------------------------------------------------------------
def verify(http: httpx.Client, auditor: dict[str, str]) -> dict[str, Any]:
    response = http.get("/v1/audit/verify", headers=auditor)
    assert response.status_code == 200, response.text
    return response.json()


TABLE = AuditEntry.__table__  # typed: aware datetimes and UUIDs on both backends


def rows(connection: Connection) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in connection.execute(
        select(TABLE).order_by(TABLE.c.seq))]


def put_back(connection: Connection, saved: list[dict[str, Any]]) -> None:
    connection.execute(delete(TABLE))
    connection.execute(insert(TABLE), saved)


def test_verify_detects_a_changed_deleted_truncated_or_rewritten_chain(
        audit_system: AuditSystem, http: httpx.Client, auditor: dict[str, str],
        story: dict[str, Any]) -> None:
    citizens = ServiceName.citizens
    first = verify(http, auditor)
    assert first["ok"] is True
    assert set(first["chains"]) == {s.value for s in ServiceName}
    assert first["entries"] == sum(c["entries"] for c in first["chains"].values())
    assert first["chains"]["citizens"]["entries"] >= 4
    with as_owner(audit_system, citizens) as connection:
        saved = rows(connection)
    assert len(saved) >= 4 and saved[-1]["hash"] == first["chains"]["citizens"]["head_hash"]
    middle = saved[len(saved) // 2]

    def tampered(change) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        with as_owner(audit_system, citizens) as connection:
            change(connection)
        try:
            return verify(http, auditor)
        finally:
            with as_owner(audit_system, citizens) as connection:
                put_back(connection, saved)
            assert verify(http, auditor)["ok"] is True  # put back exactly, it is whole

    # A changed entry.
    result = tampered(lambda c: c.execute(text(
        "UPDATE audit_entry SET actor = 'someone-else' WHERE seq = :s"), {"s": middle["seq"]}))
    assert result["ok"] is False
    chain = result["chains"]["citizens"]
    assert (chain["ok"], chain["problem"], chain["broken_at_seq"]) == (
        False, "entry_changed_or_deleted", middle["seq"])
    assert all(c["ok"] for name, c in result["chains"].items() if name != "citizens")

    # An entry deleted in the middle: the next one no longer follows.
    result = tampered(lambda c: c.execute(text("DELETE FROM audit_entry WHERE seq = :s"),
                                          {"s": middle["seq"]}))
    assert result["ok"] is False
    assert result["chains"]["citizens"]["problem"] == "entry_changed_or_deleted"
    assert result["chains"]["citizens"]["entries"] == len(saved) - 1

    # The last entry deleted: the chain alone is whole, the head recorded by the last
    # verification is gone.
    result = tampered(lambda c: c.execute(text("DELETE FROM audit_entry WHERE seq = :s"),
                                          {"s": saved[-1]["seq"]}))
    assert result["ok"] is False
    chain = result["chains"]["citizens"]
    assert (chain["problem"], chain["broken_at_seq"], chain["entries"]) == (
        "entries_missing_at_end", saved[-1]["seq"], len(saved) - 1)

    # Everything from the middle on rewritten with freshly computed hashes: every link
    # holds, but the head the last verification recorded is not in the chain any more.
    def rewrite(connection: Connection) -> None:
        connection.execute(delete(TABLE).where(TABLE.c.seq >= middle["seq"]))
        prev = saved[saved.index(middle) - 1]["hash"] if saved.index(middle) else GENESIS_HASH
        forged = []
        for row in saved[saved.index(middle):]:
            row = {**row, "actor": "someone-else" if row is middle else row["actor"]}
            row["prev_hash"] = prev
            row["hash"] = prev = entry_hash(prev, SimpleNamespace(**row))
            forged.append(row)
        connection.execute(insert(TABLE), forged)

    with as_owner(audit_system, citizens) as connection:
        rewrite(connection)
    engine = make_engine(audit_system.owner_urls[citizens])
    try:
        with new_session(engine) as session:
            assert verify_chain(session) == (True, len(saved))  # the chain alone is fooled
    finally:
        engine.dispose()
    result = verify(http, auditor)
    with as_owner(audit_system, citizens) as connection:
        put_back(connection, saved)
    assert result["ok"] is False
    assert result["chains"]["citizens"]["problem"] == "entries_missing_at_end"
    assert verify(http, auditor)["ok"] is True


def test_verification_is_on_record_with_the_heads_it_saw(
        http: httpx.Client, auditor: dict[str, str]) -> None:
    marker = "verify-" + uuid.uuid4().hex
    response = http.get("/v1/audit/verify", headers={**auditor, "X-Request-ID": marker})
    assert response.status_code == 200
    heads = response.json()["chains"]
    entry = next(e for e in read_all(http, auditor) if e["request_id"] == marker)
    assert (entry["service"], entry["action"], entry["outcome"]) == (
        "gateway", "audit.verify", "success")
    for name in ("citizens", "activation"):
        chain = heads[name]
        assert f"{name}:{chain['head_seq']}:{chain['head_hash'][:32]}" in entry["resource"]


def test_on_postgresql_every_service_runs_as_a_role_that_owns_nothing(
        audit_system: AuditSystem, http: httpx.Client, auditor: dict[str, str]) -> None:
    if not audit_system.app_roles:
        pytest.skip("SQLite has no roles: whoever can write the file can change it")
    assert verify(http, auditor)["ok"] is True  # every database has been used
    for service, url in audit_system.owner_urls.items():
        role = audit_system.app_roles[service]
        with psycopg.connect(plain(url)) as owner:
            users = {row[0] for row in owner.execute(
                "SELECT usename FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")}
            owners = {row[0] for row in owner.execute(
                "SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")}
        assert users == {role}, service
        assert role not in owners


# A service down -------------------------------------------------------------------------
def test_a_service_down_is_a_503_naming_it_never_a_partial_trail(
        system: System, http: httpx.Client, auditor: dict[str, str]) -> None:
    service = ServiceName.security
    system.servers[service].stop()
    try:
        for path in ("/v1/audit", "/v1/audit/verify"):
            response = http.get(path, headers=auditor)
            assert response.status_code == 503, response.text
            body = response.json()
            assert body["code"] == "service_unavailable" and body["down"] == ["security"]
            assert "security" in body["detail"]
            assert response.headers["content-type"].startswith("application/problem+json")
    finally:
        app = FACTORIES[service](system.service_settings(service, system.shared))
        system.servers[service] = ThreadedServer(app, system.ports[service]).start()
    assert http.get("/v1/audit", headers=auditor).status_code == 200
