"""The gateway when things go wrong: limits, dead and slow services."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from services.platform.settings import ServiceName

from .support.system import ADMIN_ID, ADMIN_SECRET, System, bearer
from .test_gateway import assert_problem


@pytest.fixture(scope="module")
def strict(tmp_path_factory) -> System:
    """SQLite is enough here: what is tested is the gateway, not the database."""
    running = System(tmp_path_factory.mktemp("strict"), rate_limit_per_minute=60,
                     rate_limit_burst=5, token_rate_limit_per_minute=30,
                     audit_rate_limit_per_minute=6,
                     upstream_timeout_seconds=1.0).start()
    # Rate limits are per client; these are the only clients of this system.
    yield running
    running.stop()


def test_rate_limit_per_client_is_429_with_retry_after(strict: System) -> None:
    token = strict.token(ADMIN_ID, ADMIN_SECRET)
    statuses = []
    with strict.http() as http:
        for _ in range(8):
            response = http.get("/v1/providers", headers=bearer(token))
            statuses.append(response.status_code)
        assert statuses[:5] == [200] * 5
        assert statuses[-1] == 429
        assert_problem(response, 429, "rate_limited")
        assert int(response.headers["retry-after"]) >= 1
    # Another client has its own bucket.
    assert httpx.get(f"{strict.url}/v1/providers",
                     headers=bearer(strict.token_for("caseworker"))).status_code == 200


def test_the_audit_routes_have_their_own_smaller_budget(strict: System) -> None:
    """Each audit call asks every service; a verification streams every chain."""
    token = strict.token_for("auditor")
    statuses = []
    with strict.http() as http:
        for path in ("/v1/audit", "/v1/audit/verify", "/v1/audit", "/v1/audit/verify"):
            response = http.get(path, headers=bearer(token))
            statuses.append(response.status_code)
    assert statuses == [200, 200, 429, 429]  # 6 a minute, a burst of 2
    assert_problem(response, 429, "rate_limited")
    assert int(response.headers["retry-after"]) >= 1
    # Another auditor has a bucket of its own.
    assert httpx.get(f"{strict.url}/v1/audit",
                     headers=bearer(strict.token_for("auditor"))).status_code == 200


def test_token_endpoint_is_limited_more_strictly(strict: System) -> None:
    statuses = []
    for _ in range(15):  # burst 10 per address, shared with the tests above
        response = httpx.post(f"{strict.url}/v1/auth/token",
                              data={"grant_type": "client_credentials",
                                    "client_id": "guesser", "client_secret": "guess"})
        statuses.append(response.status_code)
    assert 429 in statuses
    limited = statuses.index(429)
    assert set(statuses[:limited]) == {401}
    assert_problem(response, 429, "rate_limited")
    assert int(response.headers["retry-after"]) >= 1


class BlackHole:
    """Accepts connections and never answers: a hung service."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.held: list[socket.socket] = []
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while self.running:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                continue

    def close(self) -> None:
        self.running = False
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    running = System(tmp_path_factory.mktemp("faulty"), upstream_timeout_seconds=1.0).start()
    running.servers.pop(ServiceName.security).stop()  # dead: nothing listens
    running.servers.pop(ServiceName.activation).stop()
    hole = BlackHole(running.ports[ServiceName.activation])  # hung: listens, never answers
    yield running
    hole.close()
    running.stop()


def test_readyz_names_the_services_that_are_down(faulty: System) -> None:
    started = time.monotonic()
    response = httpx.get(f"{faulty.url}/readyz", timeout=30)
    assert time.monotonic() - started < 10
    body = assert_problem(response, 503, "service_unavailable")
    assert set(body["down"]) == {"security", "activation"}
    assert "security" in body["detail"]


def test_a_dead_service_is_a_503_problem(faulty: System) -> None:
    token = faulty.token_for("security_officer")
    response = httpx.get(f"{faulty.url}/v1/referrals", headers=bearer(token), timeout=30)
    body = assert_problem(response, 503, "service_unavailable")
    assert "security" in body["detail"]


def test_a_hung_service_is_a_504_problem_not_a_hang(faulty: System) -> None:
    token = faulty.token_for("caseworker")
    started = time.monotonic()
    response = httpx.get(f"{faulty.url}/v1/placements", headers=bearer(token), timeout=30)
    assert time.monotonic() - started < 5
    assert_problem(response, 504, "upstream_timeout")


def test_the_healthy_services_still_answer(faulty: System) -> None:
    token = faulty.token(ADMIN_ID, ADMIN_SECRET)
    assert httpx.get(f"{faulty.url}/v1/providers", headers=bearer(token)).status_code == 200
