"""Contracts through the gateway, over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import concurrent.futures
import random
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from services.platform.audit import AuditEntry
from services.platform.db import make_engine, new_session
from services.platform.settings import ServiceName
from services.providers.logic import local_today

from ..support.system import ADMIN_ID, System, bearer
from ..test_gateway import assert_problem


@dataclass(frozen=True)
class Callers:
    admin: dict[str, str]
    caseworker: dict[str, str]
    provider_a: dict[str, str]
    provider_b: dict[str, str]
    service: dict[str, str]
    a: str  # provider A's id
    b: str  # provider B's id


def new_provider(http: httpx.Client, admin: dict[str, str], name: str = "P") -> str:
    cvr = str(random.randint(10_000_000, 99_999_999))  # noqa: S311 - a test CVR
    response = http.post("/v1/providers", json={"name": name, "cvr": cvr}, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture(scope="module")
def callers(system: System) -> Callers:
    """One token per kind of caller for the module (tokens live ten minutes)."""
    admin = bearer(system.admin_token())
    with system.http() as http:
        a, b = new_provider(http, admin, "Provider A"), new_provider(http, admin, "Provider B")
    service = system.new_client("service", scopes=["contracts:terms"])
    return Callers(
        admin=admin,
        caseworker=bearer(system.token_for("caseworker")),
        provider_a=bearer(system.token_for("provider", provider_id=a)),
        provider_b=bearer(system.token_for("provider", provider_id=b)),
        service=bearer(system.token(service["client_id"], service["client_secret"])),
        a=a, b=b,
    )


@pytest.fixture
def http(system: System):
    with system.http() as client:
        yield client


def terms(provider: str, **changes: Any) -> dict[str, Any]:
    return {
        "provider_id": provider, "kind": "special",
        "offer_types": ["special_employment", "mentor_company"],
        "starts_on": "2026-01-01", "ends_on": "2026-12-31", "capacity": 12,
        "weekly_price_ore": 450_000, "max_threat_level": 3, **changes,
    }


def create(http: httpx.Client, c: Callers, provider_id: str | None = None,
           **changes: Any) -> dict[str, Any]:
    response = http.post("/v1/contracts", json=terms(provider_id or c.a, **changes),
                         headers=c.admin)
    assert response.status_code == 201, response.text
    return response.json()


def ids(page: dict[str, Any]) -> set[str]:
    return {item["id"] for item in page["items"]}


# Creating ---------------------------------------------------------------------------------
def test_create_returns_the_contract(http: httpx.Client, callers: Callers) -> None:
    body = terms(callers.a, kind="framework",
                 offer_types=["wage_subsidy", "utility_work", "special_employment"])
    response = http.post("/v1/contracts", json=body, headers=callers.admin)
    assert response.status_code == 201, response.text
    contract = response.json()
    assert set(contract) == {"id", "provider_id", "kind", "offer_types", "starts_on",
                             "ends_on", "capacity", "weekly_price_ore", "max_threat_level",
                             "created_at", "extensions"}
    uuid.UUID(contract["id"])
    assert contract["provider_id"] == callers.a and contract["kind"] == "framework"
    # In the vocabulary's order, whatever order they were sent in.
    assert contract["offer_types"] == ["special_employment", "utility_work", "wage_subsidy"]
    assert (contract["starts_on"], contract["ends_on"]) == ("2026-01-01", "2026-12-31")
    assert (contract["capacity"], contract["weekly_price_ore"],
            contract["max_threat_level"]) == (12, 450_000, 3)
    assert contract["extensions"] == []
    assert contract["created_at"].endswith(("+00:00", "Z"))
    read = http.get(f"/v1/contracts/{contract['id']}", headers=callers.admin)
    assert read.status_code == 200 and read.json() == contract


def test_edge_values_are_accepted(http: httpx.Client, callers: Callers) -> None:
    contract = create(http, callers, starts_on="2026-03-01", ends_on="2026-03-01",
                      capacity=1, weekly_price_ore=0, max_threat_level=0,
                      offer_types=list(_ALL_OFFER_TYPES))
    assert contract["ends_on"] == contract["starts_on"] and contract["capacity"] == 1
    assert len(contract["offer_types"]) == 7
    assert create(http, callers, max_threat_level=4)["max_threat_level"] == 4


_ALL_OFFER_TYPES = ("special_employment", "mentor_company", "utility_work",
                    "company_internship", "wage_subsidy", "youth_education",
                    "employment_course_30plus")


@pytest.mark.parametrize(("changes", "field"), [
    ({"starts_on": "2026-06-01", "ends_on": "2026-05-31"}, "ends_on"),
    ({"capacity": 0}, "capacity"),
    ({"capacity": -3}, "capacity"),
    ({"capacity": "5"}, "capacity"),
    ({"capacity": 2.5}, "capacity"),
    ({"capacity": 2**31}, "capacity"),
    ({"offer_types": ["special_employment", "knitting"]}, "offer_types"),
    ({"offer_types": []}, "offer_types"),
    ({"offer_types": ["utility_work", "wage_subsidy", "utility_work"]}, "offer_types"),
    ({"offer_types": "utility_work"}, "offer_types"),
    ({"weekly_price_ore": -1}, "weekly_price_ore"),
    ({"weekly_price_ore": 2**31}, "weekly_price_ore"),
    ({"max_threat_level": 5}, "max_threat_level"),
    ({"max_threat_level": -1}, "max_threat_level"),
    ({"max_threat_level": True}, "max_threat_level"),
    ({"kind": "tender"}, "kind"),
    ({"starts_on": "2026-13-01"}, "starts_on"),
    ({"starts_on": "1.1.2026"}, "starts_on"),
    ({"ends_on": "2026-12-31T00:00:00"}, "ends_on"),
    ({"ends_on": 1798675200}, "ends_on"),
    ({"provider_id": "not-a-uuid"}, "provider_id"),
    ({"price_per_hour_ore": 100}, "price_per_hour_ore"),
])
def test_invalid_contracts_are_422(http: httpx.Client, callers: Callers,
                                   changes: dict[str, Any], field: str) -> None:
    response = http.post("/v1/contracts", json=terms(callers.a, **changes),
                         headers=callers.admin)
    body = assert_problem(response, 422, "validation_error")
    assert any(error["loc"][:2] == ["body", field] for error in body["errors"]), body
    assert all("input" not in error for error in body["errors"])  # never echoed


@pytest.mark.parametrize("missing", ["provider_id", "kind", "offer_types", "starts_on",
                                     "ends_on", "capacity", "weekly_price_ore",
                                     "max_threat_level"])
def test_every_field_is_required(http: httpx.Client, callers: Callers, missing: str) -> None:
    body = terms(callers.a)
    del body[missing]
    response = http.post("/v1/contracts", json=body, headers=callers.admin)
    problem = assert_problem(response, 422, "validation_error")
    assert ["body", missing] in [error["loc"] for error in problem["errors"]]


def test_unknown_provider_is_422_provider_not_found(http: httpx.Client,
                                                   callers: Callers) -> None:
    response = http.post("/v1/contracts", json=terms(str(uuid.uuid4())),
                         headers=callers.admin)
    assert_problem(response, 422, "provider_not_found")


# Who may do what --------------------------------------------------------------------------
def test_a_provider_sees_only_its_own_contracts(http: httpx.Client, callers: Callers) -> None:
    own = create(http, callers, callers.a)
    other = create(http, callers, callers.b)
    assert http.get(f"/v1/contracts/{own['id']}", headers=callers.provider_a).json() == own
    assert_problem(http.get(f"/v1/contracts/{other['id']}", headers=callers.provider_a),
                   404, "not_found")
    # The same answer as for a contract that does not exist at all.
    assert_problem(http.get(f"/v1/contracts/{uuid.uuid4()}", headers=callers.provider_a),
                   404, "not_found")
    assert http.get(f"/v1/contracts/{other['id']}", headers=callers.provider_b).json() == other

    mine = http.get("/v1/contracts", params={"limit": 500}, headers=callers.provider_a).json()
    assert own["id"] in ids(mine) and other["id"] not in ids(mine)
    assert {item["provider_id"] for item in mine["items"]} == {callers.a}
    # Naming another provider in the filter shows nothing of it.
    theirs = http.get("/v1/contracts", params={"provider_id": callers.b},
                      headers=callers.provider_a).json()
    assert theirs == {"items": [], "next_cursor": None}


def test_a_provider_cannot_create_or_extend(http: httpx.Client, callers: Callers) -> None:
    own = create(http, callers, callers.a)
    assert_problem(http.post("/v1/contracts", json=terms(callers.a),
                             headers=callers.provider_a), 403, "insufficient_scope")
    assert_problem(http.post(f"/v1/contracts/{own['id']}/extend", json={"ends_on": "2027-06-30"},
                             headers=callers.provider_a), 403, "insufficient_scope")


def test_a_caseworker_reads_but_does_not_write(http: httpx.Client, callers: Callers) -> None:
    contract = create(http, callers, callers.b)
    read = http.get(f"/v1/contracts/{contract['id']}", headers=callers.caseworker)
    assert read.status_code == 200 and read.json() == contract
    listed = http.get("/v1/contracts", params={"provider_id": callers.b, "limit": 500},
                      headers=callers.caseworker)
    assert listed.status_code == 200 and contract["id"] in ids(listed.json())
    assert_problem(http.post("/v1/contracts", json=terms(callers.a),
                             headers=callers.caseworker), 403, "insufficient_scope")
    assert_problem(http.post(f"/v1/contracts/{contract['id']}/extend",
                             json={"ends_on": "2027-06-30"}, headers=callers.caseworker),
                   403, "insufficient_scope")


def test_without_a_token_every_route_is_401(http: httpx.Client, callers: Callers) -> None:
    contract = create(http, callers)
    for method, path, body in [
        ("POST", "/v1/contracts", terms(callers.a)),
        ("GET", "/v1/contracts", None),
        ("GET", f"/v1/contracts/{contract['id']}", None),
        ("POST", f"/v1/contracts/{contract['id']}/extend", {"ends_on": "2027-06-30"}),
    ]:
        assert_problem(http.request(method, path, json=body), 401, "unauthorized")


def test_a_service_reads_terms_and_nothing_more(http: httpx.Client, callers: Callers) -> None:
    contract = create(http, callers, callers.b)
    read = http.get(f"/v1/contracts/{contract['id']}", headers=callers.service)
    assert read.status_code == 200 and read.json() == contract
    assert_problem(http.get(f"/v1/contracts/{uuid.uuid4()}", headers=callers.service),
                   404, "not_found")
    assert_problem(http.get("/v1/providers", headers=callers.service), 403,
                   "insufficient_scope")
    assert_problem(http.get("/v1/contracts", headers=callers.service), 403,
                   "insufficient_scope")
    assert_problem(http.post("/v1/contracts", json=terms(callers.a), headers=callers.service),
                   403, "insufficient_scope")
    assert_problem(http.post(f"/v1/contracts/{contract['id']}/extend",
                             json={"ends_on": "2027-06-30"}, headers=callers.service),
                   403, "insufficient_scope")


# Extending --------------------------------------------------------------------------------
def test_extend_keeps_the_history(http: httpx.Client, callers: Callers) -> None:
    contract = create(http, callers, ends_on="2026-12-31")
    first = http.post(f"/v1/contracts/{contract['id']}/extend", json={"ends_on": "2027-08-31"},
                      headers=callers.admin)
    assert first.status_code == 200, first.text
    assert first.json()["ends_on"] == "2027-08-31"
    second = http.post(f"/v1/contracts/{contract['id']}/extend",
                       json={"ends_on": "2028-02-29"}, headers=callers.admin).json()
    assert second["ends_on"] == "2028-02-29"
    history = second["extensions"]
    assert [(e["previous_ends_on"], e["new_ends_on"]) for e in history] == [
        ("2026-12-31", "2027-08-31"), ("2027-08-31", "2028-02-29")]
    assert {e["extended_by"] for e in history} == {ADMIN_ID}
    assert history[0]["extended_at"] <= history[1]["extended_at"]
    # Everything else is unchanged, and a reader sees the same history.
    unchanged = {k: v for k, v in contract.items() if k not in ("ends_on", "extensions")}
    assert {k: v for k, v in second.items() if k not in ("ends_on", "extensions")} == unchanged
    assert http.get(f"/v1/contracts/{contract['id']}", headers=callers.provider_a).json() \
        == second


def test_extend_must_be_later(http: httpx.Client, callers: Callers) -> None:
    contract = create(http, callers, ends_on="2026-12-31")
    for ends_on in ("2026-12-31", "2026-12-30", "2025-01-01"):
        response = http.post(f"/v1/contracts/{contract['id']}/extend",
                             json={"ends_on": ends_on}, headers=callers.admin)
        assert_problem(response, 422, "extension_not_later")
    after = http.get(f"/v1/contracts/{contract['id']}", headers=callers.admin).json()
    assert after["ends_on"] == "2026-12-31" and after["extensions"] == []


def test_extend_refusals(http: httpx.Client, callers: Callers) -> None:
    contract = create(http, callers)
    path = f"/v1/contracts/{contract['id']}/extend"
    for body in ({}, {"ends_on": "soon"}, {"ends_on": "2027-01-01", "reason": "x"}):
        assert_problem(http.post(path, json=body, headers=callers.admin), 422,
                       "validation_error")
    assert_problem(http.post(f"/v1/contracts/{uuid.uuid4()}/extend",
                             json={"ends_on": "2030-01-01"}, headers=callers.admin),
                   404, "not_found")
    assert_problem(http.get("/v1/contracts/not-a-uuid", headers=callers.admin), 422,
                   "validation_error")


def test_concurrent_extensions_chain(system: System, callers: Callers) -> None:
    """Each extension's previous end date is the one the extension before it set."""
    with system.http() as http:
        contract = create(http, callers, ends_on="2026-12-31")
    targets = [date(2027, 1, 1) + timedelta(days=30 * i) for i in range(8)]
    random.shuffle(targets)

    def extend(day: date) -> int:
        with system.http() as client:
            return client.post(f"/v1/contracts/{contract['id']}/extend",
                               json={"ends_on": day.isoformat()},
                               headers=callers.admin).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(extend, targets))
    assert set(statuses) <= {200, 422} and 200 in statuses
    with system.http() as http:
        final = http.get(f"/v1/contracts/{contract['id']}", headers=callers.admin).json()
    history = final["extensions"]
    assert len(history) == statuses.count(200)
    chain = ["2026-12-31"] + [e["new_ends_on"] for e in history]
    assert [e["previous_ends_on"] for e in history] == chain[:-1]
    assert chain == sorted(chain) and final["ends_on"] == chain[-1] == max(
        d.isoformat() for d, s in zip(targets, statuses, strict=True) if s == 200)


