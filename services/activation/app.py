from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.platform.app import create_service_app
from services.platform.clients import SyncGatewayClient
from services.platform.settings import ServiceName, Settings
from services.platform.tokens import KeyLookup

from .clients import Neighbours
from .routes import router


def create_app(settings: Settings | None = None, *, key_lookup: KeyLookup | None = None) -> FastAPI:
    settings = settings or Settings()
    # The placement rules call other services from inside their transaction, in a worker
    # thread: a synchronous, pooled client.
    http = httpx.Client(limits=httpx.Limits(max_connections=50))
    app = create_service_app(ServiceName.activation, settings, [router],
                             title="sikkerby activation", key_lookup=key_lookup,
                             on_shutdown=[http.close])
    app.state.neighbours = Neighbours(SyncGatewayClient.from_settings(settings, http))
    return app
