"""Builders and callers for the security service's tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx

from services.platform.clock import local_today

from ..support.builders import make_cpr, register
from ..support.system import System, bearer

ROLES = ("caseworker", "team_lead", "provider", "police", "security_officer", "analyst",
         "auditor", "admin", "service", "other_service")


@dataclass(frozen=True)
class Callers:
    """One token per kind of caller (tokens live ten minutes: one module's worth)."""

    headers: dict[str, dict[str, str]]
    police_b: dict[str, str]  # a second police client: idempotency keys are per client

    def __getattr__(self, role: str) -> dict[str, str]:
        try:
            return self.headers[role]
        except KeyError:
            raise AttributeError(role) from None


def make_callers(system: System) -> Callers:
    headers = {}
    for role in ROLES:
        if role == "provider":
            token = system.token_for("provider", provider_id=str(uuid.uuid4()))
        elif role == "service":  # the activation service's narrow scope
            token = system.token_for("service", scopes=["security:check"])
        elif role == "other_service":  # a service with other narrow scopes
            token = system.token_for("service", scopes=["contracts:terms", "citizens:resolve"])
        else:
            token = system.token_for(role)
        headers[role] = bearer(token)
    return Callers(headers=headers, police_b=bearer(system.token_for("police")))


def today() -> date:
    return local_today()


def days(n: int) -> str:
    """Today plus n days, as the API writes dates."""
    return (today() + timedelta(days=n)).isoformat()


def code(label: str = "AFF") -> str:
    """A unique affiliation code: easy to find in a body or a raw row."""
    return f"{label}-{uuid.uuid4().hex[:12]}"


def note() -> str:
    return f"note {uuid.uuid4().hex} seen near the station"


def assessment(cpr: str, *, level: int = 3, valid_from: str | None = None,
               valid_until: str | None = None, affiliations: list[str] | None = None,
               measures: list[str] | None = None, notes: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cpr": cpr, "level": level, "valid_from": valid_from or days(-10),
        "valid_until": valid_until or days(200), "affiliations": affiliations or [],
        "measures": measures or [],
    }
    if notes is not None:
        body["notes"] = notes
    return body


def upload(http: httpx.Client, police: dict[str, str], body: dict[str, Any],
           key: str | None = None) -> str:
    headers = {**police, **({"Idempotency-Key": key} if key else {})}
    response = http.post("/v1/threat-assessments", json=body, headers=headers)
    assert response.status_code == 202, response.text
    assert set(response.json()) == {"id"}
    return response.json()["id"]


def conflict(http: httpx.Client, police: dict[str, str], a: str, b: str, *,
             valid_from: str | None = None, valid_until: str | None = None) -> str:
    response = http.post("/v1/conflicts", headers=police, json={
        "affiliation_a": a, "affiliation_b": b, "valid_from": valid_from or days(-10),
        "valid_until": valid_until or days(200)})
    assert response.status_code == 201, response.text
    assert set(response.json()) == {"id"}
    return response.json()["id"]


def citizen(http: httpx.Client, caseworker: dict[str, str]) -> dict[str, Any]:
    """A citizen registered with the citizens service: {"id", "cpr", ...}."""
    return register(http, caseworker)


def unknown_cpr() -> str:
    return make_cpr(date(1988, 11, 23))


def constraints(http: httpx.Client, headers: dict[str, str], citizen_id: str,
                as_of: str | None = None) -> dict[str, Any]:
    params = {"as_of": as_of} if as_of else {}
    response = http.get(f"/v1/constraints/{citizen_id}", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def group_check(http: httpx.Client, service: dict[str, str], citizen_id: str,
                members: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    """The final answer: `site_member_ids` is sent (empty unless given), so the service
    never asks for it; the answer is {allowed, measure}."""
    response = http.post("/v1/group-checks", headers=service, json={
        "citizen_id": citizen_id, "member_ids": members or [], "site_member_ids": [],
        **fields})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"allowed", "measure", "site_members_needed"}
    assert body.pop("site_members_needed") is False
    return body
