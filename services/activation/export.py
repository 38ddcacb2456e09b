"""The activation part of a citizen's export (the right of access, GDPR art. 15).

Everything this service holds about one citizen, read in one transaction: the hours cap
and its history, placements, attendance (every version), conversations, sanction cases
with their hearings, contact attempts and decisions, rights guidance, and this database's
record of who looked at the citizen's data. Only the citizens service asks, with its own
client and the narrow scope `activation:export`; it gathers the whole export and answers
the caseworker.

Nothing here depends on whether the citizen is known elsewhere: an id this service has
never seen gives empty lists (a 404 would tell the caller nothing it may act on).

Police information is never part of an export (the citizens service says so, in every
export alike). Two things in this service's audit would hint at it, and are kept out:
entries made by the security service's own client (it asks for a citizen's placements
when a provider reads the measures), and the code `security_measures` in a refused
placement's outcome (shown as plain `refused`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Session, select

from services.platform.audit import AuditEntry, record_access
from services.platform.auth import requires
from services.platform.scopes import Scope
from services.platform.settings import ServiceName
from services.platform.tokens import Principal

from .models import (
    AttendanceRecord,
    Conversation,
    HoursCap,
    HoursCapChange,
    Placement,
    RightsGuidance,
    SanctionCase,
)
from .schemas import (
    AttendanceVersionOut,
    ConversationOut,
    GuidanceOut,
    HoursCapOut,
    PlacementOut,
    SanctionCaseDetail,
)

ActivationExport = requires(Scope.activation_export)

EXPORT_PURPOSE = "subject_access"
# The security service's own client (`sikkerby up` and the compose file name it so).
SECURITY_SERVICE_CLIENT = f"svc-{ServiceName.security.value}"
MASKED_OUTCOMES = {"refused:security_measures": "refused"}


class AccessEntryOut(BaseModel):
    """One look at (or change of) the citizen's data, as this service's audit has it."""

    at: datetime
    actor: str
    role: str
    action: str
    purpose: str
    outcome: str


class ActivationRecordOut(BaseModel):
    citizen_id: uuid.UUID
    hours_cap: HoursCapOut | None
    placements: list[PlacementOut]
    attendance: list[AttendanceVersionOut]
    conversations: list[ConversationOut]
    sanction_cases: list[SanctionCaseDetail]
    rights_guidance: list[GuidanceOut]
    access_log: list[AccessEntryOut]


@dataclass(frozen=True)
class CitizenRecord:
    cap: HoursCap | None
    cap_history: list[HoursCapChange]
    placements: list[Placement]
    attendance: list[AttendanceRecord]
    conversations: list[Conversation]
    cases: list[SanctionCase]
    guidance: list[RightsGuidance]
    access_log: list[AccessEntryOut]


def shown(entry: AuditEntry) -> bool:
    return entry.actor != SECURITY_SERVICE_CLIENT


def access_entry(entry: AuditEntry) -> AccessEntryOut:
    return AccessEntryOut(at=entry.at, actor=entry.actor, role=entry.role,
                          action=entry.action, purpose=entry.purpose,
                          outcome=MASKED_OUTCOMES.get(entry.outcome, entry.outcome))


def access_log(session: Session, citizen_id: uuid.UUID) -> list[AccessEntryOut]:
    """This database's audit entries about the citizen, oldest first (the export's own
    entry is appended when its transaction ends, so it is not among them)."""
    entries = session.exec(select(AuditEntry).where(AuditEntry.citizen_id == citizen_id)
                           .order_by(AuditEntry.seq))
    return [access_entry(e) for e in entries if shown(e)]


def citizen_record(session: Session, principal: Principal,
                   citizen_id: uuid.UUID) -> CitizenRecord:
    log = access_log(session, citizen_id)
    record_access(session, principal, action="citizen.export", resource=f"citizen/{citizen_id}",
                  purpose=EXPORT_PURPOSE, citizen_id=citizen_id)
    return CitizenRecord(
        cap=session.get(HoursCap, citizen_id),
        cap_history=list(session.exec(select(HoursCapChange)
                                      .where(HoursCapChange.citizen_id == citizen_id)
                                      .order_by(HoursCapChange.set_at))),
        placements=list(session.exec(select(Placement)
                                     .where(Placement.citizen_id == citizen_id)
                                     .order_by(Placement.starts_on, Placement.created_at))),
        attendance=list(session.exec(select(AttendanceRecord)
                                     .where(AttendanceRecord.citizen_id == citizen_id)
                                     .order_by(AttendanceRecord.day,
                                               AttendanceRecord.placement_id,
                                               AttendanceRecord.version))),
        conversations=list(session.exec(select(Conversation)
                                        .where(Conversation.citizen_id == citizen_id)
                                        .order_by(Conversation.scheduled_at))),
        cases=list(session.exec(select(SanctionCase)
                                .where(SanctionCase.citizen_id == citizen_id)
                                .order_by(SanctionCase.occurred_on, SanctionCase.opened_at))),
        guidance=list(session.exec(select(RightsGuidance)
                                   .where(RightsGuidance.citizen_id == citizen_id)
                                   .order_by(RightsGuidance.given_on))),
        access_log=log,
    )
