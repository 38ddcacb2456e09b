"""The whole system for a test: four services and the gateway, each a real HTTP server,
on SQLite files or on databases of the throwaway PostgreSQL cluster, migrated by alembic
exactly as `sikkerby up` does (it is the same `prepare`)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from gateway.app import create_app as create_gateway
from gateway.cli import prepare
from services.activation.app import create_app as create_activation
from services.citizens.app import create_app as create_citizens
from services.platform.settings import DOWNSTREAM_SERVICES, ServiceName, Settings
from services.providers.app import create_app as create_providers
from services.security.app import create_app as create_security

from .net import free_port
from .servers import ThreadedServer

FACTORIES = {
    ServiceName.citizens: create_citizens,
    ServiceName.providers: create_providers,
    ServiceName.activation: create_activation,
    ServiceName.security: create_security,
}
ADMIN_ID = "test-admin"
ADMIN_SECRET = "test-admin-secret-" + uuid.uuid4().hex


class System:
    def __init__(self, data_dir: Path, database_urls: dict[ServiceName, str] | None = None,
                 **overrides: Any) -> None:
        ports = {service: free_port() for service in DOWNSTREAM_SERVICES}
        gateway_port = free_port()
        values: dict[str, Any] = {
            "env": "test",
            "data_dir": data_dir,
            "port": gateway_port,
            "admin_client_id": ADMIN_ID,
            "admin_client_secret": SecretStr(ADMIN_SECRET),
            # The suite asks for many tokens from one address; the limit has its own test.
            "token_rate_limit_per_minute": 100_000,
            "rate_limit_per_minute": 100_000,
            "rate_limit_burst": 10_000,
            "audit_rate_limit_per_minute": 100_000,
            **{f"{s.value}_url": f"http://127.0.0.1:{p}" for s, p in ports.items()},
            **{f"{s.value}_database_url": url for s, url in (database_urls or {}).items()},
            **overrides,
        }
        self.settings = Settings(**values)
        self.ports = ports
        self.servers: dict[ServiceName, ThreadedServer] = {}
        self.url = f"http://127.0.0.1:{gateway_port}"

    def service_settings(self, service: ServiceName, shared: dict[str, str]) -> Settings:
        update: dict[str, Any] = {}
        if "SIKKERBY_FIELD_ENCRYPTION_KEYS" in shared:
            update["field_encryption_keys"] = SecretStr(shared["SIKKERBY_FIELD_ENCRYPTION_KEYS"])
            update["field_encryption_active_key"] = shared["SIKKERBY_FIELD_ENCRYPTION_ACTIVE_KEY"]
        if "SIKKERBY_HASH_KEY" in shared:
            update["hash_key"] = SecretStr(shared["SIKKERBY_HASH_KEY"])
        secret = shared.get(f"{service.value.upper()}_SERVICE_CLIENT_SECRET")
        if secret:
            update["service_client_id"] = f"svc-{service.value}"
            update["service_client_secret"] = SecretStr(secret)
        return self.settings.model_copy(update=update)

    def start(self) -> System:
        shared = prepare(self.settings)
        self.shared = shared  # generated keys and the services' client secrets
        for service in DOWNSTREAM_SERVICES:
            app = FACTORIES[service](self.service_settings(service, shared))
            self.servers[service] = ThreadedServer(app, self.ports[service]).start()
        self.servers[ServiceName.gateway] = ThreadedServer(
            create_gateway(self.settings), self.settings.port).start()
        return self

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    # Clients and tokens ---------------------------------------------------------
    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)

    def token(self, client_id: str, secret: str, scope: str | None = None) -> str:
        data = {"grant_type": "client_credentials", "client_id": client_id,
                "client_secret": secret}
        if scope is not None:
            data["scope"] = scope
        response = httpx.post(f"{self.url}/v1/auth/token", data=data, timeout=30.0)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def admin_token(self) -> str:
        """A fresh token each time: tests revoke and rotate, and need real issuance."""
        return self.token(ADMIN_ID, ADMIN_SECRET)

    def new_client(self, role: str, **extra: Any) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/v1/admin/clients",
                              json={"name": f"test {role}", "role": role, **extra},
                              headers=bearer(self.admin_token()), timeout=30.0)
        assert response.status_code == 201, response.text
        return response.json()

    def token_for(self, role: str, **extra: Any) -> str:
        client = self.new_client(role, **extra)
        return self.token(client["client_id"], client["client_secret"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
