"""Audit helpers: every access to a citizen's data here is on record, with the id."""

from __future__ import annotations

import uuid

from sqlmodel import Session

from services.platform.audit import record_access
from services.platform.scopes import Role
from services.platform.tokens import Principal


def purpose_of(principal: Principal) -> str:
    if principal.role is Role.provider:
        return "provider_reporting"
    if principal.role is Role.service:
        return "service_check"
    return "case_handling"


def audit_citizen(session: Session, principal: Principal, action: str,
                  citizen_id: uuid.UUID, resource: str | None = None) -> None:
    record_access(session, principal, action=action,
                  resource=resource or f"citizen/{citizen_id}",
                  purpose=purpose_of(principal), citizen_id=citizen_id)
