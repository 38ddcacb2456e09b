"""Pure ASGI middleware shared by the gateway and the services.

Pure ASGI rather than BaseHTTPMiddleware: these run on every request, and the gateway's
hot path cannot afford an extra task and stream per middleware.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import PROBLEM_JSON, problem_body

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CPR_LIKE = re.compile(r"(?<!\d)\d{6}-?\d{4}(?!\d)")


def redact_cpr(text: str) -> str:
    """`text` with anything that looks like a CPR number replaced (a caller may put one
    where it does not belong, e.g. in a URL; it must not reach a log or the audit)."""
    return _CPR_LIKE.sub("[redacted]", text)


def incoming_request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


async def send_problem(send: Send, status: int, code: str, title: str,
                       headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(problem_body(status, code, title)).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()), *(headers or [])],
    })
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """X-Request-ID on every response (the caller's if valid, else a new one), and
    `Cache-Control: no-store` on the API: most answers carry personal data."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        rid = request_id.encode()
        is_api = scope["path"].startswith("/v1/")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", rid))
                if is_api and not any(k == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class BodyLimitMiddleware:
    """413 for a body over the limit, by Content-Length or by counting the stream."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_large = int(value) > self.max_body_bytes
                except ValueError:
                    await send_problem(send, 400, "bad_request", "Invalid Content-Length")
                    return
                if too_large:
                    await send_problem(send, 413, "payload_too_large",
                                       "The request body is too large")
                    return
        if any(name == b"transfer-encoding" for name, _ in scope["headers"]):
            # A chunked body has no declared length: read it up to the limit first.
            chunks: list[bytes] = []
            size = 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body_bytes:
                    await send_problem(send, 413, "payload_too_large",
                                       "The request body is too large")
                    return
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)


class RedactingFilter(logging.Filter):
    """Last line of defence: nothing that looks like a CPR number reaches a log sink,
    and every line carries the request id."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        message = record.getMessage()
        if _CPR_LIKE.search(message):
            record.msg = _CPR_LIKE.sub("[redacted]", message)
            record.args = None
        return True


def configure_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if any(isinstance(f, RedactingFilter) for h in root.handlers for f in h.filters):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        for h in logging.getLogger(name).handlers:
            h.addFilter(RedactingFilter())
