from __future__ import annotations

from fastapi import FastAPI

from services.platform.app import create_service_app
from services.platform.settings import ServiceName, Settings
from services.platform.tokens import KeyLookup

from .routes import router


def create_app(settings: Settings | None = None, *, key_lookup: KeyLookup | None = None) -> FastAPI:
    return create_service_app(ServiceName.security, settings or Settings(), [router],
                              title="sikkerby security", key_lookup=key_lookup)
