"""What the citizens service asks the other services, through the gateway with its own
client (`svc-citizens`) and only the scope each call needs.

- `announce_registration`: security, `POST /v1/referrals/registrations` with
  `threats:link`, inside the registration's transaction: a person the police reported
  before registration is constrained from then on. The CPR number goes in the body,
  never in a URL; the answer is the same whether or not the police reported the person.
  No answer means no registration (503): a citizen is never registered unseen by the
  security service.
- `fetch_activation` (export.py): activation, with `activation:export`.
"""

from __future__ import annotations

import uuid

from fastapi import Request

from services.platform.clients import GatewayClient
from services.platform.problems import ServiceUnavailable
from services.platform.scopes import Scope
from services.platform.settings import SettingsError


def gateway_client(request: Request) -> GatewayClient:
    """This service's client for its calls through the gateway, made on first use."""
    app = request.app
    client = getattr(app.state, "gateway_client", None)
    if client is None:
        try:
            client = GatewayClient.from_settings(app.state.settings, app.state.http)
        except SettingsError:
            raise ServiceUnavailable("This service has no client for its calls to the "
                                     "other services.") from None
        app.state.gateway_client = client
    return client


async def announce_registration(client: GatewayClient, cpr_digits: str,
                                citizen_id: uuid.UUID) -> None:
    response = await client.request("POST", "/v1/referrals/registrations",
                                    scope=Scope.threats_link,
                                    json={"cpr": cpr_digits, "citizen_id": str(citizen_id)})
    if response.status_code != 204:
        raise ServiceUnavailable("The security service did not confirm the registration; "
                                 "the citizen was not registered.")
