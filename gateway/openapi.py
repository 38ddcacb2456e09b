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
        merged = merge_documents(own, self._cached, self._routes)
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
