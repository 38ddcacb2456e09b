"""The gateway app: `create_app(settings)`.

The only public entry. Its own FastAPI app serves the token endpoint, the JWKS, client
administration, health and the merged API docs; `GatewayProxy` in front of it forwards
every route in the route table to the owning service.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from services.platform.db import check_database, make_engines
from services.platform.middleware import (
    BodyLimitMiddleware,
    RequestContextMiddleware,
    configure_logging,
)
from services.platform.openapi import document_scope_alternatives
from services.platform.problems import install_problem_handlers, problem_response
from services.platform.settings import DOWNSTREAM_SERVICES, ServiceName, Settings
from services.platform.tokens import TokenVerifier

from .access_log import AccessAudit
from .audit import router as audit_router
from .forwarding import make_forwarder
from .keys import Keystore, ensure_key_file
from .openapi import OpenApiMerger
from .proxy import GatewayProxy
from .ratelimit import RateLimiter
from .revocation import RevocationCache
from .routes import router
from .routing import RouteTable

DESCRIPTION = """The case backend of Jobcenter København's special unit.

Get a token with OAuth 2 client credentials at `POST /v1/auth/token` (the **Authorize**
button does it for you), then call the routes your role's scopes allow. Errors are RFC 9457
problem documents with a stable `code`.
"""


def create_app(settings: Settings | None = None) -> ASGIApp:
    settings = settings or Settings()
    configure_logging()
    ensure_key_file(settings.signing_key_path, allow_generate=settings.env != "production")
    keystore = Keystore(settings.signing_key_path)
    engine, read_engine = make_engines(settings.database_url(ServiceName.gateway),
                                       busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    revocation = RevocationCache(engine, settings.revocation_cache_seconds)
    verifier = TokenVerifier(keystore.public_key, issuer=settings.issuer,
                             audience=settings.audience,
                             leeway_seconds=settings.token_leeway_seconds,
                             is_revoked=revocation.is_revoked)
    routes = RouteTable()
    audit = AccessAudit(engine)
    forwarder = make_forwarder(settings.gateway_forwarder,
                               timeout=settings.upstream_timeout_seconds,
                               connect_timeout=settings.upstream_connect_timeout_seconds)
    merger = OpenApiMerger(settings, routes)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await forwarder.start()
        await audit.start()
        async with httpx.AsyncClient(timeout=settings.upstream_timeout_seconds) as client:
            app.state.http = client
            yield
        await audit.stop()
        await forwarder.close()
        engine.dispose()
        read_engine.dispose()

    app = FastAPI(title="sikkerby API", version="1.0.0", description=DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.engine = engine
    app.state.read_engine = read_engine
    app.state.keystore = keystore
    app.state.token_verifier = verifier
    app.state.revocation = revocation
    app.state.token_limiter = RateLimiter(settings.token_rate_limit_per_minute,
                                          burst=max(1, settings.token_rate_limit_per_minute // 3))
    app.state.audit_limiter = RateLimiter(settings.audit_rate_limit_per_minute,
                                          burst=max(1, settings.audit_rate_limit_per_minute // 3))
    app.state.audit = audit
    install_problem_handlers(app)
    app.include_router(router)
    app.include_router(audit_router)  # the one audit trail, merged from every service

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        client: httpx.AsyncClient = request.app.state.http

        async def service_ready(service: ServiceName) -> bool:
            try:
                response = await client.get(f"{settings.service_url(service)}/readyz",
                                            timeout=2.0)
                return response.status_code == 200
            except httpx.HTTPError:
                return False

        async def database_ready() -> bool:
            try:
                await run_in_threadpool(check_database, engine)
                return True
            except SQLAlchemyError:
                return False

        results = await asyncio.gather(database_ready(),
                                       *(service_ready(s) for s in DOWNSTREAM_SERVICES))
        names = ["gateway-database", *(s.value for s in DOWNSTREAM_SERVICES)]
        down = [name for name, ok in zip(names, results, strict=True) if not ok]
        if down:
            return problem_response(503, "service_unavailable", "Not ready",
                                    "Not ready: " + ", ".join(down) + ".", down=down)
        return JSONResponse({"status": "ready",
                             "services": {name: "up" for name in names}})

    def own_openapi() -> dict[str, Any]:
        document = get_openapi(title=app.title, version=app.version, description=DESCRIPTION,
                               routes=app.routes)
        return document_scope_alternatives(document, app.routes)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(await merger.document(own_openapi(), request.app.state.http))

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="sikkerby API")

    proxy: ASGIApp = GatewayProxy(app, settings=settings, routes=routes, verifier=verifier,
                                  limiter=RateLimiter(settings.rate_limit_per_minute,
                                                      settings.rate_limit_burst),
                                  audit=audit, forwarder=forwarder)
    if settings.cors_origins:
        proxy = CORSMiddleware(proxy, allow_origins=settings.cors_origins,
                               allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                               allow_headers=["Authorization", "Content-Type", "If-Match",
                                              "Idempotency-Key", "X-Request-ID"],
                               expose_headers=["X-Request-ID", "ETag", "Retry-After"])
    proxy = BodyLimitMiddleware(proxy, max_body_bytes=settings.max_body_bytes)
    return RequestContextMiddleware(_Lifespan(proxy, app))


class _Lifespan:
    """Passes lifespan events to the FastAPI app behind the proxy layers."""

    def __init__(self, http_app: ASGIApp, app: FastAPI) -> None:
        self.http_app = http_app
        self.app = app
        self.state = app.state

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
        else:
            await self.http_app(scope, receive, send)
