"""The providers service's rules: no HTTP here, only sessions and principals."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import exists
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, select

from services.platform.audit import record_access
from services.platform.clock import local_today
from services.platform.pagination import paginate
from services.platform.problems import Conflict, NotFound, Unprocessable
from services.platform.scopes import Role
from services.platform.tokens import Principal
from services.platform.vocabulary import OfferType

from .models import Contract, ContractExtension, ContractOfferType, Provider
from .schemas import ContractCreate, ProviderCreate

# The unit's calendar: "today" and "expiring within N days" are days in Copenhagen.
ADMINISTRATION = "administration"


class ProviderExists(Conflict):
    code, title = "provider_exists", "A provider with this CVR number exists"


class ProviderNotFound(Unprocessable):
    """422, not 404: the URL (/v1/contracts) exists; a field of the body names nothing.

    Only providers:write callers (administrators, who may see every provider) can get
    here, so naming the refusal discloses nothing."""

    code, title = "provider_not_found", "The provider_id names no provider"


class ExtensionNotLater(Unprocessable):
    code, title = "extension_not_later", "The new end date must be after the current one"



# Who sees what ---------------------------------------------------------------------------
def visible_provider_ids(principal: Principal) -> set[uuid.UUID] | None:
    """None: every provider. A provider client sees only its own (others are 404)."""
    if principal.role is Role.provider:
        return {uuid.UUID(principal.provider_id)} if principal.provider_id else set()
    return None


def may_see(principal: Principal, provider_id: uuid.UUID) -> bool:
    """Whether the caller may see this provider and what belongs to it."""
    visible = visible_provider_ids(principal)
    return visible is None or provider_id in visible


def only_visible(principal: Principal, column: Any) -> ColumnElement[bool] | None:
    """A WHERE clause limiting `column` (a provider id) to what the caller may see."""
    visible = visible_provider_ids(principal)
    return None if visible is None else column.in_(visible)


# Providers -------------------------------------------------------------------------------
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
    provider = session.get(Provider, provider_id)
    if provider is None or not may_see(principal, provider.id):
        raise NotFound("No such provider.")
    return provider


def list_providers(
    session: Session, principal: Principal, *, limit: int, cursor: str | None
) -> tuple[list[Provider], str | None]:
    statement = select(Provider)
    scope = only_visible(principal, Provider.id)
    if scope is not None:
        statement = statement.where(scope)
    return paginate(session, statement, order_by=(Provider.created_at, Provider.id),
                    limit=limit, cursor=cursor)


# Contracts -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContractDetails:
    """A contract with the offer types it covers and its extensions, oldest first."""

    contract: Contract
    offer_types: list[OfferType]
    extensions: list[ContractExtension]


def _in_vocabulary_order(types: Iterable[str]) -> list[OfferType]:
    present = set(types)
    return [t for t in OfferType if t.value in present]


def _details(session: Session, contracts: Sequence[Contract]) -> list[ContractDetails]:
    """Offer types and extensions for a page of contracts: two queries, not 2 per row."""
    ids = [c.id for c in contracts]
    if not ids:
        return []
    types: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
    for row in session.exec(select(ContractOfferType).where(
            ContractOfferType.contract_id.in_(ids))):  # type: ignore[attr-defined]
        types[row.contract_id].append(row.offer_type)
    extensions: dict[uuid.UUID, list[ContractExtension]] = {i: [] for i in ids}
    for ext in session.exec(select(ContractExtension).where(
            ContractExtension.contract_id.in_(ids))  # type: ignore[attr-defined]
            .order_by(ContractExtension.new_ends_on)):
        extensions[ext.contract_id].append(ext)
    return [ContractDetails(c, _in_vocabulary_order(types[c.id]), extensions[c.id])
            for c in contracts]


def _visible_contract(session: Session, principal: Principal, contract_id: uuid.UUID,
                      *, for_update: bool = False) -> Contract:
    contract = session.get(Contract, contract_id, with_for_update=for_update)
    if contract is None or not may_see(principal, contract.provider_id):
        raise NotFound("No such contract.")
    return contract


def create_contract(session: Session, principal: Principal,
                    data: ContractCreate) -> ContractDetails:
    """A new contract for an existing provider (else 422 `provider_not_found`)."""
    contract = Contract(
        provider_id=data.provider_id, kind=data.kind.value, starts_on=data.starts_on,
        ends_on=data.ends_on, capacity=data.capacity, weekly_price_ore=data.weekly_price_ore,
        max_threat_level=data.max_threat_level, created_at=datetime.now(UTC),
    )
    record_access(session, principal, action="contract.create",
                  resource=f"contract/{contract.id}", purpose=ADMINISTRATION)
    if session.get(Provider, data.provider_id) is None:
        raise ProviderNotFound("No provider has this provider_id.")
    session.add(contract)
    session.flush()  # the contract row first: the offer types refer to it
    session.add_all(ContractOfferType(contract_id=contract.id, offer_type=t.value)
                    for t in data.offer_types)
    session.flush()
    return _details(session, [contract])[0]


def get_contract(session: Session, principal: Principal,
                 contract_id: uuid.UUID) -> ContractDetails:
    return _details(session, [_visible_contract(session, principal, contract_id)])[0]


def list_contracts(
    session: Session, principal: Principal, *, limit: int, cursor: str | None,
    provider_id: uuid.UUID | None = None, active_on: date | None = None,
    expiring_within_days: int | None = None, offer_type: OfferType | None = None,
    today: date | None = None,
) -> tuple[list[ContractDetails], str | None]:
    """Contracts the caller may see, oldest first, narrowed by the filters given.

    `active_on`: the day falls within the contract's period. `expiring_within_days=N`:
    the contract ends between today and today + N (both included), so what must be
    extended or re-tendered shows in time; a contract that already ended is not listed.
    """
    statement = select(Contract)
    scope = only_visible(principal, Contract.provider_id)
    if scope is not None:
        statement = statement.where(scope)
    if provider_id is not None:
        statement = statement.where(Contract.provider_id == provider_id)
    if active_on is not None:
        statement = statement.where(Contract.starts_on <= active_on,
                                    Contract.ends_on >= active_on)
    if expiring_within_days is not None:
        start = today or local_today()
        statement = statement.where(
            Contract.ends_on >= start,
            Contract.ends_on <= start + timedelta(days=expiring_within_days))
    if offer_type is not None:
        statement = statement.where(exists().where(
            ContractOfferType.contract_id == Contract.id,
            ContractOfferType.offer_type == offer_type.value))
    contracts, next_cursor = paginate(
        session, statement, order_by=(Contract.created_at, Contract.id),
        limit=limit, cursor=cursor)
    return _details(session, contracts), next_cursor


def extend_contract(session: Session, principal: Principal, contract_id: uuid.UUID,
                    new_ends_on: date) -> ContractDetails:
    """Move the end date later and keep the old one in the contract's history.

    The contract row is locked (PostgreSQL; SQLite transactions are already exclusive),
    so concurrent extensions queue and each one's `previous_ends_on` is the end date the
    one before it set.
    """
    contract = _visible_contract(session, principal, contract_id, for_update=True)
    record_access(session, principal, action="contract.extend",
                  resource=f"contract/{contract.id}", purpose=ADMINISTRATION)
    if new_ends_on <= contract.ends_on:
        raise ExtensionNotLater(
            f"The contract already runs until {contract.ends_on.isoformat()}.")
    session.add(ContractExtension(
        contract_id=contract.id, previous_ends_on=contract.ends_on, new_ends_on=new_ends_on,
        extended_at=datetime.now(UTC), extended_by=principal.client_id,
    ))
    contract.ends_on = new_ends_on
    session.add(contract)
    session.flush()
    return _details(session, [contract])[0]
