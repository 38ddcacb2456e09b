"""Sanction cases. The rules open them (an unexcused absence, a missed conversation) in
the same transaction as the event, and withdraw them when the absence is corrected to
excused before a decision. Only a caseworker decides, after a hearing. No threat data is
read or stored here: nothing from the security service enters a sanction case."""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert, tuple_, update
from sqlmodel import Session, select

from services.platform.pagination import paginate
from services.platform.problems import Conflict, NotFound, Unprocessable
from services.platform.tokens import Principal

from .audit import audit_citizen
from .locks import lock_row
from .models import ContactAttempt, RightsGuidance, SanctionCase, SanctionDecision
from .schemas import ContactAttemptIn, DecisionIn, GuidanceIn, HearingIn

ACTIVATION_ABSENCE = "activation_absence"
MISSED_CONVERSATION = "missed_conversation"
OPEN_STATUSES = ("open", "hearing")


def decide_by(occurred_on: date) -> date:
    """The end of the third full calendar month after the event (aktivloven: a deduction
    within three full calendar months)."""
    month_index = occurred_on.month - 1 + 3
    year, month = occurred_on.year + month_index // 12, month_index % 12 + 1
    return date(year, month, calendar.monthrange(year, month)[1])


def open_absence_cases(session: Session,
                       absences: list[tuple[uuid.UUID, uuid.UUID, date]]) -> None:
    """Exactly one case per absence (citizen, placement, day): one that exists and was
    not withdrawn is kept, not doubled."""
    if not absences:
        return
    existing = set(session.execute(select(
        SanctionCase.attendance_placement_id, SanctionCase.occurred_on).where(
        SanctionCase.attendance_placement_id.in_({p for _, p, _ in absences}),  # type: ignore[union-attr]
        SanctionCase.status != "withdrawn")).tuples())
    now = datetime.now(UTC)
    rows = [{"id": uuid.uuid4(), "citizen_id": citizen_id, "kind": ACTIVATION_ABSENCE,
             "occurred_on": day, "decide_by": decide_by(day), "status": "open",
             "attendance_placement_id": placement_id, "opened_at": now}
            for citizen_id, placement_id, day in absences
            if (placement_id, day) not in existing]
    if rows:
        session.execute(insert(SanctionCase), rows)


def withdraw_absence_cases(session: Session, absences: list[tuple[uuid.UUID, date]]) -> None:
    """The absences were corrected before a decision: their cases are withdrawn, not
    deleted."""
    if not absences:
        return
    session.execute(update(SanctionCase).where(
        tuple_(SanctionCase.attendance_placement_id, SanctionCase.occurred_on).in_(absences),
        SanctionCase.status.in_(OPEN_STATUSES),  # type: ignore[attr-defined]
    ).values(status="withdrawn", withdrawn_at=datetime.now(UTC)))


# Caseworkers' side: hearing, contact attempts, decisions, guidance ---------------------------
GUIDANCE_VALID_MONTHS = 6


class HearingRequired(Conflict):
    code, title = "hearing_required", "The citizen must be heard before a decision"


class GuidanceMissing(Conflict):
    code, title = "guidance_missing", "No rights guidance was in force on the day of the event"


class ContactAttemptRequired(Conflict):
    code, title = "contact_attempt_required", ("An activity-ready citizen must first be "
                                               "sought personally")


class DeadlinePassed(Conflict):
    code, title = "deadline_passed", "The deadline for a deduction has passed"


class CaseClosed(Conflict):
    code, title = "case_closed", "The case is withdrawn or already decided"


class DecisionNotCurrent(Conflict):
    code, title = "decision_not_current", "Only the case's current decision can be corrected"


def add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def guidance_valid_until(given_on: date) -> date:
    return add_months(given_on, GUIDANCE_VALID_MONTHS) - timedelta(days=1)


def visible_case(session: Session, principal: Principal, case_id: uuid.UUID, *,
                 for_update: bool = False) -> SanctionCase:
    case = (lock_row(session, SanctionCase, id=case_id) if for_update
            else session.get(SanctionCase, case_id))
    if case is None:
        raise NotFound("No such sanction case.")
    audit_citizen(session, principal, "sanction_case.read" if not for_update
                  else "sanction_case.write", case.citizen_id)
    return case


def case_details(session: Session, case: SanctionCase
                 ) -> tuple[list[ContactAttempt], list[SanctionDecision]]:
    attempts = list(session.exec(select(ContactAttempt).where(ContactAttempt.case_id == case.id)
                                 .order_by(ContactAttempt.at)))
    decisions = list(session.exec(select(SanctionDecision)
                                  .where(SanctionDecision.case_id == case.id)
                                  .order_by(SanctionDecision.decided_at)))
    return attempts, decisions


def list_cases(session: Session, principal: Principal, *, status: str | None,
               citizen_id: uuid.UUID | None, decide_by_before: date | None, limit: int,
               cursor: str | None) -> tuple[list[SanctionCase], str | None]:
    """Soonest deadline first, so nothing runs out unseen."""
    statement = select(SanctionCase)
    if status is not None:
        statement = statement.where(SanctionCase.status == status)
    if citizen_id is not None:
        statement = statement.where(SanctionCase.citizen_id == citizen_id)
    if decide_by_before is not None:
        statement = statement.where(SanctionCase.decide_by <= decide_by_before)
    cases, next_cursor = paginate(session, statement,
                                  order_by=(SanctionCase.decide_by, SanctionCase.id),
                                  limit=limit, cursor=cursor)
    for case in cases:
        audit_citizen(session, principal, "sanction_case.list", case.citizen_id)
    return cases, next_cursor


