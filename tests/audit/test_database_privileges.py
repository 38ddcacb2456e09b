"""PostgreSQL: the application's role may append to the audit log and read it, nothing
more. The append-only trigger stops UPDATE and DELETE, but a table's owner can disable,
drop or replace it; so the services connect as a role that owns nothing, with exactly
the grants of `migrations.common.application_role_grants`."""

from __future__ import annotations

import psycopg
import pytest
from sqlmodel import select

from services.platform.audit import AuditEntry, append_entries, verify_chain
from services.platform.db import make_engine, new_session
from services.platform.idempotency import claim_idempotency_key, store_idempotent_response
from services.platform.migrate import upgrade
from services.platform.settings import ServiceName

from ..conftest import require_postgres
from ..support.audit_log import REFUSED_ON_THE_AUDIT_LOG, audit_entries
from ..support.postgres import PostgresCluster
from .conftest import create_application_role, plain


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
            append_entries(session, audit_entries(3, actor="c-app"))
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
    for statement in REFUSED_ON_THE_AUDIT_LOG:
        with psycopg.connect(plain(app_url)) as app, pytest.raises(
                psycopg.errors.InsufficientPrivilege):
            app.execute(statement)

    with psycopg.connect(plain(owner_url)) as owner:
        assert owner.execute("SELECT count(*) FROM audit_entry").fetchone() == (3,)
        assert owner.execute(
            "SELECT tgenabled FROM pg_trigger WHERE tgname = 'audit_entry_append_only'"
        ).fetchall() == [("O",)]  # still there, still enabled
