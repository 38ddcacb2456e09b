"""The error answers in the OpenAPI documents: every refusal is a problem document.

FastAPI documents a 422 as `application/json` with its own `HTTPValidationError` body, and
nothing else; the services really answer every error as `application/problem+json`
(`problems.py`), and also 401, 403 and 404. `document_problems` rewrites an OpenAPI
document so that each operation lists the error statuses it can really return, each with
the problem schema. The service factory applies it with the service's own statuses; the
gateway applies it again to the merged document with the statuses the gateway adds (rate
limit, body limit, a dead or hung service). It is idempotent.

`document_scope_alternatives` writes each operation's `security` as the routes check it:
one requirement object per set of scopes that lets a caller in (see there).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from .auth import oauth2_scheme
from .problems import PROBLEM_JSON

PROBLEM_REF = "#/components/schemas/Problem"
VALIDATION_PROBLEM_REF = "#/components/schemas/ValidationProblem"

PROBLEM_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "title": "Problem",
        "description": "RFC 9457 problem details with a stable machine-readable `code`.",
        "type": "object",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "code": {"type": "string"},
        },
        "additionalProperties": True,
    },
    "ValidationProblem": {
        "title": "ValidationProblem",
        "description": "A 422: where and what was wrong, never the rejected value.",
        "allOf": [
            {"$ref": PROBLEM_REF},
            {"type": "object", "properties": {"errors": {"type": "array", "items": {
                "type": "object",
                "properties": {"loc": {"type": "array", "items": {"type": "string"}},
                               "type": {"type": "string"}, "msg": {"type": "string"}},
            }}}},
        ],
    },
}

# What an authenticated operation can always answer, wherever it runs.
AUTH_RESPONSES: dict[int, str] = {
    401: "unauthorized: no token, or an invalid, expired or revoked one",
    403: "insufficient_scope: the token lacks the scope for this operation",
}
NOT_FOUND = "not_found: no such object, or one the caller may not see"
# FastAPI answers a body it cannot decode at all (not JSON, not UTF-8) with a 400.
BAD_BODY = "bad_request: the body could not be parsed"
UNAVAILABLE = ("database_unavailable or service_unavailable: the database, or a service "
               "this call needs, does not answer; send it again (with the same "
               "Idempotency-Key where the route takes one)")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def _problem(description: str, ref: str = PROBLEM_REF) -> dict[str, Any]:
    return {"description": description,
            "content": {PROBLEM_JSON: {"schema": {"$ref": ref}}}}


def operations(document: dict[str, Any]):  # type: ignore[no-untyped-def]
    """(path, method, operation) for every operation of the document."""
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def names_an_object(path: str) -> bool:
    """An operation whose path names an object may find none, or one the caller may not
    see: 404. (Routes that answer 404 for an id in the body say so themselves.)"""
    return "{" in path


def add_response(operation: dict[str, Any], status: int, description: str,
                 ref: str = PROBLEM_REF) -> None:
    """Document `status` as a problem document, unless the route documents it already."""
    operation.setdefault("responses", {}).setdefault(str(status), _problem(description, ref))


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Rewrite the error responses of `document` in place (and return it): authenticated
    operations gain 401 and 403, those whose path names an object 404, those with a body
    400, both 503 (the database is down), and every status of 400 and above is a problem
    document."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(PROBLEM_SCHEMAS)
    for path, _, operation in operations(document):
        if operation.get("security"):
            for status, description in AUTH_RESPONSES.items():
                add_response(operation, status, description)
            if names_an_object(path):
                add_response(operation, 404, NOT_FOUND)
        if "requestBody" in operation:
            add_response(operation, 400, BAD_BODY)
        if operation.get("security") or "requestBody" in operation:  # it uses the database
            add_response(operation, 503, UNAVAILABLE)
        responses = operation.setdefault("responses", {})
        for status, response in responses.items():
            if not (status.isdigit() and int(status) >= 400):
                continue
            content = response.get("content", {})
            if PROBLEM_JSON in content and len(content) == 1:
                continue
            ref = VALIDATION_PROBLEM_REF if status == "422" else PROBLEM_REF
            description = response.get("description") or "Error"
            if description == "Validation Error":  # FastAPI's default
                description = "validation_error: one or more fields are missing or invalid"
            responses[status] = {**response, **_problem(description, ref)}
    return document


def _any_of_sets(dependant: Dependant) -> list[frozenset[str]]:
    """The scope sets of every `Authenticator` a route depends on, nested ones too: each
    admits a caller holding any scope of its set."""
    found = []
    for sub in dependant.dependencies:
        admits = getattr(sub.call, "admits_any_of", None)
        if admits is not None:
            found.append(frozenset(scope.value for scope in admits))
        found += _any_of_sets(sub)
    return found


def scope_alternatives(dependant: Dependant) -> list[list[str]] | None:
    """The sets of scopes that let a caller through a route (its `dependant`), one per
    way in; None if no `Authenticator` guards it. Every authenticator must admit the
    caller, each on any one of its scopes: one authenticator of {a, b} gives [[a], [b]];
    a second one of {c} on top gives [[a, c], [b, c]]."""
    sets = _any_of_sets(dependant)
    if not sets:
        return None
    ways = {frozenset[str]()}
    for any_of in sets:
        ways = {way | {scope} for way in ways for scope in any_of}
    minimal = [way for way in ways if not any(other < way for other in ways)]
    return sorted(sorted(way) for way in minimal)


def _api_routes(routes: Iterable[Any]) -> Iterable[Any]:
    """Every API route of an app, as FastAPI's document generator sees it: with the
    dependencies of the routers it was included through."""
    contexts = getattr(routing, "iter_route_contexts", None)
    if contexts is None:  # before lazily included routers, `app.routes` holds them all
        yield from (route for route in routes if isinstance(route, APIRoute))
        return
    for context in contexts(list(routes)):
        if isinstance(context.original_route, APIRoute):
            yield context


def document_scope_alternatives(document: dict[str, Any],
                                routes: Iterable[Any]) -> dict[str, Any]:
    """Rewrite the `security` of `document`'s operations in place (and return it) from
    the authenticators of `routes` (an app's). FastAPI puts all the scopes of an
    operation into one requirement object, `[{"ClientCredentials": ["citizens:read",
    "citizens:resolve"]}]`, which OpenAPI reads as "a token with both"; a route that takes
    either gets one object per alternative, `[{"ClientCredentials": ["citizens:read"]},
    {"ClientCredentials": ["citizens:resolve"]}]`. Idempotent: it is computed from the
    routes, not from the document."""
    scheme = oauth2_scheme.scheme_name
    paths = document.get("paths", {})
    for route in _api_routes(routes):
        if not route.include_in_schema:
            continue
        alternatives = scope_alternatives(route.dependant)
        if alternatives is None:
            continue
        for method in route.methods or ():
            operation = paths.get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            others = {name: scopes for requirement in operation.get("security", [])
                      for name, scopes in requirement.items() if name != scheme}
            operation["security"] = [{scheme: way, **others} for way in alternatives]
    return document