def send_hearing(session: Session, principal: Principal, case_id: uuid.UUID,
                 data: HearingIn) -> SanctionCase:
    case = visible_case(session, principal, case_id, for_update=True)
    if case.status not in OPEN_STATUSES:
        raise CaseClosed()
    case.status = "hearing"
    case.hearing_sent_on, case.hearing_respond_by = data.sent_on, data.respond_by
    case.hearing_by = principal.client_id
    session.add(case)
    session.flush()
    return case


def record_contact_attempt(session: Session, principal: Principal, case_id: uuid.UUID,
                           data: ContactAttemptIn) -> ContactAttempt:
    case = visible_case(session, principal, case_id, for_update=True)
    if case.status not in OPEN_STATUSES:
        raise CaseClosed()
    attempt = ContactAttempt(case_id=case.id, at=data.at, channel=data.channel.value,
                             reached=data.reached, recorded_by=principal.client_id,
                             recorded_at=datetime.now(UTC))
    session.add(attempt)
    session.flush()
    return attempt


def decide(session: Session, principal: Principal, case_id: uuid.UUID, data: DecisionIn, *,
           readiness_of: Callable[[uuid.UUID], str], today: date) -> SanctionCase:
    """A caseworker's decision, after the law's preconditions. `no_sanction` is always
    possible once the citizen has been heard."""
    case = visible_case(session, principal, case_id, for_update=True)
    if case.status == "withdrawn":
        raise CaseClosed("The case was withdrawn.")
    if case.status == "open":
        raise HearingRequired()
    decisions = case_details(session, case)[1]
    current = next((d for d in decisions
                    if d.id not in {x.replaces_id for x in decisions}), None)
    if case.status == "decided" and (data.replaces is None or current is None
                                     or data.replaces != current.id):
        raise DecisionNotCurrent("A decided case changes only by a new decision that "
                                 "names the current one in `replaces`.")
    if case.status == "hearing" and data.replaces is not None:
        raise DecisionNotCurrent("There is no decision to replace yet.")
    if data.outcome.value == "sanction":
        if today > case.decide_by:
            raise DeadlinePassed(f"A deduction had to be made by {case.decide_by}.")
        # The hearing (forvaltningsloven §19) gives the citizen until `respond_by` to
        # answer: no sanction before that day has passed. No sanction is always possible.
        if case.hearing_respond_by is not None and today <= case.hearing_respond_by:
            raise HearingRequired(f"The citizen may respond to the hearing until "
                                  f"{case.hearing_respond_by}; no sanction before then.")
        guidance = session.exec(select(RightsGuidance).where(
            RightsGuidance.citizen_id == case.citizen_id,
            RightsGuidance.given_on <= case.occurred_on)).all()
        if not any(guidance_valid_until(g.given_on) >= case.occurred_on for g in guidance):
            raise GuidanceMissing()
        if readiness_of(case.citizen_id) == "aktivitetsparat":
            attempts = case_details(session, case)[0]
            if not attempts:
                raise ContactAttemptRequired()
    session.add(SanctionDecision(
        case_id=case.id, outcome=data.outcome.value, reasonable_excuse=data.reasonable_excuse,
        deduction_days=data.deduction_days, justification=data.justification,
        legal_basis=data.legal_basis, replaces_id=data.replaces, decided_by=principal.client_id,
        decided_at=datetime.now(UTC)))
    case.status = "decided"
    session.add(case)
    session.flush()
    return case


def give_guidance(session: Session, principal: Principal, data: GuidanceIn,
                  today: date) -> RightsGuidance:
    audit_citizen(session, principal, "rights_guidance.record", data.citizen_id)
    if data.given_on > today:
        raise Unprocessable("Guidance is recorded once it has been given.",
                            loc=("body", "given_on"))
    guidance = RightsGuidance(citizen_id=data.citizen_id, given_on=data.given_on,
                              channel=data.channel.value, given_by=principal.client_id,
                              recorded_at=datetime.now(UTC))
    session.add(guidance)
    session.flush()
    return guidance


def guidance_of(session: Session, principal: Principal,
                citizen_id: uuid.UUID) -> list[RightsGuidance]:
    audit_citizen(session, principal, "rights_guidance.read", citizen_id)
    return list(session.exec(select(RightsGuidance).where(RightsGuidance.citizen_id == citizen_id)
                             .order_by(RightsGuidance.given_on)))


def open_missed_conversation_case(session: Session, *, citizen_id: uuid.UUID,
                                  conversation_id: uuid.UUID, day: date) -> SanctionCase:
    case = SanctionCase(citizen_id=citizen_id, kind=MISSED_CONVERSATION, occurred_on=day,
                        decide_by=decide_by(day), status="open",
                        conversation_id=conversation_id, opened_at=datetime.now(UTC))
    session.add(case)
    return case
