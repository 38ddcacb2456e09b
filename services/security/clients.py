"""The security service's calls to the others: always through the gateway, with its own
client (`svc-security`) and only the scope each call needs.

- `resolve_cpr`: citizens, `POST /v1/citizens/lookup` with `citizens:resolve`: the CPR
  number goes in the body, never in a URL.
- `has_active_placement`: activation, `GET /v1/placements?citizen_id=` with
  `placements:status`: does this provider have an active placement of this citizen?
  Anything but a clear yes (404, an error, a service that is down, an answer of another
  shape) is no: a provider is denied by default.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from services.platform.clients import GatewayClient
from services.platform.problems import NotFound, ServiceUnavailable
from services.platform.scopes import Scope

logger = logging.getLogger("sikkerby.security.clients")
MAX_PLACEMENT_PAGES = 20
PLACEMENTS_PAGE_SIZE = 500


def gateway_client(request: Request) -> GatewayClient:
    """One client per app, made on first use (the HTTP pool exists once the app runs); it
    keeps its tokens until shortly before they expire."""
    app = request.app
    client = getattr(app.state, "gateway_client", None)
    if client is None:
        client = GatewayClient.from_settings(app.state.settings, app.state.http)
        app.state.gateway_client = client
    return client


async def post_json(client: GatewayClient, path: str, body: Any, *,
                    scope: Scope | frozenset[Scope]) -> Any | None:
    """The JSON of a 200; None for a 404; ServiceUnavailable for anything else."""
    response = await client.request("POST", path, scope=scope, json=body)
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise ServiceUnavailable(f"A service this call needs answered {response.status_code}.")
    return response.json()


async def resolve_cpr(client: GatewayClient, cpr_digits: str) -> uuid.UUID | None:
    """The citizen id for a CPR number, or None when the citizens service does not know
    the person. A citizens service that cannot answer is a 503 for the caller."""
    found = await post_json(client, "/v1/citizens/lookup", {"cpr": cpr_digits},
                            scope=Scope.citizens_resolve)
    if found is None:
        return None
    try:
        return uuid.UUID(str(found["id"]))
    except (KeyError, TypeError, ValueError):
        raise ServiceUnavailable("The citizens service gave an answer of another shape.") \
            from None


def _same_id(value: Any, expected: uuid.UUID) -> bool:
    try:
        return uuid.UUID(str(value)) == expected
    except ValueError:
        return False


def _active_at(items: Any, provider_id: uuid.UUID) -> bool:
    return isinstance(items, list) and any(
        isinstance(item, dict) and item.get("status") == "active"
        and _same_id(item.get("provider_id"), provider_id)
        for item in items)


async def has_active_placement(client: GatewayClient, citizen_id: uuid.UUID,
                               provider_id: str | None) -> bool:
    try:
        provider = uuid.UUID(str(provider_id))
    except ValueError:
        return False  # a provider client without a valid provider id sees nothing
    cursor: str | None = None
    for _ in range(MAX_PLACEMENT_PAGES):
        query = {"citizen_id": str(citizen_id), "limit": PLACEMENTS_PAGE_SIZE}
        if cursor:
            query["cursor"] = cursor
        try:
            page = await client.get_json(f"/v1/placements?{urlencode(query)}",
                                         scope=Scope.placements_status)
        except NotFound:
            return False
        except (ServiceUnavailable, ValueError):  # ValueError: a 200 that is not JSON
            logger.warning("placements could not be checked; the provider is denied")
            return False
        if not isinstance(page, dict):
            return False
        if _active_at(page.get("items"), provider):
            return True
        cursor = page.get("next_cursor")
        if not isinstance(cursor, str) or not cursor:
            return False
    return False
