"""Retention in the security service: a threat assessment is deleted one year after it
stopped being in force.

When an assessment stops being in force follows the module's rule of force
(`logic.py`): its own `valid_until`, or earlier, the day before a later upload for the
same person began (a superseded assessment never comes back). So an assessment's last
day in force is

    min(valid_until, min(newer.valid_from for newer received after it) - 1 day)

and it is deleted from one year after the day after that. Counting from `valid_until`
alone would be wrong: deleting a short, expired upload that had superseded an older,
longer one would bring the older one back into force.

With this rule, whatever is deleted on day T had stopped being in force before T, and
so had every earlier upload for the same person (an earlier upload's force ends no later
than a later one's), so the assessment in force on any day from T on is the same before
and after the deletion: measures, group checks and clearances do not change.

A person's subject row (the keyed CPR hash, the citizen id) goes with their last
assessment, unless a referral still needs it. Referrals and conflicts between
affiliations are not part of this rule.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, select

from services.platform.audit import Actor, flush_pending_audit, record_access
from services.platform.clock import add_years

from .models import Referral, ThreatAssessment, ThreatSubject

RETENTION_YEARS = 1
PURPOSE = "retention"



@dataclass(frozen=True)
class Upload:
    id: uuid.UUID
    valid_from: date
    valid_until: date
    received: tuple[datetime, uuid.UUID]  # the order of the rule of force


def last_day_in_force(upload: Upload, same_person: list[Upload]) -> date:
    newer = [u.valid_from for u in same_person if u.received > upload.received]
    return min([upload.valid_until, *(d - timedelta(days=1) for d in newer)])


def due(upload: Upload, same_person: list[Upload], today: date) -> bool:
    stopped = last_day_in_force(upload, same_person) + timedelta(days=1)
    return add_years(stopped, RETENTION_YEARS) <= today


@dataclass
class Plan:
    assessments: list[tuple[uuid.UUID, uuid.UUID | None]] = field(default_factory=list)
    subjects: list[uuid.UUID] = field(default_factory=list)


def plan(session: Session, today: date) -> Plan:
    """What is due on `today`. Changes nothing and decrypts nothing."""
    by_subject: dict[uuid.UUID, list[Upload]] = defaultdict(list)
    for row in session.exec(select(ThreatAssessment.id, ThreatAssessment.subject_id,
                                   ThreatAssessment.valid_from, ThreatAssessment.valid_until,
                                   ThreatAssessment.received_at)):
        by_subject[row.subject_id].append(
            Upload(row.id, row.valid_from, row.valid_until, (row.received_at, row.id)))
    citizens = dict(session.exec(select(ThreatSubject.id, ThreatSubject.citizen_id)).all())
    referred = set(session.exec(select(Referral.subject_id)))
    result = Plan()
    for subject_id in sorted(by_subject):
        uploads = by_subject[subject_id]
        gone = [u for u in uploads if due(u, uploads, today)]
        result.assessments += [(u.id, citizens.get(subject_id)) for u in gone]
        if len(gone) == len(uploads) and subject_id not in referred:
            result.subjects.append(subject_id)
    return result


def apply(session: Session, due_now: Plan, actor: Actor, today: date) -> None:
    """Carry out a plan in the caller's transaction, and put it on record."""
    for assessment_id, citizen_id in due_now.assessments:
        session.execute(delete(ThreatAssessment).where(ThreatAssessment.id == assessment_id))
        record_access(session, actor, action="retention.delete",
                      resource=f"threat_assessment/{assessment_id}", purpose=PURPOSE,
                      citizen_id=citizen_id)
    for subject_id in due_now.subjects:
        session.execute(delete(ThreatSubject).where(ThreatSubject.id == subject_id))
    record_access(session, actor, action="retention.run",
                  resource=(f"retention/security/{today}: "
                            f"assessments={len(due_now.assessments)} "
                            f"subjects={len(due_now.subjects)}"),
                  purpose=PURPOSE)
    flush_pending_audit(session)
    session.flush()
