"""HTTP routes of the security service: parse, authorise, ask the other services, call the
rule, shape the answer.

Routes that ask another service (the police upload, a provider's constraints, the
referral re-check) are async: they ask first, with no transaction open, and then run the
rule in the thread pool in the request's transaction, so a slow citizens or activation
service never holds a database lock.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from services.platform.clock import local_today
from services.platform.db import DbSession
from services.platform.idempotency import request_fingerprint
from services.platform.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from services.platform.scopes import Role

from . import clients, logic
from .auth import (
    ConstraintsRead,
    ReferralsRead,
    RegistrationsAnnounce,
    SecurityCheck,
    ThreatsRead,
    ThreatsWrite,
)
from .measures import MeasurePolicy
from .models import ReferralStatus
from .schemas import (
    Accepted,
    ConflictCreate,
    ConflictOut,
    ConstraintsOut,
    Day,
    GroupCheckIn,
    GroupCheckOut,
    RecheckOut,
    ReferralFilter,
    ReferralOut,
    RegistrationIn,
    ThreatAssessmentCreate,
    ThreatAssessmentOut,
)

router = APIRouter(prefix="/v1", tags=["security"])
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key",
    description="The same key with the same body returns the first answer again and "
                "changes nothing; with another body it is 409 idempotency_key_reused")]
IDEMPOTENCY_RESPONSES = {
    409: {"description": "idempotency_key_reused"},
    503: {"description": "A service this upload needs is unavailable; nothing was stored: "
                         "retry with the same Idempotency-Key"},
}


def _keys(request: Request) -> logic.Keys:
    return logic.Keys(request.app.state.cipher, request.app.state.hasher)


def _policy(request: Request) -> MeasurePolicy:
    return request.app.state.measure_policy


async def _idempotency(request: Request, key: str | None) -> logic.IdempotentRequest | None:
    if key is None:
        return None
    return logic.IdempotentRequest(
        key, request_fingerprint(request.app.state.hasher, request.method, request.url.path,
                                 await request.body()))


def _json(answer: logic.Answer) -> JSONResponse:
    return JSONResponse(answer.body, status_code=answer.status_code)


# Police uploads ----------------------------------------------------------------------------
@router.post(
    "/threat-assessments", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted,
    summary="Upload a threat assessment (police); the answer is the same whether or not "
            "the person is known",
    responses=IDEMPOTENCY_RESPONSES)
async def upload_assessment(body: ThreatAssessmentCreate, request: Request, session: DbSession,
                            principal: ThreatsWrite,
                            idempotency_key: IdempotencyKey = None) -> JSONResponse:
    keys = _keys(request)
    idempotency = await _idempotency(request, idempotency_key)
    # Always asked, even about a person found before: an answer that came faster for
    # someone the unit knows would tell the police so. A citizens service that cannot
    # answer is a 503 and nothing is stored; a retry with the same key runs afresh.
    citizen_id = await clients.resolve_cpr(clients.gateway_client(request), body.cpr)
    return _json(await run_in_threadpool(logic.record_assessment, session, principal, body,
                                         keys, citizen_id, idempotency))


@router.post("/conflicts", status_code=status.HTTP_201_CREATED, response_model=Accepted,
             summary="Register a conflict between two affiliations (police)",
             responses={409: IDEMPOTENCY_RESPONSES[409]})
async def create_conflict(body: ConflictCreate, request: Request, session: DbSession,
                          principal: ThreatsWrite,
                          idempotency_key: IdempotencyKey = None) -> JSONResponse:
    idempotency = await _idempotency(request, idempotency_key)
    return _json(await run_in_threadpool(logic.record_conflict, session, principal, body,
                                         _keys(request), idempotency))


# The security coordinator's reading ------------------------------------------------------
@router.get("/threat-assessments", response_model=Page[ThreatAssessmentOut],
            summary="Threat assessments, oldest first: a person's history with citizen_id "
                    "or referral_id (security coordinator)")
def list_assessments(
    request: Request, session: DbSession, principal: ThreatsRead,
    citizen_id: Annotated[uuid.UUID | None, Query(description="Only this citizen's")] = None,
    referral_id: Annotated[uuid.UUID | None, Query(
        description="Only the assessments of this referral's person")] = None,
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> object:
    items, next_cursor = logic.list_assessments(
        session, principal, _keys(request), _policy(request), local_today(),
        citizen_id=citizen_id, referral_id=referral_id, limit=limit, cursor=cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/threat-assessments/{assessment_id}", response_model=ThreatAssessmentOut,
            summary="The whole assessment (security coordinator)")
def get_assessment(assessment_id: uuid.UUID, request: Request, session: DbSession,
                   principal: ThreatsRead) -> object:
    return logic.get_assessment(session, principal, assessment_id, _keys(request),
                                _policy(request), local_today())


@router.get("/conflicts", response_model=Page[ConflictOut],
            summary="Conflicts between affiliations (security coordinator)")
def list_conflicts(
    request: Request, session: DbSession, principal: ThreatsRead,
    in_force_on: Annotated[Day | None, Query(description="Only those in force that day")] = None,
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> object:
    items, next_cursor = logic.list_conflicts(session, principal, _keys(request), local_today(),
                                              in_force_on=in_force_on, limit=limit,
                                              cursor=cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/conflicts/{conflict_id}", response_model=ConflictOut)
def get_conflict(conflict_id: uuid.UUID, request: Request, session: DbSession,
                 principal: ThreatsRead) -> object:
    return logic.get_conflict(session, principal, conflict_id, _keys(request), local_today())


# Measures ----------------------------------------------------------------------------------
@router.get("/constraints/{citizen_id}", response_model=ConstraintsOut,
            summary="The measures in force for a citizen: never the level, affiliations "
                    "or notes",
            responses={404: {"description": "A provider without an active placement of "
                                            "the citizen"}})
async def get_constraints(
    citizen_id: uuid.UUID, request: Request, session: DbSession, principal: ConstraintsRead,
    as_of: Annotated[Day | None, Query(description="The day (default: today)")] = None,
) -> object:
    visible = True
    if principal.role is Role.provider:
        visible = await clients.has_active_placement(
            clients.gateway_client(request), citizen_id, principal.provider_id)
    return await run_in_threadpool(logic.constraints, session, principal, citizen_id,
                                   as_of or local_today(), _policy(request), visible=visible)


@router.post("/group-checks", response_model=GroupCheckOut,
             summary="May a citizen join these members, this cohort, this contract? "
                     "(activation service)")
def group_check(body: GroupCheckIn, request: Request, session: DbSession,
                principal: SecurityCheck) -> object:
    return logic.group_check(session, principal, body, body.on or local_today(),
                             _policy(request), _keys(request))


# Referrals ---------------------------------------------------------------------------------
@router.get("/referrals", response_model=Page[ReferralOut],
            summary="Persons the police reported who were unknown to the unit")
def list_referrals(
    request: Request, session: DbSession, principal: ReferralsRead,
    status: Annotated[ReferralFilter, Query(
        description="open (the default): still unknown to the unit; resolved: registered "
                    "since; all")] = ReferralFilter.open,
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> object:
    wanted = None if status is ReferralFilter.all else ReferralStatus(status.value)
    items, next_cursor = logic.list_referrals(session, principal, _keys(request),
                                              status=wanted, limit=limit, cursor=cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/referrals/registrations", status_code=status.HTTP_204_NO_CONTENT,
             summary="A citizen was registered (the citizens service's own client): a "
                     "police report made before applies to them from now on",
             description="The answer is the same whether or not the police reported the "
                         "person: the citizens service learns nothing.")
def announce_registration(body: RegistrationIn, request: Request, session: DbSession,
                          principal: RegistrationsAnnounce) -> None:
    logic.link_registration(session, principal, _keys(request), body.cpr, body.citizen_id)


@router.post("/referrals/recheck", response_model=RecheckOut,
             summary="Ask the citizens service again about open referrals; those it knows "
                     "now are resolved",
             responses={503: {"description": "The citizens service is unavailable; "
                                             "nothing changed"}})
async def recheck_referrals(request: Request, session: DbSession,
                            principal: ReferralsRead) -> object:
    pending = await run_in_threadpool(logic.open_referrals, request.app.state.read_engine,
                                      _keys(request))
    client = clients.gateway_client(request)
    found: dict[uuid.UUID, uuid.UUID | None] = {}
    for referral in pending:
        found[referral.id] = await clients.resolve_cpr(client, referral.cpr_digits)
    return await run_in_threadpool(logic.apply_recheck, session, principal, found)

