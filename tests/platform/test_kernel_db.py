"""The kernel against a real, migrated database: transactions, audit chain,
idempotency keys. Each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import concurrent.futures
import uuid
from datetime import UTC, datetime

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from services.platform.app import create_service_app
from services.platform.audit import AuditEntry, append_entries, record_access, verify_chain
from services.platform.crypto import KeyedHasher
from services.platform.db import DbSession, make_engine, new_session
from services.platform.idempotency import (
    claim_idempotency_key,
    request_fingerprint,
    store_idempotent_response,
)
from services.platform.migrate import upgrade
from services.platform.problems import Conflict, IdempotencyKeyReused
from services.platform.scopes import Role, Scope
from services.platform.settings import ServiceName, Settings
from services.platform.tokens import Principal
from services.providers.models import Provider


@pytest.fixture
def engine(database_url: str):
    upgrade(ServiceName.providers, database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


HASHER = KeyedHasher(b"k" * 32)
CALLER = Principal(client_id="c-test", role=Role.caseworker,
                   scopes=frozenset({Scope.citizens_read}), provider_id=None,
                   token_id="j", expires_at=2**31)


class Refused(Conflict):
    code = "refused_for_test"


def kernel_app(database_url: str, tmp_path):
    """A real service app (the platform factory) with routes that exercise the
    transaction dependency; the principal is fixed because auth has its own tests."""
    router = APIRouter()

    @router.post("/write-then-refuse")
    def write_then_refuse(session: DbSession) -> None:
        session.add(Provider(name="half", cvr="11111111", created_at=datetime.now(UTC)))
        record_access(session, CALLER, action="provider.create", resource="provider",
                      purpose="test", citizen_id=uuid.UUID(int=1))
        session.flush()
        raise Refused("no")

    @router.post("/write")
    def write(session: DbSession) -> dict[str, str]:
        session.add(Provider(name="whole", cvr="22222222", created_at=datetime.now(UTC)))
        record_access(session, CALLER, action="provider.create", resource="provider",
                      purpose="test")
        return {"ok": "yes"}

    @router.post("/duplicate")
    def duplicate(session: DbSession) -> dict[str, str]:
        # The unique violation surfaces only at flush/commit: the dependency must turn it
        # into an error answer, never a 2xx.
        session.add(Provider(name="dup", cvr="22222222", created_at=datetime.now(UTC)))
        return {"ok": "yes"}

    settings = Settings(env="test", data_dir=tmp_path, providers_database_url=database_url)
    return create_service_app(ServiceName.providers, settings, [router], title="kernel test")


def test_refusal_rolls_back_and_is_audited(database_url: str, engine, tmp_path) -> None:
    with TestClient(kernel_app(database_url, tmp_path), raise_server_exceptions=False) as client:
        response = client.post("/write-then-refuse", headers={"X-Request-ID": "req-1"})
        assert response.status_code == 409 and response.json()["code"] == "refused_for_test"
        assert client.post("/write").status_code == 200
        failed = client.post("/duplicate")
        assert failed.status_code == 500 and failed.json()["code"] == "internal_error"
        assert "22222222" not in failed.text and "provider" not in failed.text.lower()
    with new_session(engine) as session:
        names = [p.name for p in session.exec(select(Provider))]
        assert names == ["whole"]
        entries = list(session.exec(select(AuditEntry).order_by(AuditEntry.seq)))
        assert [(e.outcome, e.request_id) for e in entries][0] == (
            "refused:refused_for_test", "req-1")
        assert entries[0].citizen_id == uuid.UUID(int=1)
        assert [e.outcome for e in entries[1:]] == ["success"]
        assert verify_chain(session) == (True, 2)


def _entries(n: int, actor: str = "c-test"):
    from services.platform.audit import PendingEntry

    return [PendingEntry(at=datetime.now(UTC), actor=actor, role="caseworker",
                         action="citizen.read", resource=f"citizen/{i}", citizen_id=uuid.uuid4(),
                         purpose="case", outcome="success", request_id=f"r{i}")
            for i in range(n)]


def test_audit_chain_detects_a_changed_or_deleted_entry(engine, backend: str) -> None:
    with new_session(engine) as session:
        append_entries(session, _entries(5))
        session.commit()
        assert verify_chain(session) == (True, 5)
        # The application cannot change or delete an entry...
        for statement in ("UPDATE audit_entry SET actor = 'someone' WHERE seq = 3",
                          "DELETE FROM audit_entry WHERE seq = 2"):
            with pytest.raises(DBAPIError):
                session.execute(text(statement))
            session.rollback()
    # ...and when someone with more power does, verification fails.
    with engine.begin() as connection:
        if backend == "postgresql":
            connection.execute(text("ALTER TABLE audit_entry DISABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER audit_entry_no_update"))
        connection.execute(text("UPDATE audit_entry SET actor = 'someone' WHERE seq = 3"))
    with new_session(engine) as session:
        assert verify_chain(session) == (False, 2)


def test_concurrent_appends_keep_one_chain(engine) -> None:
    def append(worker: int) -> None:
        for _ in range(5):
            with new_session(engine) as session:
                append_entries(session, _entries(2, actor=f"w{worker}"))
                session.commit()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(append, range(8)))
    with new_session(engine) as session:
        assert verify_chain(session) == (True, 80)


def test_idempotency_key_semantics(engine) -> None:
    first = request_fingerprint(HASHER, "POST", "/v1/attendance", b'{"a":1}')
    other = request_fingerprint(HASHER, "POST", "/v1/attendance", b'{"a":2}')
    with new_session(engine) as session:
        assert claim_idempotency_key(session, "c1", "key-1", first) is None
        store_idempotent_response(session, "c1", "key-1", 200, {"accepted": 1})
        session.commit()
    with new_session(engine) as session:
        stored = claim_idempotency_key(session, "c1", "key-1", first)
        assert stored is not None and stored.status_code == 200
        assert stored.body == {"accepted": 1}
        with pytest.raises(IdempotencyKeyReused):
            claim_idempotency_key(session, "c1", "key-1", other)
        session.rollback()
    with new_session(engine) as session:
        # Keys are per client: another client's same key is its own.
        assert claim_idempotency_key(session, "c2", "key-1", other) is None
        session.rollback()
    with new_session(engine) as session:
        # A claim whose transaction rolled back leaves nothing behind: a retry runs afresh.
        assert claim_idempotency_key(session, "c1", "key-2", first) is None
        session.rollback()
    with new_session(engine) as session:
        assert claim_idempotency_key(session, "c1", "key-2", first) is None
        session.rollback()


def test_concurrent_requests_with_one_key_claim_it_once(engine) -> None:
    fingerprint = request_fingerprint(HASHER, "POST", "/v1/attendance", b"{}")

    def attempt(_: int) -> str:
        with new_session(engine) as session:
            stored = claim_idempotency_key(session, "c1", "same-key", fingerprint)
            if stored is not None:
                return "replayed"
            store_idempotent_response(session, "c1", "same-key", 201, {"id": "x"})
            session.commit()
            return "claimed"

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(16)))
    assert outcomes.count("claimed") == 1 and outcomes.count("replayed") == 15
