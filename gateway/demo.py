"""Demo data for `sikkerby up --demo`, loaded through the public API like any client
would, so that it exercises the same rules and audit as real use."""

from __future__ import annotations

from typing import Any

import httpx

DEMO_PROVIDERS = [
    {"name": "Vej til Job ApS", "cvr": "31415926"},
    {"name": "Nytteindsats København", "cvr": "27182818"},
]


def _token(client: httpx.Client, credentials: dict[str, str]) -> str:
    response = client.post("/v1/auth/token", data={
        "grant_type": "client_credentials", "client_id": credentials["client_id"],
        "client_secret": credentials["client_secret"]})
    response.raise_for_status()
    return response.json()["access_token"]


def load_demo(base_url: str, clients: list[dict[str, str]]) -> dict[str, Any]:
    """Create demo providers and a provider client bound to the first one.
    Returns what was made; `clients` gains the provider client's credentials."""
    admin = next(c for c in clients if c["role"] == "admin")
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        headers = {"Authorization": f"Bearer {_token(client, admin)}"}
        providers = []
        for data in DEMO_PROVIDERS:
            response = client.post("/v1/providers", json=data, headers=headers)
            if response.status_code == 409:  # a second `up --demo` on the same data
                continue
            response.raise_for_status()
            providers.append(response.json())
        if providers:
            created = client.post("/v1/admin/clients", headers=headers, json={
                "name": f"demo provider ({providers[0]['name']})", "role": "provider",
                "provider_id": providers[0]["id"]})
            created.raise_for_status()
            body = created.json()
            clients.append({"role": "provider", "client_id": body["client_id"],
                            "client_secret": body["client_secret"],
                            "provider_id": providers[0]["id"]})
    return {"providers": providers}
