"""HTTP routes of the citizens service: parse, authorise, call the rule, shape the answer."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from services.platform.clock import local_today
from services.platform.db import DbSession
from services.platform.fields import Day
from services.platform.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from services.platform.problems import Unprocessable

from . import clients, export, logic
from .auth import CitizensLookup, CitizensRead, CitizensStatus, CitizensWrite, ReportsRead
from .report import enrolment_report
from .schemas import (
    CitizenChangeOut,
    CitizenCreate,
    CitizenEligibility,
    CitizenId,
    CitizenLookup,
    CitizenOut,
    CitizenPatch,
    CitizenStatus,
    EnrolmentCreate,
    EnrolmentOut,
    EnrolmentPeriod,
    EnrolmentReport,
    ExitCreate,
)

router = APIRouter(prefix="/v1", tags=["citizens"])
IfMatch = Annotated[str | None, Header(description="The ETag from GET /v1/citizens/{id}")]


def _keys(request: Request) -> logic.CprKeys:
    return logic.CprKeys(request.app.state.cipher, request.app.state.hasher)


def _one(session, citizen) -> CitizenOut:  # type: ignore[no-untyped-def]
    return logic.citizen_out(citizen, logic.statuses(session, [citizen.id])[citizen.id],
                             local_today())


@router.post("/citizens", status_code=status.HTTP_201_CREATED, response_model=CitizenOut,
             responses={409: {"description": "citizen_exists (the body names the `id`)"},
                        503: {"description": "service_unavailable: the security service "
                                             "did not confirm; nothing was registered"}})
async def register_citizen(body: CitizenCreate, request: Request, response: Response,
                           session: DbSession, principal: CitizensWrite) -> CitizenOut:
    citizen = await run_in_threadpool(logic.register_citizen, session, principal, body,
                                      _keys(request))
    # Inside the registration's transaction: a police report made before applies to the
    # citizen from the first placement on, or there is no registration.
    await clients.announce_registration(clients.gateway_client(request), body.cpr,
                                        citizen.id)  # `cpr`: the ten digits (fields.py)
    response.headers["ETag"] = logic.etag(citizen)
    return logic.citizen_out(citizen, CitizenStatus.not_enrolled, local_today())


@router.post("/citizens/lookup", response_model=CitizenId,
             responses={404: {"description": "not_found: no citizen with this CPR number"}},
             summary="Find a citizen by CPR number (in the body, never in a URL)")
def lookup_citizen(body: CitizenLookup, request: Request, session: DbSession,
                   principal: CitizensLookup) -> CitizenId:
    return CitizenId(id=logic.lookup_citizen(session, principal, body.cpr, _keys(request)))


@router.get("/citizens", response_model=Page[CitizenOut])
def list_citizens(
    session: DbSession, principal: CitizensRead,
    status: CitizenStatus | None = None,
    enrolled_from: Annotated[Day | None, Query(description="enrolled on or after")] = None,
    enrolled_to: Annotated[Day | None, Query(description="enrolled on or before")] = None,
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> dict[str, object]:
    citizens, next_cursor = logic.list_citizens(
        session, principal, status=status, enrolled_from=enrolled_from,
        enrolled_to=enrolled_to, limit=limit, cursor=cursor)
    by_id = logic.statuses(session, [c.id for c in citizens])
    today = local_today()
    return {"items": [logic.citizen_out(c, by_id[c.id], today) for c in citizens],
            "next_cursor": next_cursor}


@router.get("/citizens/enrolled-during", response_model=Page[CitizenId],
            summary="For the activation service: ids of citizens enrolled in a period")
def enrolled_during(
    session: DbSession, _: CitizensStatus,
    date_from: Annotated[Day, Query(alias="from")], date_to: Annotated[Day, Query(alias="to")],
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> dict[str, object]:
    ids, next_cursor = logic.enrolled_during(session, date_from, date_to, limit=limit,
                                             cursor=cursor)
    return {"items": [CitizenId(id=i) for i in ids], "next_cursor": next_cursor}


@router.get("/citizens/{citizen_id}", response_model=CitizenOut)
def get_citizen(citizen_id: uuid.UUID, response: Response, session: DbSession,
                principal: CitizensRead) -> CitizenOut:
    citizen = logic.get_citizen(session, principal, citizen_id)
    response.headers["ETag"] = logic.etag(citizen)
    return _one(session, citizen)


@router.patch("/citizens/{citizen_id}", response_model=CitizenOut,
              responses={412: {"description": "precondition_failed"},
                         428: {"description": "precondition_required"}})
def update_citizen(citizen_id: uuid.UUID, body: CitizenPatch, response: Response,
                   session: DbSession, principal: CitizensWrite,
                   if_match: IfMatch = None) -> CitizenOut:
    citizen = logic.update_citizen(session, principal, citizen_id, if_match, body)
    response.headers["ETag"] = logic.etag(citizen)
    return _one(session, citizen)


@router.get("/citizens/{citizen_id}/changes", response_model=list[CitizenChangeOut],
            summary="The history of changes to name, benefit and readiness")
def citizen_changes(citizen_id: uuid.UUID, session: DbSession,
                    principal: CitizensRead) -> object:
    return logic.citizen_changes(session, principal, citizen_id)


@router.get("/citizens/{citizen_id}/export", response_model=export.CitizenExport,
            tags=["exports"],
            summary="Everything held about one citizen, across services (right of access)",
            responses={404: {"description": "not_found: no such citizen"},
                       503: {"description": "service_unavailable: the activation service "
                             "did not answer; no partial export is ever given"}})
async def export_citizen(citizen_id: uuid.UUID, request: Request, response: Response,
                         session: DbSession, principal: export.CitizensExport
                         ) -> export.CitizenExport:
    document = await export.export_citizen(session, principal, citizen_id, request,
                                           local_today())
    response.headers["Cache-Control"] = "no-store"
    return document


@router.get("/citizens/{citizen_id}/enrolments", response_model=list[EnrolmentOut])
def list_enrolments(citizen_id: uuid.UUID, session: DbSession,
                    principal: CitizensRead) -> object:
    return logic.enrolments_of(session, principal, citizen_id)


@router.post("/citizens/{citizen_id}/enrolments", status_code=status.HTTP_201_CREATED,
             response_model=EnrolmentOut,
             responses={409: {"description": "already_enrolled"},
                        422: {"description": "enrolment_overlaps, date_in_future, "
                              "validation_error"}})
def enrol(citizen_id: uuid.UUID, body: EnrolmentCreate, session: DbSession,
          principal: CitizensWrite) -> object:
    return logic.enrol(session, principal, citizen_id, body, local_today())


@router.post("/citizens/{citizen_id}/exit", response_model=EnrolmentOut,
             responses={409: {"description": "not_enrolled"},
                        422: {"description": "exit_before_enrolment, date_in_future, "
                              "validation_error"}})
def exit_programme(citizen_id: uuid.UUID, body: ExitCreate, session: DbSession,
                   principal: CitizensWrite) -> object:
    return logic.exit_programme(session, principal, citizen_id, body, local_today())


@router.get("/citizens/{citizen_id}/eligibility", response_model=CitizenEligibility,
            summary="For the activation service: enrolment, birth date, readiness")
def eligibility(citizen_id: uuid.UUID, session: DbSession,
                principal: CitizensStatus) -> CitizenEligibility:
    citizen, citizen_status, periods = logic.eligibility(session, principal, citizen_id)
    return CitizenEligibility(
        id=citizen.id, status=citizen_status, birth_date=citizen.birth_date,
        readiness=citizen.readiness,
        enrolments=[EnrolmentPeriod(enrolled_on=p.enrolled_on, exited_on=p.exited_on)
                    for p in periods])


@router.get("/reports/enrolment", response_model=EnrolmentReport, tags=["reports"])
def report(session: DbSession, _: ReportsRead,
           as_of: Annotated[Day | None, Query(description="default: today")] = None
           ) -> EnrolmentReport:
    if as_of == date.max:  # the report counts up to the day after, past the calendar
        raise Unprocessable("as_of is out of range.", loc=("query", "as_of"))
    return enrolment_report(session, as_of or local_today())
