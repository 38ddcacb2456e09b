"""The contract rules in logic.py, without HTTP, against a migrated database
(SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from alembic import command
from pydantic import ValidationError
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.platform.db import make_engine, new_session
from services.platform.migrate import alembic_config, upgrade
from services.platform.problems import NotFound
from services.platform.scopes import ROLE_SCOPES, Role, Scope
from services.platform.settings import ServiceName
from services.platform.tokens import Principal
from services.platform.vocabulary import OfferType
from services.providers import logic
from services.providers.models import Contract, ContractOfferType, Provider
from services.providers.schemas import ContractCreate


def principal(role: Role, provider_id: uuid.UUID | None = None,
              scopes: frozenset[Scope] | None = None) -> Principal:
    return Principal(client_id=f"c-{role.value}", role=role,
                     scopes=ROLE_SCOPES[role] if scopes is None else scopes,
                     provider_id=str(provider_id) if provider_id else None,
                     token_id="j", expires_at=2**31)


ADMIN = principal(Role.admin)


@pytest.fixture
def engine(database_url: str):
    upgrade(ServiceName.providers, database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine):
    with new_session(engine) as session:
        yield session
        session.rollback()


def add_provider(session: Session) -> uuid.UUID:
    provider = Provider(name="P", cvr=str(uuid.uuid4().int)[:8].replace("0", "1"),
                        created_at=datetime.now(UTC))
    session.add(provider)
    session.flush()
    return provider.id


def contract_data(provider_id: uuid.UUID, **changes: object) -> ContractCreate:
    values: dict[str, object] = {
        "provider_id": provider_id, "kind": "special", "offer_types": ["utility_work"],
        "starts_on": "2026-01-01", "ends_on": "2026-12-31", "capacity": 5,
        "weekly_price_ore": 100_000, "max_threat_level": 2, **changes}
    return ContractCreate.model_validate(values)


# Visibility (pure) --------------------------------------------------------------------------
def test_visibility_by_role() -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    provider = principal(Role.provider, mine)
    assert logic.visible_provider_ids(provider) == {mine}
    assert logic.may_see(provider, mine) and not logic.may_see(provider, theirs)
    assert logic.only_visible(provider, Contract.provider_id) is not None
    for role in (Role.admin, Role.caseworker, Role.team_lead):
        assert logic.visible_provider_ids(principal(role)) is None
        assert logic.may_see(principal(role), theirs)
        assert logic.only_visible(principal(role), Contract.provider_id) is None
    service = principal(Role.service, scopes=frozenset({Scope.contracts_terms}))
    assert logic.may_see(service, theirs)
    # A provider client without a provider (the gateway never issues one) sees nothing.
    assert logic.visible_provider_ids(principal(Role.provider)) == set()


# The body (pure) ----------------------------------------------------------------------------
def test_ends_on_before_starts_on_is_reported_at_ends_on() -> None:
    with pytest.raises(ValidationError) as caught:
        contract_data(uuid.uuid4(), starts_on="2026-05-02", ends_on="2026-05-01")
    assert [e["loc"] for e in caught.value.errors()] == [("ends_on",)]


def test_a_bad_starts_on_is_reported_once() -> None:
    with pytest.raises(ValidationError) as caught:
        contract_data(uuid.uuid4(), starts_on="2026-02-30")
    assert [e["loc"] for e in caught.value.errors()] == [("starts_on",)]


def test_duplicate_offer_types_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        contract_data(uuid.uuid4(), offer_types=["utility_work", "utility_work"])
    assert caught.value.errors()[0]["loc"] == ("offer_types",)


# Rules against the database -----------------------------------------------------------------
def test_create_and_read(session: Session) -> None:
    provider_id = add_provider(session)
    data = contract_data(provider_id, offer_types=["wage_subsidy", "mentor_company"])
    created = logic.create_contract(session, ADMIN, data)
    assert created.offer_types == [OfferType.mentor_company, OfferType.wage_subsidy]
    assert created.extensions == []
    pending = session.info["audit_pending"]
    assert [(e.action, e.resource, e.purpose) for e in pending] == [
        ("contract.create", f"contract/{created.contract.id}", "administration")]
    read = logic.get_contract(session, principal(Role.provider, provider_id),
                              created.contract.id)
    assert read.contract.id == created.contract.id
    with pytest.raises(NotFound):
        logic.get_contract(session, principal(Role.provider, uuid.uuid4()),
                           created.contract.id)


def test_create_for_an_unknown_provider(session: Session) -> None:
    with pytest.raises(logic.ProviderNotFound) as caught:
        logic.create_contract(session, ADMIN, contract_data(uuid.uuid4()))
    assert (caught.value.status, caught.value.code) == (422, "provider_not_found")
    # The attempt is noted, so that the refusal goes on record.
    assert [e.action for e in session.info["audit_pending"]] == ["contract.create"]


def test_extend(session: Session) -> None:
    provider_id = add_provider(session)
    contract = logic.create_contract(session, ADMIN, contract_data(provider_id)).contract
    with pytest.raises(logic.ExtensionNotLater) as caught:
        logic.extend_contract(session, ADMIN, contract.id, date(2026, 12, 31))
    assert (caught.value.status, caught.value.code) == (422, "extension_not_later")
    logic.extend_contract(session, ADMIN, contract.id, date(2027, 3, 31))
    extended = logic.extend_contract(session, ADMIN, contract.id, date(2027, 6, 30))
    assert extended.contract.ends_on == date(2027, 6, 30)
    assert [(e.previous_ends_on, e.new_ends_on, e.extended_by)
            for e in extended.extensions] == [
        (date(2026, 12, 31), date(2027, 3, 31), "c-admin"),
        (date(2027, 3, 31), date(2027, 6, 30), "c-admin")]
    with pytest.raises(NotFound):
        logic.extend_contract(session, ADMIN, uuid.uuid4(), date(2030, 1, 1))
    # The rule checks the object whoever calls it, not only the route's scope.
    with pytest.raises(NotFound):
        logic.extend_contract(session, principal(Role.provider, uuid.uuid4()), contract.id,
                              date(2030, 1, 1))


def test_expiring_window_includes_both_ends(session: Session) -> None:
    provider_id = add_provider(session)
    today = date(2026, 3, 10)
    by_offset = {
        days: logic.create_contract(session, ADMIN, contract_data(
            provider_id, starts_on="2025-01-01",
            ends_on=(today + timedelta(days=days)).isoformat())).contract.id
        for days in (-1, 0, 14, 15)
    }

    def expiring(days: int) -> set[uuid.UUID]:
        items, _ = logic.list_contracts(session, ADMIN, limit=500, cursor=None,
                                        provider_id=provider_id,
                                        expiring_within_days=days, today=today)
        return {d.contract.id for d in items}

    assert expiring(14) == {by_offset[0], by_offset[14]}
    assert expiring(15) == {by_offset[0], by_offset[14], by_offset[15]}
    assert expiring(0) == {by_offset[0]}


def test_filters_combine_and_respect_visibility(session: Session) -> None:
    a, b = add_provider(session), add_provider(session)
    a_youth = logic.create_contract(session, ADMIN, contract_data(
        a, offer_types=["youth_education"])).contract.id
    logic.create_contract(session, ADMIN, contract_data(a, starts_on="2027-01-01",
                                                        ends_on="2027-12-31"))
    logic.create_contract(session, ADMIN, contract_data(b, offer_types=["youth_education"]))

    items, cursor = logic.list_contracts(
        session, principal(Role.provider, a), limit=50, cursor=None,
        active_on=date(2026, 6, 1), offer_type=OfferType.youth_education)
    assert [d.contract.id for d in items] == [a_youth] and cursor is None


def test_the_database_refuses_what_the_rules_refuse(session: Session) -> None:
    provider_id = add_provider(session)
    good = {"provider_id": provider_id, "kind": "special", "starts_on": date(2026, 1, 1),
            "ends_on": date(2026, 12, 31), "capacity": 1, "weekly_price_ore": 0,
            "max_threat_level": 0, "created_at": datetime.now(UTC)}
    for bad in ({"ends_on": date(2025, 12, 31)}, {"capacity": 0},
                {"weekly_price_ore": -1}, {"max_threat_level": 5},
                {"provider_id": uuid.uuid4()}):
        nested = session.begin_nested()
        session.add(Contract(**{**good, **bad}))
        with pytest.raises(IntegrityError):
            session.flush()
        nested.rollback()
    contract = Contract(**good)
    session.add(contract)
    session.flush()
    session.add(ContractOfferType(contract_id=contract.id, offer_type="utility_work"))
    session.flush()
    nested = session.begin_nested()
    session.add(ContractOfferType(contract_id=contract.id, offer_type="utility_work"))
    with pytest.raises(IntegrityError):
        session.flush()
    nested.rollback()


def test_migration_downgrades_and_upgrades(database_url: str) -> None:
    upgrade(ServiceName.providers, database_url)
    config = alembic_config(ServiceName.providers, database_url)
    command.downgrade(config, "providers_0001")
    engine = make_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert "provider" in tables and not tables & {
            "contract", "contract_offer_type", "contract_extension"}
    finally:
        engine.dispose()
    upgrade(ServiceName.providers, database_url)
    engine = make_engine(database_url)
    try:
        assert {"contract", "contract_offer_type", "contract_extension"} <= set(
            inspect(engine).get_table_names())
    finally:
        engine.dispose()
