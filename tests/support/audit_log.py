"""The audit log as the PostgreSQL tests see it: what the services' roles must be refused,
and entries to append."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.platform.audit import PendingEntry

# Everything that could change or remove an entry, or switch its guard off: each is
# refused to a service's role for want of privilege, before any trigger is asked.
REFUSED_ON_THE_AUDIT_LOG = [
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


def audit_entries(n: int, *, actor: str) -> list[PendingEntry]:
    return [PendingEntry(at=datetime.now(UTC), actor=actor, role="caseworker",
                         action="citizen.read", resource=f"citizen/{i}",
                         citizen_id=uuid.uuid4(), purpose="case_handling", outcome="success",
                         request_id=f"{actor}-{i}") for i in range(n)]
