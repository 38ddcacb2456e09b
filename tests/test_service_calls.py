"""Service-to-service calls through the gateway, and the gateway's own audit trail."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from sqlalchemy import text

from services.platform.audit import verify_chain
from services.platform.clients import GatewayClient
from services.platform.db import make_engine, new_session
from services.platform.middleware import request_id_var
from services.platform.problems import NotFound, ServiceUnavailable
from services.platform.scopes import Scope
from services.platform.settings import ServiceName

from .support.builders import register
from .support.system import System, bearer


def activation_client(system: System, http: httpx.AsyncClient) -> GatewayClient:
    return GatewayClient(system.url, "svc-activation",
                         system.shared["ACTIVATION_SERVICE_CLIENT_SECRET"], http)


def test_a_service_calls_another_with_its_own_narrow_token(system: System) -> None:
    caseworker = bearer(system.token_for("caseworker"))
    with system.http() as http:
        citizen = register(http, caseworker)

    async def scenario() -> tuple[dict, str]:
        async with httpx.AsyncClient() as http:
            client = activation_client(system, http)
            request_id_var.set("chain-" + uuid.uuid4().hex)
            found = await client.get_json(f"/v1/citizens/{citizen['id']}/eligibility",
                                          scope=Scope.citizens_status)
            with pytest.raises(NotFound):
                await client.get_json(f"/v1/citizens/{uuid.uuid4()}/eligibility",
                                      scope=Scope.citizens_status)
            # A scope outside what the service client holds is never granted.
            with pytest.raises(ServiceUnavailable):
                await client.get_json(f"/v1/citizens/{citizen['id']}",
                                      scope=Scope.citizens_read)
            return found, request_id_var.get()

    found, request_id = asyncio.run(scenario())
    assert found["id"] == citizen["id"] and found["status"] == "not_enrolled"
    # The request id of the calling request is the one on record in the called service.
    engine = make_engine(system.settings.database_url(ServiceName.citizens))
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT actor, role, action, purpose FROM audit_entry WHERE request_id = :r"),
                {"r": request_id}).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows][0] == (
        "svc-activation", "service", "citizen.eligibility", "service_check")


def test_a_dead_gateway_is_service_unavailable(system: System) -> None:
    async def scenario() -> None:
        async with httpx.AsyncClient() as http:
            client = GatewayClient("http://127.0.0.1:9", "svc-activation", "x", http,
                                   timeout=2)
            with pytest.raises(ServiceUnavailable):
                await client.get_json("/v1/citizens/x/eligibility", scope=Scope.citizens_status)

    asyncio.run(scenario())


def test_the_gateway_audits_every_forwarded_request_in_a_chain(system: System) -> None:
    token = system.token_for("caseworker")
    marker = "gw-audit-" + uuid.uuid4().hex
    with system.http() as http:
        assert http.get("/v1/providers", headers={**bearer(token), "X-Request-ID": marker}
                        ).status_code == 200
        assert http.get("/v1/reports/enrolment", headers={
            **bearer(token), "X-Request-ID": marker + "-denied"}).status_code == 403
    engine = make_engine(system.settings.database_url(ServiceName.gateway))
    try:
        deadline = time.monotonic() + 10  # entries are written in batches
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                rows = connection.execute(text(
                    "SELECT request_id, role, action, resource, outcome FROM audit_entry "
                    "WHERE request_id LIKE :m ORDER BY seq"), {"m": marker + "%"}).all()
            if len(rows) == 2:
                break
            time.sleep(0.1)
        with new_session(engine) as session:
            intact, count = verify_chain(session)
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [
        (marker, "caseworker", "gateway.forward", "GET /v1/providers", "200"),
        (marker + "-denied", "caseworker", "gateway.forward", "GET /v1/reports/enrolment",
         "refused:insufficient_scope")]
    assert intact and count >= 2