def test_writes_are_on_record(system: System, http: httpx.Client, callers: Callers) -> None:
    contract = create(http, callers)
    resource = f"contract/{contract['id']}"
    http.post(f"/v1/contracts/{contract['id']}/extend", json={"ends_on": "2027-01-31"},
              headers=callers.admin)
    http.post(f"/v1/contracts/{contract['id']}/extend", json={"ends_on": "2027-01-01"},
              headers=callers.admin)
    http.get(f"/v1/contracts/{contract['id']}", headers=callers.admin)
    engine = make_engine(system.settings.database_url(ServiceName.providers))
    try:
        with new_session(engine) as session:
            entries = session.exec(select(AuditEntry).where(AuditEntry.resource == resource)
                                   .order_by(AuditEntry.seq)).all()
    finally:
        engine.dispose()
    assert [(e.action, e.outcome) for e in entries] == [
        ("contract.create", "success"), ("contract.extend", "success"),
        ("contract.extend", "refused:extension_not_later")]
    assert {(e.actor, e.role, e.purpose, e.citizen_id) for e in entries} == {
        (ADMIN_ID, "admin", "administration", None)}


# Listing ----------------------------------------------------------------------------------
def test_expiring_within_days(http: httpx.Client, callers: Callers) -> None:
    provider = new_provider(http, callers.admin)
    today = local_today()
    start = (today - timedelta(days=100)).isoformat()

    def ending(days: int) -> str:
        ends_on = (today + timedelta(days=days)).isoformat()
        return create(http, callers, provider, starts_on=start, ends_on=ends_on)["id"]

    ended, soon, later, far = ending(-3), ending(10), ending(45), ending(400)

    def expiring(days: int) -> set[str]:
        response = http.get("/v1/contracts", headers=callers.admin, params={
            "provider_id": provider, "expiring_within_days": days})
        assert response.status_code == 200, response.text
        return ids(response.json())

    assert expiring(30) == {soon}
    assert expiring(60) == {soon, later}
    assert expiring(3650) == {soon, later, far}
    assert expiring(5) == set()
    assert ended not in expiring(3650)
    # An extension moves a contract out of the window.
    http.post(f"/v1/contracts/{soon}/extend", headers=callers.admin,
              json={"ends_on": (today + timedelta(days=200)).isoformat()})
    assert expiring(30) == set()
    for bad in (-1, 3661, "soon"):
        response = http.get("/v1/contracts", params={"expiring_within_days": bad},
                            headers=callers.admin)
        assert_problem(response, 422, "validation_error")


