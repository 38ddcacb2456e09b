"""Calls from one service to another: always through the gateway, with the calling
service's own client credentials and only the scopes that call needs.

    client = GatewayClient.from_settings(settings, http)          # async code
    eligibility = await client.get_json("/v1/citizens/{id}/eligibility", scope=...)

    client = SyncGatewayClient.from_settings(settings, http)      # worker threads
    terms = client.json("GET", "/v1/contracts/{id}", scope=...)

Tokens are fetched once per set of scopes and reused until shortly before they expire.
The current request id travels along, so one id follows a request through every service
it touches. A downstream service that is down or slow is a 503 problem for the caller,
never a hang.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Self

import httpx

from .middleware import request_id_var
from .problems import NotFound, ServiceUnavailable
from .scopes import Scope, format_scopes
from .settings import Settings, SettingsError

REFRESH_MARGIN_SECONDS = 30


class _Credentials:
    """What both clients share: who this service is, and its cached tokens."""

    def __init__(self, base_url: str, client_id: str, client_secret: str,
                 timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.form = {"grant_type": "client_credentials", "client_id": client_id,
                     "client_secret": client_secret}
        self.timeout = timeout
        self._tokens: dict[str, tuple[str, float]] = {}

    @classmethod
    def settings_values(cls, settings: Settings) -> tuple[str, str, str]:
        if not settings.service_client_id or settings.service_client_secret is None:
            raise SettingsError("this service calls others: set SIKKERBY_SERVICE_CLIENT_ID "
                                "and SIKKERBY_SERVICE_CLIENT_SECRET")
        return (settings.public_gateway_url, settings.service_client_id,
                settings.service_client_secret.get_secret_value())

    def cached(self, key: str) -> str | None:
        hit = self._tokens.get(key)
        return hit[0] if hit and hit[1] - REFRESH_MARGIN_SECONDS > time.monotonic() else None

    def remember(self, key: str, response: httpx.Response) -> str:
        if response.status_code != 200:
            raise ServiceUnavailable("This service could not get a token for its call.")
        body = response.json()
        self._tokens[key] = (body["access_token"], time.monotonic() + body["expires_in"])
        return body["access_token"]

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "X-Request-ID": request_id_var.get()}


def _checked(response: httpx.Response) -> Any:
    """The JSON of a 200; NotFound for a 404; ServiceUnavailable for anything else."""
    if response.status_code == 404:
        raise NotFound()
    if response.status_code != 200:
        raise ServiceUnavailable(f"A service this call needs answered {response.status_code}.")
    return response.json()


def _unavailable(path: str, exc: Exception) -> ServiceUnavailable:
    error = ServiceUnavailable(f"A service this call needs is unavailable ({path}).")
    error.__cause__ = exc
    return error


class GatewayClient:
    def __init__(self, base_url: str, client_id: str, client_secret: str,
                 http: httpx.AsyncClient, *, timeout: float = 10.0) -> None:
        self._credentials = _Credentials(base_url, client_id, client_secret, timeout)
        self._http = http
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.AsyncClient) -> Self:
        return cls(*_Credentials.settings_values(settings), http,
                   timeout=settings.upstream_timeout_seconds)

    async def _token(self, scopes: frozenset[Scope]) -> str:
        key = format_scopes(scopes)
        async with self._lock:
            token = self._credentials.cached(key)
            if token is not None:
                return token
            try:
                response = await self._http.post(
                    f"{self._credentials.base_url}/v1/auth/token",
                    data={**self._credentials.form, "scope": key},
                    timeout=self._credentials.timeout)
            except httpx.HTTPError as exc:
                raise ServiceUnavailable("The gateway is unavailable.") from exc
            return self._credentials.remember(key, response)

    async def request(self, method: str, path: str, *, scope: Scope | frozenset[Scope],
                      json: Any = None) -> httpx.Response:
        scopes = frozenset({scope}) if isinstance(scope, Scope) else scope
        headers = self._credentials.headers(await self._token(scopes))
        try:
            return await self._http.request(method, f"{self._credentials.base_url}{path}",
                                            json=json, headers=headers,
                                            timeout=self._credentials.timeout)
        except httpx.HTTPError as exc:
            raise _unavailable(path, exc) from exc

    async def get_json(self, path: str, *, scope: Scope | frozenset[Scope]) -> Any:
        return _checked(await self.request("GET", path, scope=scope))


class SyncGatewayClient:
    """The same, for code that runs in a worker thread inside a database transaction
    (the placement rules call other services while holding their row locks)."""

    def __init__(self, base_url: str, client_id: str, client_secret: str,
                 http: httpx.Client, *, timeout: float = 10.0) -> None:
        self._credentials = _Credentials(base_url, client_id, client_secret, timeout)
        self._http = http
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.Client) -> Self:
        return cls(*_Credentials.settings_values(settings), http,
                   timeout=settings.upstream_timeout_seconds)

    def _token(self, scopes: frozenset[Scope]) -> str:
        key = format_scopes(scopes)
        with self._lock:
            token = self._credentials.cached(key)
            if token is not None:
                return token
            try:
                response = self._http.post(f"{self._credentials.base_url}/v1/auth/token",
                                           data={**self._credentials.form, "scope": key},
                                           timeout=self._credentials.timeout)
            except httpx.HTTPError as exc:
                raise ServiceUnavailable("The gateway is unavailable.") from exc
            return self._credentials.remember(key, response)

    def request(self, method: str, path: str, *, scope: Scope, json: Any = None
                ) -> httpx.Response:
        headers = self._credentials.headers(self._token(frozenset({scope})))
        try:
            return self._http.request(method, f"{self._credentials.base_url}{path}",
                                      json=json, headers=headers,
                                      timeout=self._credentials.timeout)
        except httpx.HTTPError as exc:
            raise _unavailable(path, exc) from exc

    def json(self, method: str, path: str, *, scope: Scope, json: Any = None) -> Any:
        return _checked(self.request(method, path, scope=scope, json=json))
