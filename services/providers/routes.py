"""HTTP routes of the providers service: parse, authorise, call the rule, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from services.platform.db import DbSession
from services.platform.fields import Day, IntegerText
from services.platform.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from services.platform.vocabulary import OfferType

from . import logic
from .auth import ContractsRead, ProvidersRead, ProvidersWrite
from .schemas import (
    ContractCreate,
    ContractExtend,
    ContractExtensionOut,
    ContractOut,
    ProviderCreate,
    ProviderOut,
)

router = APIRouter(prefix="/v1", tags=["providers"])
MAX_EXPIRY_WINDOW_DAYS = 3660  # ten years and a little


@router.post("/providers", status_code=status.HTTP_201_CREATED, response_model=ProviderOut,
             responses={409: {"description": "provider_exists (the CVR number)"}})
def create_provider(body: ProviderCreate, session: DbSession, _: ProvidersWrite) -> object:
    return logic.create_provider(session, body)


@router.get("/providers", response_model=Page[ProviderOut])
def list_providers(
    session: DbSession, principal: ProvidersRead, limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> object:
    items, next_cursor = logic.list_providers(session, principal, limit=limit, cursor=cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/providers/{provider_id}", response_model=ProviderOut)
def get_provider(provider_id: uuid.UUID, session: DbSession, principal: ProvidersRead) -> object:
    return logic.get_provider(session, principal, provider_id)


# Contracts -------------------------------------------------------------------------------
def contract_out(details: logic.ContractDetails) -> ContractOut:
    c = details.contract
    return ContractOut(
        id=c.id, provider_id=c.provider_id, kind=c.kind, offer_types=details.offer_types,
        starts_on=c.starts_on, ends_on=c.ends_on, capacity=c.capacity,
        weekly_price_ore=c.weekly_price_ore, max_threat_level=c.max_threat_level,
        created_at=c.created_at,
        extensions=[ContractExtensionOut.model_validate(e, from_attributes=True)
                    for e in details.extensions],
    )


@router.post("/contracts", status_code=status.HTTP_201_CREATED, response_model=ContractOut,
             responses={422: {"description": "Invalid body, or `provider_not_found`"}})
def create_contract(body: ContractCreate, session: DbSession,
                    principal: ProvidersWrite) -> object:
    return contract_out(logic.create_contract(session, principal, body))


@router.get("/contracts", response_model=Page[ContractOut])
def list_contracts(
    session: DbSession, principal: ProvidersRead, limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    provider_id: Annotated[uuid.UUID | None, Query(description="Only this provider's")] = None,
    active_on: Annotated[Day | None, Query(
        description="Only contracts whose period includes this day (YYYY-MM-DD)")] = None,
    expiring_within_days: Annotated[int | None, Query(
        ge=0, le=MAX_EXPIRY_WINDOW_DAYS,
        description="Only contracts ending between today and today + N days"),
        IntegerText] = None,
    offer_type: Annotated[OfferType | None, Query(
        description="Only contracts covering this offer type")] = None,
) -> object:
    items, next_cursor = logic.list_contracts(
        session, principal, limit=limit, cursor=cursor, provider_id=provider_id,
        active_on=active_on, expiring_within_days=expiring_within_days, offer_type=offer_type)
    return {"items": [contract_out(d) for d in items], "next_cursor": next_cursor}


@router.get("/contracts/{contract_id}", response_model=ContractOut)
def get_contract(contract_id: uuid.UUID, session: DbSession, principal: ContractsRead) -> object:
    return contract_out(logic.get_contract(session, principal, contract_id))


@router.post("/contracts/{contract_id}/extend", response_model=ContractOut,
             responses={422: {"description": "Invalid body, or `extension_not_later`"}})
def extend_contract(contract_id: uuid.UUID, body: ContractExtend, session: DbSession,
                    principal: ProvidersWrite) -> object:
    return contract_out(logic.extend_contract(session, principal, contract_id, body.ends_on))
