"""The need-to-know matrix: every role against every security route, and every field.

The police write and read nothing back but ids; the security coordinator reads whole
assessments and conflicts; caseworkers, team leads, providers (own placements only) and
the activation service read measures; the level, the affiliations and the notes appear in
no answer to anyone but the security coordinator.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest

from ..support.builders import make_cpr, register
from ..test_gateway import assert_problem
from .support import ROLES, assessment, code, conflict, days, note, upload


@dataclass(frozen=True)
class World:
    citizen_id: str
    assessment_id: str
    conflict_id: str
    secrets: tuple[str, ...]  # affiliation codes and the note of the assessment


@pytest.fixture(scope="module")
def world(http, callers) -> World:
    person = register(http, callers.caseworker)
    affiliations = [code("NEED"), code("KNOW")]
    notes = note()
    assessment_id = upload(http, callers.police, assessment(
        person["cpr"], level=4, affiliations=affiliations, notes=notes,
        measures=["jobcenter_premises_only"]))
    conflict_id = conflict(http, callers.police, affiliations[0], code("RIVAL"))
    return World(person["id"], assessment_id, conflict_id, (*affiliations, notes))


@dataclass(frozen=True)
class Call:
    name: str
    method: str
    path: Callable[[World], str]
    body: Callable[[World], Any] | None = None
    params: dict[str, str] | None = None


CALLS = [
    Call("upload", "POST", lambda w: "/v1/threat-assessments",
         lambda w: assessment(register_free_cpr(), level=1)),
    Call("read assessment", "GET", lambda w: f"/v1/threat-assessments/{w.assessment_id}"),
    Call("list assessments", "GET", lambda w: "/v1/threat-assessments",
         params={"limit": "500"}),
    Call("history", "GET", lambda w: "/v1/threat-assessments"),
    Call("create conflict", "POST", lambda w: "/v1/conflicts",
         lambda w: {"affiliation_a": code(), "affiliation_b": code(),
                    "valid_from": days(0), "valid_until": days(5)}),
    Call("list conflicts", "GET", lambda w: "/v1/conflicts"),
    Call("read conflict", "GET", lambda w: f"/v1/conflicts/{w.conflict_id}"),
    Call("constraints", "GET", lambda w: f"/v1/constraints/{w.citizen_id}"),
    Call("group check", "POST", lambda w: "/v1/group-checks",
         lambda w: {"citizen_id": w.citizen_id, "member_ids": [], "cohort_max_size": 3}),
    Call("referrals", "GET", lambda w: "/v1/referrals"),
    Call("recheck referrals", "POST", lambda w: "/v1/referrals/recheck"),
]
# Who gets what; everyone else is 403 (a provider's constraints are 404 without an active
# placement of the citizen: existence is not disclosed).
ALLOWED: dict[str, dict[str, int]] = {
    "upload": {"police": 202},
    "read assessment": {"security_officer": 200},
    "list assessments": {"security_officer": 200},
    "history": {"security_officer": 200},
    "create conflict": {"police": 201},
    "list conflicts": {"security_officer": 200},
    "read conflict": {"security_officer": 200},
    "constraints": {"caseworker": 200, "team_lead": 200, "security_officer": 200,
                    "service": 200, "provider": 404},
    "group check": {"service": 200},
    "referrals": {"caseworker": 200, "security_officer": 200},
    "recheck referrals": {"caseworker": 200, "security_officer": 200},
}
FULL_VIEW = {"read assessment", "list assessments", "history", "list conflicts",
             "read conflict"}


def register_free_cpr() -> str:
    return make_cpr(date(1966, 6, 6))


def send(http: httpx.Client, call: Call, world: World, headers: dict[str, str]
         ) -> httpx.Response:
    path = call.path(world)
    params = dict(call.params or {})
    if call.name == "history":
        params["citizen_id"] = world.citizen_id
    body = call.body(world) if call.body else None
    return http.request(call.method, path, headers=headers, json=body, params=params)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_against_each_route(http, callers, world: World, role: str) -> None:
    headers = callers.headers[role]
    for call in CALLS:
        response = send(http, call, world, headers)
        expected = ALLOWED[call.name].get(role, 403)
        if expected == 403:
            assert_problem(response, 403, "insufficient_scope")
        elif expected == 404:
            assert_problem(response, 404, "not_found")
        else:
            assert response.status_code == expected, (call.name, role, response.text)
        # Level, affiliations and notes: for the security coordinator's reading only.
        if role == "security_officer" and call.name in FULL_VIEW:
            continue
        for secret in world.secrets:
            assert secret not in response.text, (call.name, role)
        assert '"level"' not in response.text and "affiliation" not in response.text, (
            call.name, role)
        assert '"notes"' not in response.text


def test_the_security_coordinator_reads_the_whole_assessment(http, callers, world) -> None:
    body = http.get(f"/v1/threat-assessments/{world.assessment_id}",
                    headers=callers.security_officer).json()
    assert body["level"] == 4 and body["citizen_id"] == world.citizen_id
    assert body["affiliations"] == list(world.secrets[:2]) and body["notes"] == world.secrets[2]
    assert body["measures"] == ["jobcenter_premises_only"]
    assert body["required_measures"] == ["individual_only", "small_group", "two_staff",
                                         "jobcenter_premises_only", "notify_police"]
    assert body["max_group_size"] == 1 and body["status"] == "in_force"
    assert body["valid_from"] == days(-10) and body["received_by"]
    conflict_view = http.get(f"/v1/conflicts/{world.conflict_id}",
                             headers=callers.security_officer).json()
    assert conflict_view["affiliation_a"] == world.secrets[0] and conflict_view["in_force"]


def test_measures_only_for_everyone_else(http, callers, world) -> None:
    for role in ("caseworker", "team_lead", "security_officer", "service"):
        body = http.get(f"/v1/constraints/{world.citizen_id}",
                        headers=callers.headers[role]).json()
        assert set(body) == {"citizen_id", "measures", "max_group_size", "as_of"}
        assert body["max_group_size"] == 1


def test_unknown_ids_and_bad_tokens(http, callers) -> None:
    assert_problem(http.get(f"/v1/threat-assessments/{uuid.uuid4()}",
                            headers=callers.security_officer), 404, "not_found")
    assert_problem(http.get(f"/v1/conflicts/{uuid.uuid4()}",
                            headers=callers.security_officer), 404, "not_found")
    assert_problem(http.get("/v1/threat-assessments/not-a-uuid",
                            headers=callers.security_officer), 422, "validation_error")
    for call in CALLS:
        response = http.request(call.method, call.path(World("x", "y", "z", ())))
        assert_problem(response, 401, "unauthorized")
        response = http.request(call.method, call.path(World("x", "y", "z", ())),
                                headers={"Authorization": "Bearer not.a.token"})
        assert_problem(response, 401, "unauthorized")


def test_the_merged_openapi_document_shows_the_security_routes(http) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    for path in ("/v1/threat-assessments", "/v1/threat-assessments/{assessment_id}",
                 "/v1/conflicts", "/v1/conflicts/{conflict_id}",
                 "/v1/constraints/{citizen_id}", "/v1/group-checks", "/v1/referrals",
                 "/v1/referrals/recheck"):
        assert path in paths, path
    upload_doc = paths["/v1/threat-assessments"]["post"]
    assert "202" in upload_doc["responses"]
    assert any(p["name"] == "Idempotency-Key" for p in upload_doc["parameters"])
