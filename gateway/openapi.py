"""One OpenAPI document for the whole API: the gateway's own routes plus every service's.

Each service publishes its own document; the gateway fetches them, keeps the paths the
route table actually forwards, and merges their schemas (renaming on a clash, so two
services may both have a `ContractOut` that differ).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import httpx

from services.platform.openapi import add_response, document_problems, operations
from services.platform.settings import DOWNSTREAM_SERVICES, Settings

from .routing import RouteTable

logger = logging.getLogger("sikkerby.gateway.openapi")
CACHE_SECONDS = 30.0


def _rename_refs(document: dict[str, Any], renames: dict[str, str]) -> dict[str, Any]:
    if not renames:
        return document
    text = json.dumps(document)
    for old, new in renames.items():
        text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    return json.loads(text)


def merge_documents(own: dict[str, Any], services: dict[str, dict[str, Any]],
                    routes: RouteTable) -> dict[str, Any]:
    merged = json.loads(json.dumps(own))
    paths = merged.setdefault("paths", {})
    components = merged.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name, document in services.items():
        theirs = document.get("components", {}).get("schemas", {})
        renames = {key: f"{name}_{key}" for key, value in theirs.items()
                   if key in schemas and schemas[key] != value}
        document = _rename_refs(document, renames)
        for key, value in document.get("components", {}).get("schemas", {}).items():
            schemas[renames.get(key, key)] = value
        for path, item in document.get("paths", {}).items():
            route = routes.match(path)
            if route is not None and route.service.value == name:
                paths[path] = item
        for scheme, value in document.get("components", {}).get("securitySchemes", {}).items():
            components.setdefault("securitySchemes", {})[scheme] = value
    merged["paths"] = dict(sorted(paths.items()))
    return merged


# What the gateway itself answers on a forwarded route, before or instead of the service.
FORWARDED_ERRORS: dict[int, str] = {
    429: "rate_limited: too many requests from this client (see Retry-After)",
    502: "bad_gateway: the service gave no valid answer",
    503: "service_unavailable: the service is down",
    504: "upstream_timeout: the service did not answer in time",
}
OAUTH_ENDPOINT = "/v1/auth/token"
OAUTH_ERRORS: dict[int, str] = {
    400: "invalid_scope or unsupported_grant_type (also in `error`)",
    401: "invalid_client: unknown client or wrong secret (also in `error`)",
    429: "rate_limited: too many token requests from this address or client",
}
OAUTH_PROBLEM = {
    "title": "OAuthProblem",
    "description": "A token endpoint refusal: a problem document that also carries the "
                   "OAuth 2 `error` (RFC 6749, 5.2).",
    "allOf": [{"$ref": "#/components/schemas/Problem"},
              {"type": "object", "required": ["error"],
               "properties": {"error": {"type": "string"}}}],
}


def document_gateway_errors(document: dict[str, Any], routes: RouteTable) -> dict[str, Any]:
    """The error statuses the gateway adds to the merged document: the body limit on
    every operation with a body, the rate limit and a dead, hung or broken service on
    every forwarded one, and the token endpoint's OAuth refusals."""
    document.setdefault("components", {}).setdefault("schemas", {})["OAuthProblem"] = (
        OAUTH_PROBLEM)
    for path, _, operation in operations(document):
        if "requestBody" in operation:
            add_response(operation, 413, "payload_too_large: the body is over the limit")
        if routes.match(path) is not None:
            for status, description in FORWARDED_ERRORS.items():
                add_response(operation, status, description)
        if path == OAUTH_ENDPOINT:
            for status, description in OAUTH_ERRORS.items():
                ref = ("#/components/schemas/Problem" if status == 429
                       else "#/components/schemas/OAuthProblem")
                add_response(operation, status, description, ref)
    return document_problems(document)


class OpenApiMerger:
    def __init__(self, settings: Settings, routes: RouteTable) -> None:
        self._settings = settings
        self._routes = routes
        self._cached: dict[str, dict[str, Any]] = {}
        self._fetched_at = 0.0

    async def document(self, own: dict[str, Any], client: httpx.AsyncClient) -> dict[str, Any]:
        if time.monotonic() - self._fetched_at > CACHE_SECONDS or len(self._cached) < len(
            DOWNSTREAM_SERVICES
        ):
            await self._refresh(client)
        merged = document_gateway_errors(merge_documents(own, self._cached, self._routes),
                                         self._routes)
        missing = [s.value for s in DOWNSTREAM_SERVICES if s.value not in self._cached]
        if missing:
            merged["info"]["description"] = (
                merged["info"].get("description", "")
                + f"\n\nNot shown (service unavailable): {', '.join(missing)}."
            )
        return merged

    async def _refresh(self, client: httpx.AsyncClient) -> None:
        async def fetch(service: str) -> tuple[str, dict[str, Any] | None]:
            try:
                response = await client.get(
                    f"{self._settings.service_url(service)}/openapi.json", timeout=3.0)
                response.raise_for_status()
                return service, response.json()
            except (httpx.HTTPError, ValueError):
                logger.warning("no OpenAPI document from %s", service)
                return service, None

        results = await asyncio.gather(*(fetch(s.value) for s in DOWNSTREAM_SERVICES))
        for service, document in results:
            if document is not None:
                self._cached[service] = document
        self._fetched_at = time.monotonic()