def test_active_on(http: httpx.Client, callers: Callers) -> None:
    provider = new_provider(http, callers.admin)
    first_half = create(http, callers, provider, starts_on="2025-01-01",
                        ends_on="2025-06-30")["id"]
    second_half = create(http, callers, provider, starts_on="2025-06-01",
                         ends_on="2025-12-31")["id"]

    def active(day: str) -> set[str]:
        response = http.get("/v1/contracts", params={"provider_id": provider,
                                                     "active_on": day}, headers=callers.admin)
        assert response.status_code == 200, response.text
        return ids(response.json())

    assert active("2024-12-31") == set()
    assert active("2025-01-01") == {first_half}
    assert active("2025-06-15") == {first_half, second_half}
    assert active("2025-06-30") == {first_half, second_half}
    assert active("2025-07-01") == {second_half}
    assert active("2026-01-01") == set()
    for bad in ("2025-02-30", "15-06-2025", "2025-06-15T10:00:00"):
        assert_problem(http.get("/v1/contracts", params={"active_on": bad},
                                headers=callers.admin), 422, "validation_error")


def test_offer_type_filter(http: httpx.Client, callers: Callers) -> None:
    provider = new_provider(http, callers.admin)
    youth = create(http, callers, provider, offer_types=["youth_education"])["id"]
    both = create(http, callers, provider,
                  offer_types=["utility_work", "youth_education"])["id"]

    def covering(offer_type: str) -> set[str]:
        return ids(http.get("/v1/contracts", params={"provider_id": provider,
                                                     "offer_type": offer_type},
                            headers=callers.admin).json())

    assert covering("youth_education") == {youth, both}
    assert covering("utility_work") == {both}
    assert covering("wage_subsidy") == set()
    assert_problem(http.get("/v1/contracts", params={"offer_type": "knitting"},
                            headers=callers.admin), 422, "validation_error")


