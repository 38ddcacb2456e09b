"""The app factory every service uses: `create_service_app(name, settings, routers)`.

Nothing happens at import time. Engines, key lookups and HTTP clients are made here and
kept on `app.state`, so a test builds an app from its own settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import httpx
from fastapi import APIRouter, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from .audit_routes import router as audit_router
from .crypto import cipher_from_settings, hasher_from_settings
from .db import check_database, make_engines
from .middleware import BodyLimitMiddleware, RequestContextMiddleware, configure_logging
from .openapi import document_problems, document_scope_alternatives
from .problems import install_problem_handlers, problem_response
from .settings import ServiceName, Settings
from .tokens import KeyLookup, RemoteJwks, TokenVerifier


def create_service_app(
    service: ServiceName,
    settings: Settings,
    routers: Sequence[APIRouter],
    *,
    title: str,
    key_lookup: KeyLookup | None = None,
    on_shutdown: Sequence[Callable[[], object]] = (),
) -> FastAPI:
    configure_logging()
    engine, read_engine = make_engines(settings.database_url(service),
                                       busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    jwks = RemoteJwks(f"{settings.public_gateway_url}/.well-known/jwks.json",
                      min_interval=settings.jwks_refresh_min_interval_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=settings.upstream_timeout_seconds) as client:
            jwks._client = client
            app.state.http = client
            yield
        for hook in on_shutdown:
            hook()
        engine.dispose()
        read_engine.dispose()

    app = FastAPI(title=title, version="1.0.0", lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.service = service
    app.state.settings = settings
    app.state.engine = engine
    app.state.read_engine = read_engine
    app.state.token_verifier = TokenVerifier(
        key_lookup or jwks.get, issuer=settings.issuer, audience=settings.audience,
        leeway_seconds=settings.token_leeway_seconds,
    )
    app.state.cipher = cipher_from_settings(settings)
    app.state.hasher = hasher_from_settings(settings)
    install_problem_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service.value}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        try:
            await run_in_threadpool(check_database, engine)
        except SQLAlchemyError:
            return problem_response(503, "service_unavailable", "Database unavailable",
                                    f"{service.value}: the database does not answer.",
                                    down=[f"{service.value}-database"])
        return JSONResponse({"status": "ready", "service": service.value})

    for router in routers:
        app.include_router(router)
    # Its own audit chain, for the gateway's one trail (/v1/audit); never proxied.
    app.include_router(audit_router)
    fastapi_openapi = app.openapi
    app.openapi = lambda: document_problems(  # type: ignore[method-assign]
        document_scope_alternatives(fastapi_openapi(), app.routes))

    # Outermost first: request ids cover even the 413s.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    return app
