"""RFC 9457 problem documents with a stable machine-readable `code`.

Rules raise `DomainError` subclasses; one set of handlers renders them. Nothing a client
sent is echoed back (it could hold a CPR number), and no stack trace or SQL leaves here.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger("sikkerby.problems")


class DomainError(Exception):
    """A refusal the caller can act on. Subclasses fix status, code and title."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra
        self.headers: dict[str, str] = {}


class Unauthorized(DomainError):
    status, code, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class Forbidden(DomainError):
    status, code, title = 403, "insufficient_scope", "The token lacks the scope for this route"


class NotFound(DomainError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(DomainError):
    status, code, title = 409, "conflict", "Conflict"


class IdempotencyKeyReused(Conflict):
    code, title = "idempotency_key_reused", "This Idempotency-Key was used with another body"


class PreconditionRequired(DomainError):
    status, code, title = 428, "precondition_required", "If-Match is required"


class PreconditionFailed(DomainError):
    status, code, title = 412, "precondition_failed", "The resource has changed"


class PayloadTooLarge(DomainError):
    status, code, title = 413, "payload_too_large", "The request body is too large"


class Unprocessable(DomainError):
    """422 `validation_error`. Like pydantic's refusals, it always carries `errors`, a
    list of {loc, type, msg}; `loc` names the field when the raiser gives it."""

    status, code, title = 422, "validation_error", "The request is not valid"

    def __init__(self, detail: str | None = None, *, loc: tuple[str, ...] = (),
                 **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.extra.setdefault("errors", [{"loc": list(loc), "type": "value_error",
                                          "msg": self.detail}])


class RateLimited(DomainError):
    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after)}


class ServiceUnavailable(DomainError):
    status, code, title = 503, "service_unavailable", "A service is unavailable"


def problem_body(
    status: int, code: str, title: str, detail: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "type": f"https://sikkerby.kk.dk/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail or title,
        "code": code,
        **extra,
    }


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, code, title, detail, **extra),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Where and what, never the rejected value: it may be a CPR number."""
    return [
        {"loc": [str(part) for part in err.get("loc", ())], "type": err.get("type"),
         "msg": err.get("msg")}
        for err in exc.errors()
    ]


HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "The request body is too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}


def database_unavailable(exc: BaseException) -> bool:
    """The database is down or the connection was cut (not a bad statement): a 503. The
    transaction did not commit, or (cut during COMMIT) may have: a client sends it again
    with the same Idempotency-Key, or looks before it repeats a write without one."""
    return isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return problem_response(
            exc.status, exc.code, exc.title, exc.detail, headers=exc.headers or None, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(
            422, "validation_error", "The request is not valid",
            "One or more fields are missing or invalid.", errors=validation_errors(exc),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, title = HTTP_CODES.get(exc.status_code, ("error", "Error"))
        return problem_response(exc.status_code, code, title, headers=exc.headers)

    @app.exception_handler(SQLAlchemyError)
    async def _database(_: Request, exc: SQLAlchemyError) -> JSONResponse:
        # Its own handler, not the one for Exception: Starlette re-raises what that one
        # handles, and the server then logs the traceback, SQL and row values included.
        logger.error("database error %s", type(exc).__name__)
        if database_unavailable(exc):
            return problem_response(503, "database_unavailable", "The database is unavailable",
                                    "Try again in a moment.", headers={"Retry-After": "1"})
        return problem_response(500, "internal_error", "Internal error")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Log the type only: messages of driver errors can carry row values.
        logger.error("unhandled %s", type(exc).__name__)
        return problem_response(500, "internal_error", "Internal error")
