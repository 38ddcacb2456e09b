"""The providers service's rules: no HTTP here, only sessions and principals."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from services.platform.pagination import paginate
from services.platform.problems import Conflict, NotFound
from services.platform.scopes import Role
from services.platform.tokens import Principal

from .models import Provider
from .schemas import ProviderCreate


class ProviderExists(Conflict):
    code, title = "provider_exists", "A provider with this CVR number exists"


def visible_provider_ids(principal: Principal) -> set[uuid.UUID] | None:
    """None: every provider. A provider client sees only its own (others are 404)."""
    if principal.role is Role.provider:
        return {uuid.UUID(principal.provider_id)} if principal.provider_id else set()
    return None


def create_provider(session: Session, data: ProviderCreate) -> Provider:
    if session.exec(select(Provider.id).where(Provider.cvr == data.cvr)).first():
        raise ProviderExists()
    provider = Provider(name=data.name, cvr=data.cvr, created_at=datetime.now(UTC))
    session.add(provider)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent request took the CVR first
        raise ProviderExists() from exc
    return provider


def get_provider(session: Session, principal: Principal, provider_id: uuid.UUID) -> Provider:
    visible = visible_provider_ids(principal)
    provider = session.get(Provider, provider_id)
    if provider is None or (visible is not None and provider.id not in visible):
        raise NotFound("No such provider.")
    return provider


def list_providers(
    session: Session, principal: Principal, *, limit: int, cursor: str | None
) -> tuple[list[Provider], str | None]:
    statement = select(Provider)
    visible = visible_provider_ids(principal)
    if visible is not None:
        statement = statement.where(Provider.id.in_(visible))  # type: ignore[attr-defined]
    return paginate(session, statement, order_by=(Provider.created_at, Provider.id),
                    limit=limit, cursor=cursor)
