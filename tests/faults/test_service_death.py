"""A service the placement needs dies while the placement is being made.

The activation service asks three others during a placement: the citizens service (is the
citizen enrolled, how old), the providers service (the contract's terms) and, last, with
the row locks on the cap, the contract and the cohort held, the security service (the
measures). Each test kills one of them at the moment the activation service is about to
ask it (a hook on that call stops the server), so the placement's transaction is under
way when it happens. The caller gets a clean 503 problem document, nothing of the
placement remains (no row, no seat, no hours, no audit entry claiming success), the
gateway's /readyz names the dead service, and once the service is back the same
placement is made on the contract's only seat.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from services.platform.audit import AuditEntry
from services.platform.clock import local_today
from services.platform.db import make_engine
from services.platform.settings import ServiceName

from ..support.builders import enrolled_citizen, make_contract, make_provider
from ..support.servers import ThreadedServer
from ..support.system import FACTORIES, System, bearer
from ..test_gateway import assert_problem

TODAY = local_today()
# The call the activation service makes to each service during a placement.
CALLS = {ServiceName.citizens: "eligibility", ServiceName.providers: "contract_terms",
         ServiceName.security: "group_check"}


@pytest.fixture(scope="module")
def fragile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = System(tmp_path_factory.mktemp("fragile"), upstream_timeout_seconds=3.0).start()
    yield running
    running.stop()


def restart(system: System, service: ServiceName) -> None:
    app = FACTORIES[service](system.service_settings(service, system.shared))
    system.servers[service] = ThreadedServer(app, system.ports[service]).start()


def kill_on_call(system: System, service: ServiceName) -> Any:
    """Stop `service` when the activation service is about to call it; returns an undo."""
    neighbours = system.servers[ServiceName.activation].server.config.app.state.neighbours
    name = CALLS[service]
    original = getattr(neighbours, name)

    def dying(*args: Any, **kwargs: Any) -> Any:
        server = system.servers.pop(service, None)
        if server is not None:
            server.stop()
        return original(*args, **kwargs)

    setattr(neighbours, name, dying)
    return lambda: delattr(neighbours, name)


@pytest.mark.parametrize("service", list(CALLS), ids=[s.value for s in CALLS])
def test_a_service_killed_during_a_placement(fragile: System, service: ServiceName) -> None:
    admin = bearer(fragile.admin_token())
    caseworker = bearer(fragile.token_for("caseworker"))
    with fragile.http() as http:
        provider = make_provider(http, admin, "Skrøbelig ApS")
        contract = make_contract(http, admin, provider["id"], capacity=1,
                                 ends_on=(TODAY + timedelta(days=200)).isoformat())
        citizen = enrolled_citizen(http, caseworker)
        body = {"citizen_id": citizen["id"], "contract_id": contract["id"],
                "offer_type": "special_employment",
                "starts_on": (TODAY - timedelta(days=7)).isoformat(),
                "ends_on": (TODAY + timedelta(days=60)).isoformat(), "weekly_hours": 37}
        request_id = f"dies-{service.value}-{time.monotonic_ns()}"

        undo = kill_on_call(fragile, service)
        try:
            response = http.post("/v1/placements", json=body,
                                 headers={**caseworker, "X-Request-ID": request_id})
        finally:
            undo()
        assert_problem(response, 503, "service_unavailable")
        assert citizen["cpr"] not in response.text and "Traceback" not in response.text
        assert service not in fragile.servers, "the hook did not run"

        # Nothing of it remains: no placement, and its audit entry records the refusal.
        listed = http.get("/v1/placements", params={"citizen_id": citizen["id"]},
                          headers=caseworker)
        assert listed.status_code == 200 and listed.json()["items"] == []
        engine = make_engine(fragile.settings.database_url(ServiceName.activation), writer=False)
        try:
            with Session(engine) as session:
                outcomes = [e.outcome for e in session.exec(select(AuditEntry).where(
                    AuditEntry.request_id == request_id,
                    AuditEntry.action == "placement.create"))]
        finally:
            engine.dispose()
        assert outcomes == ["refused:service_unavailable"], outcomes

        ready = httpx.get(f"{fragile.url}/readyz", timeout=30)
        down = assert_problem(ready, 503, "service_unavailable")["down"]
        assert down == [service.value], down

        restart(fragile, service)
        deadline = time.monotonic() + 30
        while httpx.get(f"{fragile.url}/readyz", timeout=30).status_code != 200:
            assert time.monotonic() < deadline, "not ready after the restart"
            time.sleep(0.1)
        # The contract's only seat and the citizen's 37 hours were never taken.
        again = http.post("/v1/placements", json=body, headers=caseworker)
        assert again.status_code == 201, again.text
        listed = http.get("/v1/placements", params={"citizen_id": citizen["id"]},
                          headers=caseworker)
        assert [p["id"] for p in listed.json()["items"]] == [again.json()["id"]]
