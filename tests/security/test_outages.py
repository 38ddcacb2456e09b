"""The security service and the services it asks: a provider's constraints through the
activation service's placements (a stand-in here, answering as the activation service
will: `GET /v1/placements?citizen_id=` with items `{"provider_id", "status"}`), and police
uploads while the citizens service is down (all or nothing)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from jose import jwt
from sqlalchemy import text

from services.citizens.app import create_app as create_citizens
from services.platform.db import make_engine
from services.platform.settings import ServiceName

from ..support.builders import make_cpr, register
from ..support.servers import ThreadedServer
from ..support.system import System, bearer
from ..test_gateway import assert_problem
from .support import assessment, upload

# What the stand-in answers: citizen id -> placements; "fail" makes it answer 500.
PLACEMENTS: dict[str, list[dict[str, Any]]] = {}
BEHAVIOUR = {"fail": False, "page_size": 50}
SEEN_CLAIMS: list[dict[str, Any]] = []


def stand_in_activation() -> FastAPI:
    app = FastAPI()

    @app.get("/v1/placements")
    async def placements(request: Request, citizen_id: str, cursor: str | None = None
                         ) -> JSONResponse:
        token = request.headers["authorization"].partition(" ")[2]
        SEEN_CLAIMS.append(jwt.get_unverified_claims(token))
        if BEHAVIOUR["fail"]:
            return JSONResponse({"detail": "boom"}, status_code=500)
        items = PLACEMENTS.get(citizen_id, [])
        start = int(cursor or 0)
        page = items[start:start + BEHAVIOUR["page_size"]]
        more = start + len(page) < len(items)
        return JSONResponse({"items": page,
                             "next_cursor": str(start + len(page)) if more else None})

    return app


@pytest.fixture(scope="module")
def activation(system: System):
    system.servers.pop(ServiceName.activation).stop()
    server = ThreadedServer(stand_in_activation(), system.ports[ServiceName.activation]).start()
    system.servers[ServiceName.activation] = server
    return server


@pytest.fixture(scope="module")
def providers() -> tuple[str, str]:
    return str(uuid.uuid4()), str(uuid.uuid4())


def placement(provider_id: str, status: str = "active") -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "provider_id": provider_id, "status": status,
            "citizen_id": "x"}


def reported(http: httpx.Client, callers, level: int = 3) -> dict:
    person = register(http, callers.caseworker)
    upload(http, callers.police, assessment(person["cpr"], level=level))
    return person


def test_a_provider_reads_measures_only_for_its_active_placements(
        system: System, http, callers, activation, providers) -> None:
    a, b = providers
    provider_a = bearer(system.token_for("provider", provider_id=a))
    provider_b = bearer(system.token_for("provider", provider_id=b))
    person = reported(http, callers)
    PLACEMENTS[person["id"]] = [placement(b, "ended"), placement(a)]
    response = http.get(f"/v1/constraints/{person['id']}", headers=provider_a)
    assert response.status_code == 200, response.text
    assert response.json()["measures"] == ["small_group", "two_staff"]
    assert set(response.json()) == {"citizen_id", "measures", "max_group_size", "as_of"}
    # Provider B's placement has ended: 404, as for a citizen it never had.
    assert_problem(http.get(f"/v1/constraints/{person['id']}", headers=provider_b), 404,
                   "not_found")
    stranger = reported(http, callers)
    assert_problem(http.get(f"/v1/constraints/{stranger['id']}", headers=provider_a), 404,
                   "not_found")
    # The security service asked with its own client and the one narrow scope.
    assert SEEN_CLAIMS and all(c["scope"] == "placements:status" and c["role"] == "service"
                               and c["sub"] == "svc-security" for c in SEEN_CLAIMS)


def test_every_page_of_placements_is_looked_through(system: System, http, callers,
                                                    activation, providers) -> None:
    a, b = providers
    person = reported(http, callers)
    PLACEMENTS[person["id"]] = [placement(b) for _ in range(5)] + [placement(a)]
    BEHAVIOUR["page_size"] = 2
    try:
        response = http.get(f"/v1/constraints/{person['id']}",
                            headers=bearer(system.token_for("provider", provider_id=a)))
    finally:
        BEHAVIOUR["page_size"] = 50
    assert response.status_code == 200, response.text


def test_when_placements_cannot_be_checked_the_provider_is_denied(
        system: System, http, callers, activation, providers) -> None:
    a, _ = providers
    provider_a = bearer(system.token_for("provider", provider_id=a))
    person = reported(http, callers)
    PLACEMENTS[person["id"]] = [placement(a)]
    BEHAVIOUR["fail"] = True
    try:
        assert_problem(http.get(f"/v1/constraints/{person['id']}", headers=provider_a), 404,
                       "not_found")
        # Everyone else is unaffected: they need no placement.
        assert http.get(f"/v1/constraints/{person['id']}",
                        headers=callers.caseworker).status_code == 200
    finally:
        BEHAVIOUR["fail"] = False
    engine = make_engine(system.settings.database_url(ServiceName.security))
    try:
        with engine.connect() as connection:
            outcomes = [r.outcome for r in connection.execute(text(
                "SELECT outcome FROM audit_entry WHERE action = 'constraints.read' "
                "AND role = 'provider' ORDER BY seq"))]
    finally:
        engine.dispose()
    assert "refused:not_found" in outcomes and "success" in outcomes


def count_rows(system: System) -> dict[str, int]:
    engine = make_engine(system.settings.database_url(ServiceName.security))
    try:
        with engine.connect() as connection:
            return {t: connection.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()  # noqa: S608
                    for t in ("threat_subject", "threat_assessment", "referral",
                              "idempotency_key")}
    finally:
        engine.dispose()


def test_with_the_citizens_service_down_an_upload_is_503_and_stores_nothing(
        system: System, http, callers, activation) -> None:
    known_person = reported(http, callers, level=2)
    upload(http, callers.police, assessment(make_cpr(date(1977, 7, 7))))
    system.servers.pop(ServiceName.citizens).stop()
    try:
        before = count_rows(system)
        body = assessment(make_cpr(date(1982, 8, 8)), level=4)
        key = f"down-{uuid.uuid4()}"
        response = http.post("/v1/threat-assessments", json=body,
                             headers={**callers.police, "Idempotency-Key": key})
        assert_problem(response, 503, "service_unavailable")
        assert count_rows(system) == before
        # Re-checking referrals needs the citizens service too: 503, nothing changed.
        assert_problem(http.post("/v1/referrals/recheck", headers=callers.caseworker), 503,
                       "service_unavailable")
        # The same for a person found before: the police must not tell the two apart.
        assert_problem(http.post("/v1/threat-assessments", headers=callers.police,
                                 json=assessment(known_person["cpr"], level=4)),
                       503, "service_unavailable")
        assert count_rows(system) == before
    finally:
        settings = system.service_settings(ServiceName.citizens, system.shared)
        system.servers[ServiceName.citizens] = ThreadedServer(
            create_citizens(settings), system.ports[ServiceName.citizens]).start()
    # The retry with the same key runs afresh now, and is then replayed.
    first = upload(http, callers.police, body, key=key)
    assert upload(http, callers.police, body, key=key) == first
