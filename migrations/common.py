"""Tables every service database has: the audit chain and idempotency keys."""

import re

import sqlalchemy as sa
from alembic import op

APPEND_ONLY_SQLITE = [
    """CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry
       BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END""",
    """CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_entry
       BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END""",
]
APPEND_ONLY_POSTGRESQL = [
    """CREATE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit entries are append-only'; END $$""",
    """CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_entry
       FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()""",
]


def create_platform_tables() -> None:
    op.create_table(
        "audit_entry",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("resource", sa.String(300), nullable=False),
        sa.Column("citizen_id", sa.Uuid(), nullable=True),
        sa.Column("purpose", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(100), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    op.create_index("ix_audit_entry_at", "audit_entry", ["at"])
    op.create_index("ix_audit_entry_citizen_id", "audit_entry", ["citizen_id"])
    statements = (APPEND_ONLY_POSTGRESQL if op.get_bind().dialect.name == "postgresql"
                  else APPEND_ONLY_SQLITE)
    for statement in statements:
        op.execute(statement)

    op.create_table(
        "idempotency_key",
        sa.Column("client_id", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def drop_platform_tables() -> None:
    op.drop_table("idempotency_key")
    op.drop_table("audit_entry")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_entry_append_only()")


# Retention (`sikkerby retention run`) may delete the entries below the latest cut that
# it records in audit_cut, and nothing else; a cut itself is never changed or deleted.
RETENTION_SQLITE = [
    "DROP TRIGGER audit_entry_no_delete",
    """CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_entry
       WHEN OLD.seq >= (SELECT coalesce(max(first_kept_seq), 0) FROM audit_cut)
       BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END""",
    """CREATE TRIGGER audit_cut_no_update BEFORE UPDATE ON audit_cut
       BEGIN SELECT RAISE(ABORT, 'audit cuts are append-only'); END""",
    """CREATE TRIGGER audit_cut_no_delete BEFORE DELETE ON audit_cut
       BEGIN SELECT RAISE(ABORT, 'audit cuts are append-only'); END""",
]
RETENTION_POSTGRESQL = [
    """CREATE OR REPLACE FUNCTION audit_entry_append_only() RETURNS trigger
       LANGUAGE plpgsql AS $$
       BEGIN
         -- Nested: PL/pgSQL does not promise to stop at the first false AND operand, and
         -- audit_cut rows have no seq.
         IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_entry' THEN
           IF OLD.seq < (SELECT coalesce(max(first_kept_seq), 0) FROM audit_cut) THEN
             RETURN OLD;
           END IF;
         END IF;
         RAISE EXCEPTION 'audit entries are append-only';
       END $$""",
    """CREATE TRIGGER audit_cut_append_only BEFORE UPDATE OR DELETE ON audit_cut
       FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()""",
]
# What the triggers were before audit retention, for the downgrade.
APPEND_ONLY_POSTGRESQL_FUNCTION = APPEND_ONLY_POSTGRESQL[0].replace(
    "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")


def create_audit_cut() -> None:
    """The audit retention cut (services.platform.audit.AuditCut) and the triggers that
    let retention delete what a cut covers."""
    op.create_table(
        "audit_cut",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_kept_seq", sa.Integer(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entries_deleted", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
    )
    statements = (RETENTION_POSTGRESQL if op.get_bind().dialect.name == "postgresql"
                  else RETENTION_SQLITE)
    for statement in statements:
        op.execute(statement)


def drop_audit_cut() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_cut_append_only ON audit_cut")
        op.execute(APPEND_ONLY_POSTGRESQL_FUNCTION)
    else:
        op.execute("DROP TRIGGER audit_entry_no_delete")
        op.execute(APPEND_ONLY_SQLITE[1])
    op.drop_table("audit_cut")


def application_role_grants(role: str) -> list[str]:
    """PostgreSQL: the privileges of a service's application role on its own database.

    The application connects as a role that owns nothing: ownership (tables, triggers,
    functions) stays with the role that runs the migrations. It may read and write its
    tables, but on `audit_entry` only SELECT and INSERT (no UPDATE, DELETE or TRUNCATE;
    TRUNCATE fires no row trigger), and as a non-owner it cannot disable, drop or replace
    the append-only trigger. Run as the owner after every migration; idempotent.
    """
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise ValueError("a role name of lower-case letters, digits and underscores")
    return [
        f'GRANT USAGE ON SCHEMA public TO "{role}"',
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"',
        f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"',
        f'REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_entry FROM "{role}"',
        # Only retention, as the owner, records a cut (and so may delete old entries).
        f'REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_cut '
        f'FROM "{role}"',
        f'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM "{role}"',
    ]
