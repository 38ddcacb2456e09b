"""A citizen's export: the right of access (GDPR art. 15), everything the system holds
about one person as one JSON document, for the caseworker to hand over.

- From this service: the citizen (name, masked CPR number, birth date, benefit,
  readiness, the history of changes), the enrolment periods, and this database's record
  of who looked at the person's data and when.
- From the activation service, through the gateway with this service's own client and
  only `activation:export`: the hours cap and its history, placements, attendance (every
  version), conversations, sanction cases with hearings, contact attempts and decisions,
  rights guidance, and that database's record of who looked.
- From the security service: nothing. Police information may be withheld under the
  exception for the prevention of crime; every export says so in the same words, whether
  or not the security service holds anything about the person. Entries in the access
  record that would hint at police interest (the security service resolving a police
  report to this citizen) are left out for the same reason.

All or nothing: a missing citizen is 404; an activation service that does not answer, or
answers something else than an activation record for this citizen, is a 503 problem,
never a partial export. The export is audited as `citizen.export` in both databases,
under one request id.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, Literal

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ValidationError
from sqlmodel import Session, select

from services.platform.audit import AuditEntry, record_access
from services.platform.auth import requires
from services.platform.clients import GatewayClient
from services.platform.problems import NotFound, ServiceUnavailable
from services.platform.scopes import Role, Scope
from services.platform.settings import ServiceName
from services.platform.tokens import Principal

from .clients import gateway_client
from .logic import citizen_out, statuses
from .models import Citizen, CitizenChange, Enrolment
from .schemas import CitizenChangeOut, CitizenOut, EnrolmentOut

CitizensExport = requires(Scope.citizens_export)

FORMAT = "sikkerby.citizen-export/1"
EXPORT_PURPOSE = "subject_access"
# The security service's own client (`sikkerby up` and the compose file name it so).
SECURITY_SERVICE_CLIENT = f"svc-{ServiceName.security.value}"
WITHHELD_NOTICE = (
    "Information held for the prevention, investigation or detection of crime may be "
    "withheld from this export under the Danish Data Protection Act, section 22 (GDPR "
    "article 23(1)(d)). This notice is part of every export and does not indicate whether "
    "any such information exists.")


class AccessEntry(BaseModel):
    at: datetime
    service: str
    actor: str
    role: str
    action: str
    purpose: str
    outcome: str


class CitizenPart(CitizenOut):
    registered_at: datetime
    changes: list[CitizenChangeOut]


class ActivationPart(BaseModel):
    """As the activation service gives it (`GET /v1/activation-records/{id}`)."""

    hours_cap: dict[str, Any] | None
    placements: list[dict[str, Any]]
    attendance: list[dict[str, Any]]
    conversations: list[dict[str, Any]]
    sanction_cases: list[dict[str, Any]]
    rights_guidance: list[dict[str, Any]]


class Withheld(BaseModel):
    police_information: Literal["may_be_withheld"] = "may_be_withheld"
    notice: str = WITHHELD_NOTICE


class CitizenExport(BaseModel):
    format: Literal["sikkerby.citizen-export/1"] = FORMAT
    generated_at: datetime
    citizen: CitizenPart
    enrolments: list[EnrolmentOut]
    activation: ActivationPart
    access_log: list[AccessEntry]
    withheld: Withheld


class _ActivationAnswer(ActivationPart):
    citizen_id: uuid.UUID
    access_log: list[dict[str, Any]]


def shown(entry: AuditEntry) -> bool:
    """False for what would show police interest: the security service resolving a
    police report to this citizen (only a service holding `citizens:resolve` looks a
    citizen up by CPR number, and that is the security service)."""
    if entry.actor == SECURITY_SERVICE_CLIENT:
        return False
    return not (entry.role == Role.service.value and entry.action == "citizen.lookup")


def gather_local(session: Session, principal: Principal, citizen_id: uuid.UUID,
                 today: date) -> dict[str, Any]:
    """This service's part, and the export's audit entry (written when the request's
    transaction ends: a refused export is on record with its refusal)."""
    citizen = session.get(Citizen, citizen_id)
    if citizen is None:
        raise NotFound("No such citizen.")
    record_access(session, principal, action="citizen.export", resource=f"citizen/{citizen.id}",
                  purpose=EXPORT_PURPOSE, citizen_id=citizen.id)
    changes = session.exec(select(CitizenChange).where(CitizenChange.citizen_id == citizen.id)
                           .order_by(CitizenChange.version, CitizenChange.field))
    periods = session.exec(select(Enrolment).where(Enrolment.citizen_id == citizen.id)
                           .order_by(Enrolment.enrolled_on, Enrolment.created_at))
    audit = session.exec(select(AuditEntry).where(AuditEntry.citizen_id == citizen.id)
                         .order_by(AuditEntry.seq))
    status = statuses(session, [citizen.id])[citizen.id]
    return {
        "citizen": CitizenPart(
            **citizen_out(citizen, status, today).model_dump(),
            registered_at=citizen.created_at,
            changes=[CitizenChangeOut.model_validate(c, from_attributes=True)
                     for c in changes]),
        "enrolments": [EnrolmentOut.model_validate(p, from_attributes=True) for p in periods],
        "access_log": [AccessEntry(at=e.at, service=ServiceName.citizens.value, actor=e.actor,
                                   role=e.role, action=e.action, purpose=e.purpose,
                                   outcome=e.outcome) for e in audit if shown(e)],
    }


async def fetch_activation(client: GatewayClient, citizen_id: uuid.UUID) -> _ActivationAnswer:
    try:
        body = await client.get_json(f"/v1/activation-records/{citizen_id}",
                                     scope=Scope.activation_export)
        answer = _ActivationAnswer.model_validate(body)
    except (NotFound, ValidationError, ValueError):
        raise ServiceUnavailable("The activation service gave no complete record; "
                                 "no export was made.") from None
    if answer.citizen_id != citizen_id:
        raise ServiceUnavailable("The activation service answered for another citizen; "
                                 "no export was made.")
    return answer


def _activation_entries(answer: _ActivationAnswer) -> list[AccessEntry]:
    try:
        return [AccessEntry(**entry, service=ServiceName.activation.value)
                for entry in answer.access_log]
    except (TypeError, ValidationError):
        raise ServiceUnavailable("The activation service's access record has another "
                                 "shape; no export was made.") from None


async def export_citizen(session: Session, principal: Principal, citizen_id: uuid.UUID,
                         request: Request, today: date) -> CitizenExport:
    # The citizen first: a missing citizen is 404 whether or not activation answers.
    local = await run_in_threadpool(gather_local, session, principal, citizen_id, today)
    answer = await fetch_activation(gateway_client(request), citizen_id)
    access_log = sorted([*local["access_log"], *_activation_entries(answer)],
                        key=lambda e: (e.at, e.service))
    return CitizenExport(
        generated_at=datetime.now(UTC),
        citizen=local["citizen"], enrolments=local["enrolments"],
        activation=ActivationPart.model_validate(answer.model_dump(
            include=set(ActivationPart.model_fields))),
        access_log=access_log, withheld=Withheld())
