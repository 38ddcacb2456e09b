"""HTTP routes of the activation service: parse, authorise, call the rule, shape the answer."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse

from services.platform.clock import local_today
from services.platform.db import DbSession
from services.platform.fields import Day, IntegerText
from services.platform.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from services.platform.problems import NotFound, Unprocessable

from . import attendance, caps, conversations, export, placements, reports, sanctions
from .auth import (
    ActivationRead,
    ActivationWrite,
    AttendanceRead,
    AttendanceWrite,
    PlacementsRead,
    ReportsRead,
    SanctionsDecide,
    SanctionsRead,
    SanctionsWrite,
)
from .clients import Neighbours
from .models import (
    AttendanceRecord,
    Cohort,
    Conversation,
    HoursCap,
    HoursCapChange,
    Placement,
    RightsGuidance,
    SanctionCase,
)
from .schemas import (
    ActivationReport,
    AttendanceAccepted,
    AttendanceBatch,
    AttendanceStatus,
    AttendanceVersionOut,
    CaseStatus,
    CohortCreate,
    CohortOut,
    ContactAttemptIn,
    ContactAttemptOut,
    ConversationDue,
    ConversationIn,
    ConversationOut,
    ConversationOutcomeIn,
    DecisionIn,
    DecisionOut,
    GuidanceIn,
    GuidanceOut,
    HearingIn,
    HoursCapChangeOut,
    HoursCapOut,
    HoursCapSet,
    PlacementCreate,
    PlacementEnd,
    PlacementNotice,
    PlacementOut,
    SanctionCaseDetail,
    SanctionCaseOut,
    SanctionShareReport,
    SpendingReport,
    from_tenths,
)
from .weeks import parse_week

router = APIRouter(prefix="/v1", tags=["activation"])
IdempotencyKey = Annotated[str | None, Header(
    description="Retry safely: the same key and body give the first answer again")]


def _neighbours(request: Request) -> Neighbours:
    return request.app.state.neighbours


def _known_citizen(request: Request, citizen_id: uuid.UUID) -> None:
    """Writes about a citizen need one the citizens service knows: 404 otherwise. Asked
    before the rule touches the database, so no lock is held meanwhile."""
    if _neighbours(request).eligibility(citizen_id) is None:
        raise NotFound("No such citizen.")


def cap_out(cap: HoursCap, history: list[HoursCapChange]) -> HoursCapOut:
    return HoursCapOut(
        citizen_id=cap.citizen_id, weekly_hours=from_tenths(cap.weekly_tenths),
        reason=cap.reason, set_by=cap.set_by, set_at=cap.set_at,
        history=[HoursCapChangeOut(weekly_hours=from_tenths(h.weekly_tenths),
                                   previous_weekly_hours=from_tenths(h.previous_tenths),
                                   reason=h.reason, set_by=h.set_by, set_at=h.set_at)
                 for h in history])


def placement_out(p: Placement) -> PlacementOut:
    return PlacementOut(
        id=p.id, citizen_id=p.citizen_id, contract_id=p.contract_id, provider_id=p.provider_id,
        cohort_id=p.cohort_id, offer_type=p.offer_type, starts_on=p.starts_on,
        ends_on=p.ends_on, ended_on=p.ended_on, end_reason=p.end_reason,
        weekly_hours=from_tenths(p.weekly_tenths), weekly_price_ore=p.weekly_price_ore,
        absence_notice_given_on=p.absence_notice_given_on,
        status=placements.placement_status(p, local_today()), created_at=p.created_at)


def version_out(r: AttendanceRecord) -> AttendanceVersionOut:
    return AttendanceVersionOut(
        id=r.id, placement_id=r.placement_id, date=r.day, version=r.version,
        status=AttendanceStatus(r.status), hours=from_tenths(r.hours_tenths),
        late_report=r.late_report, current=r.current, reported_by=r.reported_by,
        reported_at=r.reported_at)


# Hours caps ---------------------------------------------------------------------------------
@router.put("/hours-caps/{citizen_id}", response_model=HoursCapOut,
            responses={404: {"description": "not_found: no such citizen"},
                       409: {"description": "hours_cap_below_scheduled"}})
def set_hours_cap(citizen_id: uuid.UUID, body: HoursCapSet, request: Request,
                  session: DbSession, principal: ActivationWrite) -> HoursCapOut:
    _known_citizen(request, citizen_id)
    cap = caps.set_cap(session, principal, citizen_id, body, local_today())
    history = caps.get_cap(session, principal, citizen_id)[1]
    return cap_out(cap, history)


@router.get("/hours-caps/{citizen_id}", response_model=HoursCapOut)
def get_hours_cap(citizen_id: uuid.UUID, session: DbSession,
                  principal: ActivationRead) -> HoursCapOut:
    return cap_out(*caps.get_cap(session, principal, citizen_id))


# Cohorts --------------------------------------------------------------------------------------
@router.post("/cohorts", status_code=status.HTTP_201_CREATED, response_model=CohortOut)
def create_cohort(body: CohortCreate, request: Request, session: DbSession,
                  principal: ActivationWrite) -> Cohort:
    return placements.create_cohort(session, principal, body, _neighbours(request))


@router.get("/cohorts", response_model=Page[CohortOut])
def list_cohorts(session: DbSession, principal: ActivationRead,
                 contract_id: uuid.UUID | None = None, limit: Limit = DEFAULT_LIMIT,
                 cursor: Cursor = None) -> dict[str, object]:
    items, next_cursor = placements.list_cohorts(session, principal, contract_id=contract_id,
                                                 limit=limit, cursor=cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/cohorts/{cohort_id}", response_model=CohortOut)
def get_cohort(cohort_id: uuid.UUID, session: DbSession, principal: ActivationRead) -> Cohort:
    return placements.visible_cohort(session, principal, cohort_id)


# Placements -----------------------------------------------------------------------------------
@router.post("/placements", status_code=status.HTTP_201_CREATED, response_model=PlacementOut,
             responses={404: {"description": "not_found: no such cohort"},
                        409: {"description": "not_enrolled, hours_cap_not_set, "
                              "hours_cap_exceeded, contract_full, cohort_full, "
                              "security_measures"},
                        422: {"description": "contract_not_covering, age_ineligible, "
                              "start_phase_too_long, cohort_mismatch"}})
def create_placement(body: PlacementCreate, request: Request, session: DbSession,
                     principal: ActivationWrite) -> PlacementOut:
    return placement_out(placements.create_placement(session, principal, body,
                                                     _neighbours(request)))


@router.get("/placements", response_model=Page[PlacementOut])
def list_placements(session: DbSession, principal: PlacementsRead,
                    citizen_id: uuid.UUID | None = None, contract_id: uuid.UUID | None = None,
                    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> dict[str, object]:
    items, next_cursor = placements.list_placements(
        session, principal, citizen_id=citizen_id, contract_id=contract_id, limit=limit,
        cursor=cursor)
    return {"items": [placement_out(p) for p in items], "next_cursor": next_cursor}


@router.get("/placements/{placement_id}", response_model=PlacementOut)
def get_placement(placement_id: uuid.UUID, session: DbSession,
                  principal: ActivationRead) -> PlacementOut:
    return placement_out(placements.get_placement(session, principal, placement_id))


@router.post("/placements/{placement_id}/end", response_model=PlacementOut,
             responses={409: {"description": "placement_already_ended"},
                        422: {"description": "invalid_end_date, validation_error"}})
def end_placement(placement_id: uuid.UUID, body: PlacementEnd, session: DbSession,
                  principal: ActivationWrite) -> PlacementOut:
    return placement_out(placements.end_placement(session, principal, placement_id, body))


@router.post("/placements/{placement_id}/absence-notice", response_model=PlacementOut,
             summary="Record when the citizen got the written notice of what absence means")
def record_absence_notice(placement_id: uuid.UUID, body: PlacementNotice, session: DbSession,
                          principal: AttendanceWrite) -> PlacementOut:
    return placement_out(placements.record_notice(session, principal, placement_id,
                                                  body.given_on))


# Attendance -----------------------------------------------------------------------------------
@router.post("/attendance", response_model=AttendanceAccepted,
             responses={404: {"description": "a record names a placement not the caller's"},
                        409: {"description": "idempotency_key_reused"},
                        422: {"description": "attendance_date_in_future, "
                              "attendance_outside_placement, validation_error"}})
def report_attendance(body: AttendanceBatch, request: Request, session: DbSession,
                      principal: AttendanceWrite,
                      idempotency_key: IdempotencyKey = None) -> JSONResponse:
    result = attendance.ingest(session, principal, body, idempotency_key=idempotency_key,
                               hasher=request.app.state.hasher, today=local_today())
    return JSONResponse(result.body, status_code=result.status_code)


@router.get("/attendance", response_model=Page[AttendanceVersionOut])
def list_attendance(
    session: DbSession, principal: AttendanceRead, placement_id: uuid.UUID | None = None,
    citizen_id: uuid.UUID | None = None,
    date_from: Annotated[Day | None, Query(alias="from")] = None,
    date_to: Annotated[Day | None, Query(alias="to")] = None,
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> dict[str, object]:
    items, next_cursor = attendance.list_current(
        session, principal, placement_id=placement_id, citizen_id=citizen_id,
        day_from=date_from, day_to=date_to, limit=limit, cursor=cursor)
    return {"items": [version_out(r) for r in items], "next_cursor": next_cursor}


@router.get("/attendance/{record_id}/history", response_model=list[AttendanceVersionOut])
def attendance_history(record_id: uuid.UUID, session: DbSession,
                       principal: AttendanceRead) -> list[AttendanceVersionOut]:
    return [version_out(r) for r in attendance.history(session, principal, record_id)]


# Sanction cases -----------------------------------------------------------------------------
def case_out(case: SanctionCase) -> SanctionCaseOut:
    return SanctionCaseOut(
        id=case.id, citizen_id=case.citizen_id, kind=case.kind, occurred_on=case.occurred_on,
        decide_by=case.decide_by, status=case.status,
        placement_id=case.attendance_placement_id, conversation_id=case.conversation_id,
        hearing_sent_on=case.hearing_sent_on, hearing_respond_by=case.hearing_respond_by)


def case_detail(session, case: SanctionCase) -> SanctionCaseDetail:  # type: ignore[no-untyped-def]
    attempts, decisions = sanctions.case_details(session, case)
    return SanctionCaseDetail(
        **case_out(case).model_dump(),
        contact_attempts=[ContactAttemptOut.model_validate(a, from_attributes=True)
                          for a in attempts],
        decisions=[DecisionOut(id=d.id, outcome=d.outcome,
                               reasonable_excuse=d.reasonable_excuse,
                               deduction_days=d.deduction_days, justification=d.justification,
                               legal_basis=d.legal_basis, replaces=d.replaces_id,
                               decided_by=d.decided_by, decided_at=d.decided_at)
                   for d in decisions])


@router.get("/sanction-cases", response_model=Page[SanctionCaseOut],
            summary="Sanction cases, soonest decide_by first")
def list_sanction_cases(
    session: DbSession, principal: SanctionsRead, status: CaseStatus | None = None,
    citizen_id: uuid.UUID | None = None,
    decide_by_before: Annotated[Day | None, Query(description="decide_by on or before")] = None,
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> dict[str, object]:
    items, next_cursor = sanctions.list_cases(
        session, principal, status=status.value if status else None, citizen_id=citizen_id,
        decide_by_before=decide_by_before, limit=limit, cursor=cursor)
    return {"items": [case_out(c) for c in items], "next_cursor": next_cursor}


@router.get("/sanction-cases/{case_id}", response_model=SanctionCaseDetail)
def get_sanction_case(case_id: uuid.UUID, session: DbSession,
                      principal: SanctionsRead) -> SanctionCaseDetail:
    return case_detail(session, sanctions.visible_case(session, principal, case_id))


@router.post("/sanction-cases/{case_id}/hearing", response_model=SanctionCaseDetail,
             responses={409: {"description": "case_closed"}})
def send_hearing(case_id: uuid.UUID, body: HearingIn, session: DbSession,
                 principal: SanctionsWrite) -> SanctionCaseDetail:
    return case_detail(session, sanctions.send_hearing(session, principal, case_id, body))


@router.post("/sanction-cases/{case_id}/contact-attempts", status_code=status.HTTP_201_CREATED,
             response_model=ContactAttemptOut, responses={409: {"description": "case_closed"}})
def record_contact_attempt(case_id: uuid.UUID, body: ContactAttemptIn, session: DbSession,
                           principal: SanctionsWrite) -> object:
    return sanctions.record_contact_attempt(session, principal, case_id, body)


@router.post("/sanction-cases/{case_id}/decision", response_model=SanctionCaseDetail,
             responses={409: {"description": "hearing_required, guidance_missing, "
                              "contact_attempt_required, deadline_passed, case_closed, "
                              "decision_not_current"}})
def decide_sanction_case(case_id: uuid.UUID, body: DecisionIn, request: Request,
                         session: DbSession, principal: SanctionsDecide) -> SanctionCaseDetail:
    case = sanctions.decide(session, principal, case_id, body,
                            readiness_of=_neighbours(request).readiness, today=local_today())
    return case_detail(session, case)


# Rights guidance ------------------------------------------------------------------------------
def guidance_out(g: RightsGuidance) -> GuidanceOut:
    return GuidanceOut(id=g.id, citizen_id=g.citizen_id, given_on=g.given_on,
                       valid_until=sanctions.guidance_valid_until(g.given_on),
                       channel=g.channel, given_by=g.given_by)


@router.post("/rights-guidance", status_code=status.HTTP_201_CREATED, response_model=GuidanceOut,
             responses={404: {"description": "not_found: no such citizen"}})
def give_rights_guidance(body: GuidanceIn, request: Request, session: DbSession,
                         principal: SanctionsWrite) -> GuidanceOut:
    _known_citizen(request, body.citizen_id)
    return guidance_out(sanctions.give_guidance(session, principal, body, local_today()))


@router.get("/rights-guidance", response_model=list[GuidanceOut])
def list_rights_guidance(citizen_id: uuid.UUID, session: DbSession,
                         principal: SanctionsRead) -> list[GuidanceOut]:
    return [guidance_out(g) for g in sanctions.guidance_of(session, principal, citizen_id)]


# Conversations --------------------------------------------------------------------------------
def conversation_out(c: Conversation) -> ConversationOut:
    return ConversationOut(id=c.id, citizen_id=c.citizen_id, week=c.week,
                           scheduled_at=c.scheduled_at, status=conversations.status_of(c))


@router.get("/conversations/due", response_model=Page[ConversationDue],
            summary="Enrolled citizens with no activation hours in the week")
def conversations_due(
    week: Annotated[str, Query(pattern=r"^[0-9]{4}-W[0-9]{2}$", examples=["2026-W48"])],
    request: Request, session: DbSession, principal: SanctionsRead,
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> dict[str, object]:
    monday = _week(week)
    enrolled = _neighbours(request).enrolled_during(monday, monday + timedelta(days=6))
    rows, next_cursor = conversations.due_list(session, principal, monday, enrolled,
                                               limit=limit, cursor=cursor)
    return {"items": [ConversationDue(citizen_id=c, week=week, status=s, conversation_id=i)
                      for c, s, i in rows], "next_cursor": next_cursor}


@router.post("/conversations", status_code=status.HTTP_201_CREATED,
             response_model=ConversationOut,
             responses={404: {"description": "not_found: no such citizen"}})
def book_conversation(body: ConversationIn, request: Request, session: DbSession,
                      principal: SanctionsWrite) -> ConversationOut:
    _known_citizen(request, body.citizen_id)
    return conversation_out(conversations.book(session, principal, body))


@router.post("/conversations/{conversation_id}/outcome", response_model=ConversationOut,
             responses={409: {"description": "outcome_recorded"}})
def conversation_outcome(conversation_id: uuid.UUID, body: ConversationOutcomeIn,
                         session: DbSession, principal: SanctionsWrite) -> ConversationOut:
    return conversation_out(conversations.record_outcome(session, principal, conversation_id,
                                                         body.attended))


# A citizen's export ---------------------------------------------------------------------------
@router.get("/activation-records/{citizen_id}", response_model=export.ActivationRecordOut,
            tags=["exports"],
            summary="For the citizens service's export: everything held here on one citizen")
def activation_record(citizen_id: uuid.UUID, response: Response, session: DbSession,
                      principal: export.ActivationExport) -> export.ActivationRecordOut:
    record = export.citizen_record(session, principal, citizen_id)
    response.headers["Cache-Control"] = "no-store"
    return export.ActivationRecordOut(
        citizen_id=citizen_id,
        hours_cap=cap_out(record.cap, record.cap_history) if record.cap else None,
        placements=[placement_out(p) for p in record.placements],
        attendance=[version_out(r) for r in record.attendance],
        conversations=[conversation_out(c) for c in record.conversations],
        sanction_cases=[case_detail(session, c) for c in record.cases],
        rights_guidance=[guidance_out(g) for g in record.guidance],
        access_log=record.access_log)


# Reports -------------------------------------------------------------------------------------
def _week(label: str) -> date:
    try:
        return parse_week(label)
    except ValueError as exc:
        raise Unprocessable(str(exc), loc=("query", "week")) from None


@router.get("/reports/activation", response_model=ActivationReport, tags=["reports"])
def activation_report(
    week: Annotated[str, Query(pattern=r"^[0-9]{4}-W[0-9]{2}$", examples=["2026-W48"])],
    request: Request, session: DbSession, _: ReportsRead,
) -> dict[str, object]:
    monday = _week(week)
    enrolled = _neighbours(request).enrolled_during(monday, monday + timedelta(days=6))
    return reports.activation_report(session, monday, week, enrolled)


@router.get("/reports/sanctions", response_model=SanctionShareReport, tags=["reports"],
            summary="The monthly share of enrolled citizens who were sanctioned")
def sanction_share_report(
    month: Annotated[str, Query(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", examples=["2026-11"])],
    request: Request, session: DbSession, _: ReportsRead,
) -> dict[str, object]:
    try:
        first, last = reports.month_bounds(month)
    except ValueError:  # e.g. year 0000: matches the pattern, is no calendar month
        raise Unprocessable("month is not a calendar month.", loc=("query", "month")) from None
    enrolled = _neighbours(request).enrolled_during(first, last)
    return reports.sanction_share_report(session, month, first, last, enrolled)


@router.get("/reports/spending", response_model=SpendingReport, tags=["reports"])
def spending_report(
    year: Annotated[int, Query(ge=2000, le=2100), IntegerText], request: Request,
    session: DbSession, _: ReportsRead,
) -> dict[str, object]:
    today = local_today()
    as_of = min(today, date(year, 12, 31))
    full_year_persons = (_neighbours(request).full_year_persons(as_of)
                         if as_of.year == year else None)
    return reports.spending_report(session, year, today,
                                   request.app.state.settings.activation_budget_ore,
                                   full_year_persons)