def test_pages_cover_every_contract_once(system: System, http: httpx.Client,
                                        callers: Callers) -> None:
    provider = new_provider(http, callers.admin)
    created = {create(http, callers, provider)["id"] for _ in range(7)}
    own = bearer(system.token_for("provider", provider_id=provider))
    for headers in (callers.admin, own):
        seen: list[str] = []
        cursor, pages = None, 0
        while True:
            params: dict[str, Any] = {"limit": 3, "provider_id": provider}
            if cursor:
                params["cursor"] = cursor
            page = http.get("/v1/contracts", params=params, headers=headers).json()
            assert len(page["items"]) <= 3
            seen += [item["id"] for item in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 3 and len(seen) == len(set(seen)) and set(seen) == created
    for params in ({"limit": 501}, {"limit": 0}):
        assert_problem(http.get("/v1/contracts", params=params, headers=callers.admin), 422,
                       "validation_error")
    assert_problem(http.get("/v1/contracts", params={"cursor": "garbage"},
                            headers=callers.admin), 422, "invalid_cursor")
    assert http.get("/v1/contracts", params={"limit": 500},
                    headers=callers.admin).status_code == 200


def test_the_gateway_documents_the_contract_routes(system: System) -> None:
    paths = httpx.get(f"{system.url}/openapi.json").json()["paths"]
    # One requirement object per scope that lets a caller in (either one for a contract).
    security = {
        ("/v1/contracts", "post"): [["providers:write"]],
        ("/v1/contracts", "get"): [["providers:read"]],
        ("/v1/contracts/{contract_id}", "get"): [["contracts:terms"], ["providers:read"]],
        ("/v1/contracts/{contract_id}/extend", "post"): [["providers:write"]],
    }
    for (path, method), alternatives in security.items():
        assert paths[path][method]["security"] == [{"ClientCredentials": scopes}
                                                   for scopes in alternatives]
    filters = {p["name"] for p in paths["/v1/contracts"]["get"]["parameters"]}
    assert filters == {"limit", "cursor", "provider_id", "active_on", "expiring_within_days",
                       "offer_type"}
