from __future__ import annotations

from fastapi import FastAPI

from services.platform.app import create_service_app
from services.platform.settings import ServiceName, Settings, SettingsError
from services.platform.tokens import KeyLookup

from .routes import router


def create_app(settings: Settings | None = None, *, key_lookup: KeyLookup | None = None) -> FastAPI:
    settings = settings or Settings()
    if settings.field_encryption_keys is None or settings.hash_key is None:
        # CPR numbers are never stored in clear: no keys, no service.
        raise SettingsError("the citizens service needs SIKKERBY_FIELD_ENCRYPTION_KEYS "
                            "and SIKKERBY_HASH_KEY")
    return create_service_app(ServiceName.citizens, settings, [router],
                              title="sikkerby citizens", key_lookup=key_lookup)
