"""The `security` of each operation in the OpenAPI document says what the route checks.

`requires(a, b)` admits a token holding either scope. OpenAPI reads one requirement object
as "all of its scopes" and a list of them as "any one of these objects", so either scope is
one object each; a route guarded twice (a router's authenticator and the route's own)
needs one scope of each."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.utils import get_openapi

from services.platform.auth import Authenticator, requires
from services.platform.openapi import document_problems, document_scope_alternatives
from services.platform.scopes import Scope

Either = requires(Scope.citizens_read, Scope.citizens_resolve)
One = requires(Scope.citizens_write)
Reports = requires(Scope.reports_read)
Read = requires(Scope.citizens_read)


def make_app() -> FastAPI:
    app = FastAPI()

    @app.post("/either")
    def either(_: Either) -> None: ...

    @app.get("/one/{thing_id}")
    def one(thing_id: str, _: One) -> None: ...

    @app.get("/both")
    def both(_: Either, __: Reports) -> None: ...

    @app.get("/overlap")
    def overlap(_: Either, __: Read) -> None: ...  # citizens:read alone passes both

    @app.get("/open")
    def open_route() -> None: ...

    guarded = APIRouter(dependencies=[Depends(Authenticator(
        required_scopes={Scope.reports_read, Scope.audit_read}))])

    @guarded.get("/inner")
    def inner(_: One) -> None: ...

    app.include_router(guarded, prefix="/guarded")
    return app


def document(app: FastAPI) -> dict[str, Any]:
    return document_scope_alternatives(
        get_openapi(title="t", version="1", routes=app.routes), app.routes)


def security(doc: dict[str, Any], path: str, method: str) -> list[dict[str, list[str]]]:
    return doc["paths"][path][method].get("security")


def ways(*alternatives: list[str]) -> list[dict[str, list[str]]]:
    return [{"ClientCredentials": scopes} for scopes in alternatives]


def test_fastapi_alone_writes_either_scope_as_both() -> None:
    """What this fixes: FastAPI's own document demands both scopes at once."""
    app = make_app()
    raw = get_openapi(title="t", version="1", routes=app.routes)
    assert security(raw, "/either", "post") == ways(["citizens:read", "citizens:resolve"])


def test_each_alternative_is_its_own_requirement() -> None:
    doc = document(make_app())
    assert security(doc, "/either", "post") == ways(["citizens:read"], ["citizens:resolve"])
    assert security(doc, "/one/{thing_id}", "get") == ways(["citizens:write"])
    assert security(doc, "/both", "get") == ways(["citizens:read", "reports:read"],
                                                 ["citizens:resolve", "reports:read"])
    assert security(doc, "/overlap", "get") == ways(["citizens:read"])
    assert security(doc, "/guarded/inner", "get") == ways(["audit:read", "citizens:write"],
                                                          ["citizens:write", "reports:read"])
    assert security(doc, "/open", "get") is None


def test_it_is_idempotent_and_keeps_the_problem_responses() -> None:
    app = make_app()
    once = document_problems(document(app))
    twice = document_problems(document_scope_alternatives(copy.deepcopy(once), app.routes))
    assert twice == once
    assert {"401", "403", "404"} <= set(once["paths"]["/one/{thing_id}"]["get"]["responses"])
