"""The gateway's hot path, as plain ASGI: token check, revocation, coarse scope check,
rate limit, forward, audit. FastAPI's routing and dependency machinery is kept off this
path on purpose; every microsecond here is paid on every request.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Receive, Scope, Send

from services.platform.auth import IDENTITY_HEADERS
from services.platform.middleware import redact_cpr, send_problem
from services.platform.settings import Settings
from services.platform.tokens import InvalidToken, TokenVerifier

from .access_log import AccessAudit
from .forwarding import Forwarder, UpstreamTimeout, UpstreamUnavailable
from .ratelimit import RateLimiter
from .routing import RouteTable

logger = logging.getLogger("sikkerby.gateway")

# Request headers that never go upstream: hop-by-hop, set by the client library, or
# identity claims that only the token may make.
_DROP_REQUEST = frozenset({
    "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
    "proxy-authorization", "proxy-connection", "host", "content-length", "x-request-id",
    "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
}) | IDENTITY_HEADERS
_UNAUTHORIZED_HEADERS = [(b"www-authenticate", b'Bearer error="invalid_token"')]


class GatewayProxy:
    """Serves the routes in the route table; everything else goes to `fallback`
    (the gateway's own FastAPI app: token endpoint, JWKS, admin, docs, health)."""

    def __init__(self, fallback: ASGIApp, *, settings: Settings, routes: RouteTable,
                 verifier: TokenVerifier, limiter: RateLimiter, audit: AccessAudit,
                 forwarder: Forwarder) -> None:
        self.fallback = fallback
        self.routes = routes
        self.verifier = verifier
        self.limiter = limiter
        self.audit = audit
        self.forwarder = forwarder
        self.upstreams = {route.service: settings.service_url(route.service) for route in routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.match(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.fallback(scope, receive, send)
            return
        request_id: str = scope["state"]["request_id"]
        headers: dict[str, str] = {}
        authorization = ""
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            if name == "authorization":
                authorization = raw_value.decode("latin-1")
            if name not in _DROP_REQUEST:
                headers[name] = raw_value.decode("latin-1")

        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            await send_problem(send, 401, "unauthorized", "Authentication required",
                               _UNAUTHORIZED_HEADERS)
            return
        try:
            principal = await self.verifier.verify(token.strip())
        except InvalidToken as exc:
            logger.info("token refused: %s", exc)
            await send_problem(send, 401, "unauthorized", "Authentication required",
                               _UNAUTHORIZED_HEADERS)
            return
        except SQLAlchemyError as exc:  # revocation unknown: fail closed, and say why
            logger.error("revocation check failed: %s", type(exc).__name__)
            await send_problem(send, 503, "service_unavailable",
                               "The gateway cannot check the token now",
                               [(b"retry-after", b"1")])
            return

        method: str = scope["method"]
        resource = f"{method} {redact_cpr(scope['path'])}"  # the audit chain is forever
        if not principal.has_any(route.scopes):
            self.audit.record(actor=principal.client_id, role=principal.role.value,
                              action="gateway.forward", resource=resource,
                              outcome="refused:insufficient_scope", request_id=request_id)
            await send_problem(send, 403, "insufficient_scope",
                               "The token lacks the scope for this route")
            return
        retry_after = self.limiter.acquire(principal.client_id)
        if retry_after:
            await send_problem(send, 429, "rate_limited", "Too many requests",
                               [(b"retry-after", str(retry_after).encode())])
            return

        body = await _read_body(receive)
        headers["x-request-id"] = request_id
        client = scope.get("client")
        if client:
            headers["x-forwarded-for"] = client[0]
        query = scope.get("query_string", b"")
        raw_path = scope.get("raw_path") or scope["path"].encode()
        url = self.upstreams[route.service] + raw_path.decode("latin-1") + (
            "?" + query.decode("latin-1") if query else "")
        try:
            status, response_headers, content = await self.forwarder.forward(
                url, method, headers, body)
        except UpstreamUnavailable:
            status = 503
            await send_problem(send, 503, "service_unavailable",
                               f"The {route.service.value} service is unavailable")
        except UpstreamTimeout:
            status = 504
            await send_problem(send, 504, "upstream_timeout",
                               f"The {route.service.value} service did not answer in time")
        except Exception:  # anything else from the wire is a bad gateway, never a hang
            status = 502
            await send_problem(send, 502, "bad_gateway",
                               f"The {route.service.value} service gave no valid answer")
        else:
            response_headers.append((b"content-length", str(len(content)).encode()))
            await send({"type": "http.response.start", "status": status,
                        "headers": response_headers})
            await send({"type": "http.response.body", "body": content})
        self.audit.record(actor=principal.client_id, role=principal.role.value,
                          action="gateway.forward", resource=resource,
                          outcome=str(status), request_id=request_id)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
