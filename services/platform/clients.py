"""Calls from one service to another: always through the gateway, with the calling
service's own client credentials and only the scopes that call needs.

    client = GatewayClient.from_settings(settings, http)
    eligibility = await client.get_json("/v1/citizens/{id}/eligibility", scope=...)

The token is fetched once and reused until shortly before it expires. The current request
id travels along, so one id follows a request through every service it touches. A
downstream service that is down or slow is a 503 problem for the caller, never a hang.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx

from .middleware import request_id_var
from .problems import NotFound, ServiceUnavailable
from .scopes import Scope, format_scopes
from .settings import Settings, SettingsError

REFRESH_MARGIN_SECONDS = 30


class GatewayClient:
    def __init__(self, base_url: str, client_id: str, client_secret: str,
                 http: httpx.AsyncClient, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._http = http
        self._timeout = timeout
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.AsyncClient) -> GatewayClient:
        if not settings.service_client_id or settings.service_client_secret is None:
            raise SettingsError("this service calls others: set SIKKERBY_SERVICE_CLIENT_ID "
                                "and SIKKERBY_SERVICE_CLIENT_SECRET")
        return cls(settings.public_gateway_url, settings.service_client_id,
                   settings.service_client_secret.get_secret_value(), http,
                   timeout=settings.upstream_timeout_seconds)

    async def _token(self, scopes: frozenset[Scope]) -> str:
        key = format_scopes(scopes)
        cached = self._tokens.get(key)
        if cached and cached[1] - REFRESH_MARGIN_SECONDS > time.monotonic():
            return cached[0]
        async with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] - REFRESH_MARGIN_SECONDS > time.monotonic():
                return cached[0]
            try:
                response = await self._http.post(
                    f"{self.base_url}/v1/auth/token", timeout=self._timeout,
                    data={"grant_type": "client_credentials", "client_id": self._client_id,
                          "client_secret": self._client_secret, "scope": key})
            except httpx.HTTPError as exc:
                raise ServiceUnavailable("The gateway is unavailable.") from exc
            if response.status_code != 200:
                raise ServiceUnavailable("This service could not get a token for its call.")
            body = response.json()
            self._tokens[key] = (body["access_token"], time.monotonic() + body["expires_in"])
            return body["access_token"]

    async def request(self, method: str, path: str, *, scope: Scope | frozenset[Scope],
                      json: Any = None) -> httpx.Response:
        scopes = frozenset({scope}) if isinstance(scope, Scope) else scope
        headers = {"Authorization": f"Bearer {await self._token(scopes)}",
                   "X-Request-ID": request_id_var.get()}
        try:
            return await self._http.request(method, f"{self.base_url}{path}", json=json,
                                            headers=headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"A service this call needs is unavailable ({path}).") \
                from exc

    async def get_json(self, path: str, *, scope: Scope | frozenset[Scope]) -> Any:
        """The JSON of a 200; NotFound for a 404; ServiceUnavailable for anything else."""
        response = await self.request("GET", path, scope=scope)
        if response.status_code == 404:
            raise NotFound()
        if response.status_code != 200:
            raise ServiceUnavailable(f"A service this call needs answered {response.status_code}.")
        return response.json()


class SyncGatewayClient:
    """The same, for code that runs in a worker thread inside a database transaction
    (the placement rules call other services while holding their row locks)."""

    def __init__(self, base_url: str, client_id: str, client_secret: str,
                 http: httpx.Client, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = {"grant_type": "client_credentials", "client_id": client_id,
                             "client_secret": client_secret}
        self._http = http
        self._timeout = timeout
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.Client) -> SyncGatewayClient:
        if not settings.service_client_id or settings.service_client_secret is None:
            raise SettingsError("this service calls others: set SIKKERBY_SERVICE_CLIENT_ID "
                                "and SIKKERBY_SERVICE_CLIENT_SECRET")
        return cls(settings.public_gateway_url, settings.service_client_id,
                   settings.service_client_secret.get_secret_value(), http,
                   timeout=settings.upstream_timeout_seconds)

    def _token(self, scopes: frozenset[Scope]) -> str:
        key = format_scopes(scopes)
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] - REFRESH_MARGIN_SECONDS > time.monotonic():
                return cached[0]
            try:
                response = self._http.post(f"{self.base_url}/v1/auth/token",
                                           data={**self._credentials, "scope": key},
                                           timeout=self._timeout)
            except httpx.HTTPError as exc:
                raise ServiceUnavailable("The gateway is unavailable.") from exc
            if response.status_code != 200:
                raise ServiceUnavailable("This service could not get a token for its call.")
            body = response.json()
            self._tokens[key] = (body["access_token"], time.monotonic() + body["expires_in"])
            return body["access_token"]

    def request(self, method: str, path: str, *, scope: Scope, json: Any = None
                ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token(frozenset({scope}))}",
                   "X-Request-ID": request_id_var.get()}
        try:
            return self._http.request(method, f"{self.base_url}{path}", json=json,
                                      headers=headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"A service this call needs is unavailable ({path}).") \
                from exc

    def json(self, method: str, path: str, *, scope: Scope, json: Any = None) -> Any:
        """The JSON of a 200; NotFound for a 404; ServiceUnavailable for anything else."""
        response = self.request(method, path, scope=scope, json=json)
        if response.status_code == 404:
            raise NotFound()
        if response.status_code != 200:
            raise ServiceUnavailable(f"A service this call needs answered {response.status_code}.")
        return response.json()
