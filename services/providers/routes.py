"""HTTP routes of the providers service: parse, authorise, call the rule, shape the answer."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from services.platform.db import DbSession
from services.platform.pagination import DEFAULT_LIMIT, Cursor, Limit, Page

from . import logic
from .auth import ProvidersRead, ProvidersWrite
from .schemas import ProviderCreate, ProviderOut

router = APIRouter(prefix="/v1", tags=["providers"])


@router.post("/providers", status_code=status.HTTP_201_CREATED, response_model=ProviderOut)
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
