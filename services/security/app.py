from __future__ import annotations

from fastapi import FastAPI

from services.platform.app import create_service_app
from services.platform.settings import ServiceName, Settings, SettingsError
from services.platform.tokens import KeyLookup

from .measures import DEFAULT_POLICY, MeasurePolicy
from .routes import router


def create_app(settings: Settings | None = None, *, key_lookup: KeyLookup | None = None,
               measure_policy: MeasurePolicy | None = None) -> FastAPI:
    """`measure_policy` replaces the default measures by level (see `measures.py`)."""
    settings = settings or Settings()
    if settings.field_encryption_keys is None or settings.hash_key is None:
        # Police data and CPR numbers are never stored in clear: no keys, no service.
        raise SettingsError("the security service needs SIKKERBY_FIELD_ENCRYPTION_KEYS "
                            "and SIKKERBY_HASH_KEY")
    if not settings.service_client_id or settings.service_client_secret is None:
        # It resolves CPR numbers and checks placements through the gateway.
        raise SettingsError("the security service calls others: set "
                            "SIKKERBY_SERVICE_CLIENT_ID and SIKKERBY_SERVICE_CLIENT_SECRET")
    app = create_service_app(ServiceName.security, settings, [router],
                             title="sikkerby security", key_lookup=key_lookup)
    app.state.measure_policy = measure_policy or DEFAULT_POLICY
    return app
