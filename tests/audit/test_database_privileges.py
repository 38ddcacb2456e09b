"""PostgreSQL: the application's role may append to the audit log and read it, nothing
more. The append-only trigger stops UPDATE and DELETE, but a table's owner can disable,
drop or replace it; so the services connect as a role that owns nothing, with exactly
the grants of `migrations.common.application_role_grants`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from sqlmodel import select

from services.platform.audit import AuditEntry, PendingEntry, append_entries, verify_chain
from services.platform.db import make_engine, new_session
from services.platform.idempotency import claim_idempotency_key, store_idempotent_response
from services.platform.migrate import upgrade
from services.platform.settings import ServiceName

from ..conftest import require_postgres
from ..support.postgres import PostgresCluster
from .conftest import create_application_role, plain

REFUSED = [
    "UPDATE audit_entry SET actor = 'someone-else'",
    "DELETE FROM audit_entry",
    "TRUNCATE audit_entry",  # fires no row trigger: only the privilege stops it
    "ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only",
    "ALTER TABLE audit_entry DISABLE TRIGGER ALL",
    "DROP TRIGGER audit_entry_append_only ON audit_entry",
    "CREATE OR REPLACE FUNCTION audit_entry_append_only() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
    "DROP FUNCTION audit_entry_append_only() CASCADE",
    "DROP TABLE audit_entry",
    "ALTER TABLE audit_entry RENAME TO audit_entry_old",
    "SET session_replication_role = replica",  # would switch every trigger off
    "UPDATE alembic_version SET version_num = 'x'",
]


def _entries(n: int) -> list[PendingEntry]:
    return [PendingEntry(at=datetime.now(UTC), actor="c-app", role="caseworker",
                         action="citizen.read", resource=f"citizen/{i}",
                         citizen_id=uuid.uuid4(), purpose="case_handling", outcome="success",
                         request_id=f"r{i}") for i in range(n)]


def test_the_application_role_can_append_and_read_the_audit_log_and_nothing_more(
        pg_cluster: PostgresCluster | None) -> None:
    cluster = require_postgres(pg_cluster)
    owner_url = cluster.create_database("grants")
    upgrade(ServiceName.citizens, owner_url)  # as the owner, like `sikkerby migrate`
    role, _, app_url = create_application_role(owner_url, owner_url.rsplit("/", 1)[1])

    with psycopg.connect(plain(owner_url)) as owner:
        granted = {row[0] for row in owner.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = %s AND table_name = 'audit_entry'", (role,))}
        owners = {row[0] for row in owner.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")}
    assert granted == {"SELECT", "INSERT"}
    assert role not in owners

    # What the application does works: append (the chain lock included) and read...
    engine = make_engine(app_url)
    try:
        with new_session(engine) as session:
            append_entries(session, _entries(3))
            session.commit()
            assert verify_chain(session) == (True, 3)
            assert len(session.exec(select(AuditEntry)).all()) == 3
            # ...and its other tables stay fully writable.
            assert claim_idempotency_key(session, "c-app", "k1", "f" * 64) is None
            store_idempotent_response(session, "c-app", "k1", 200, {"ok": True})
            session.commit()
    finally:
        engine.dispose()

    # Everything that could change or remove an entry is refused for want of privilege,
    # before any trigger is asked.
    for statement in REFUSED:
        with psycopg.connect(plain(app_url)) as app, pytest.raises(
                psycopg.errors.InsufficientPrivilege):
            app.execute(statement)

    with psycopg.connect(plain(owner_url)) as owner:
        assert owner.execute("SELECT count(*) FROM audit_entry").fetchone() == (3,)
        assert owner.execute(
            "SELECT tgenabled FROM pg_trigger WHERE tgname = 'audit_entry_append_only'"
        ).fetchall() == [("O",)]  # still there, still enabled
