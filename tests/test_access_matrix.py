"""The access matrix, proven from the OpenAPI document.

Every operation of the gateway's merged OpenAPI document (`GET /openapi.json`) is called
with no token, with bad tokens (garbage, expired, signed by a foreign key, of a revoked
client) and with a token of every role: the answers must be what `access_matrix.yaml`
says. Allowed callers reach real objects (a citizen, providers with contracts, a cohort,
a placement, an attendance record and the sanction case it opened, a conversation, a
threat assessment, a conflict, a referral, an API client) and get the real success
answer; everyone else gets 403, or 404 where the contract hides existence; a provider
token of ANOTHER provider gets 404 on the first provider's objects and lists without them.

Every answer is also scanned: no CPR number of the test's citizens (with or without the
dash) anywhere, and the threat level, affiliations and notes only in the security
coordinator's answers on the routes that show a whole assessment or conflict.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.platform.clock import local_today
from services.platform.scopes import ROLE_SCOPES, Role

from .support.builders import enrolled_citizen, make_contract, make_cpr, make_provider, place
from .support.forgery import attacker_key, gateway_private_key, good_claims, sign_es256
from .support.system import System, bearer

MATRIX_FILE = Path(__file__).with_name("access_matrix.yaml")
HUMAN_ROLES = tuple(r.value for r in Role if r is not Role.service)
SERVICE_SCOPES = frozenset(s.value for s in ROLE_SCOPES[Role.service])
ENTRY_FIELDS = {"allow", "own", "hidden", "service", "keys", "public", "planned"}
METHODS = {"get", "post", "put", "patch", "delete"}


# The matrix file ----------------------------------------------------------------------------
class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice (PyYAML silently keeps the last)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"{key!r} is listed twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _unique_mapping)


@dataclass(frozen=True)
class Entry:
    route: str  # "GET /v1/citizens/{citizen_id}"
    area: str
    allow: frozenset[str] = frozenset()
    own: frozenset[str] = frozenset()
    hidden: frozenset[str] = frozenset()
    service: frozenset[str] = frozenset()
    keys: frozenset[str] | None = None
    public: bool = False
    planned: bool = False

    @property
    def method(self) -> str:
        return self.route.split(" ", 1)[0]

    @property
    def path(self) -> str:
        return self.route.split(" ", 1)[1]

    @property
    def names_an_object(self) -> bool:
        """A path parameter or a write: another provider's object is 404, not a list."""
        return "{" in self.path or self.method != "GET"


@dataclass(frozen=True)
class Matrix:
    entries: dict[str, Entry]
    need_to_know_keys: frozenset[str]
    need_to_know_readers: frozenset[str]
    need_to_know_routes: frozenset[str]


def load_matrix() -> Matrix:
    document = yaml.load(MATRIX_FILE.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506
    entries: dict[str, Entry] = {}
    for area, routes in document["areas"].items():
        for route, spec in routes.items():
            method, _, path = route.partition(" ")
            assert method in {m.upper() for m in METHODS} and path.startswith("/"), route
            assert route not in entries, f"{route} is in two areas"
            unknown = set(spec) - ENTRY_FIELDS
            assert not unknown, f"{route}: unknown fields {unknown}"
            roles = {role for key in ("allow", "own", "hidden") for role in spec.get(key, [])}
            assert roles <= set(HUMAN_ROLES), f"{route}: unknown roles {roles - set(HUMAN_ROLES)}"
            assert set(spec.get("service", [])) <= SERVICE_SCOPES, route
            groups = [set(spec.get(k, [])) for k in ("allow", "own", "hidden")]
            assert sum(len(g) for g in groups) == len(set().union(*groups)), (
                f"{route}: a role in two of allow/own/hidden")
            entries[route] = Entry(
                route=route, area=area, allow=frozenset(spec.get("allow", [])),
                own=frozenset(spec.get("own", [])), hidden=frozenset(spec.get("hidden", [])),
                service=frozenset(spec.get("service", [])),
                keys=frozenset(spec["keys"]) if "keys" in spec else None,
                public=bool(spec.get("public")), planned=bool(spec.get("planned")))
    need = document["need_to_know"]
    return Matrix(entries, frozenset(need["keys"]), frozenset(need["readers"]),
                  frozenset(need["routes"]))


MATRIX = load_matrix()


def operations(openapi: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every operation of the document, keyed like the matrix: "METHOD /path"."""
    return {f"{method.upper()} {path}": operation
            for path, item in openapi["paths"].items()
            for method, operation in item.items() if method in METHODS}


def declared_scopes(operation: dict[str, Any]) -> set[str] | None:
    """The scopes the operation declares in `security`; None: it needs no token."""
    security = operation.get("security")
    if not security:
        return None
    return {scope for requirement in security for scopes in requirement.values()
            for scope in scopes}


# The world: real objects for every path parameter ----------------------------------------
def day(offset: int) -> str:
    return (local_today() + timedelta(days=offset)).isoformat()


def contract_period() -> dict[str, str]:
    """Relative to today, like every date here, so the test does not age."""
    return {"starts_on": day(-400), "ends_on": day(800)}


def monday(offset_weeks: int = 0) -> date:
    today = local_today()
    return today - timedelta(days=today.weekday()) + timedelta(weeks=offset_weeks)


def unique_code(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


@dataclass
class Caller:
    label: str  # what a failure names: a role, "provider (other)", "no token", ...
    headers: dict[str, str]
    role: str | None  # None: no valid token


@dataclass
class World:
    system: System
    http: httpx.Client
    ids: dict[str, str]  # path parameter name -> an object that allowed callers may reach
    callers: dict[str, Caller]
    bad_callers: list[Caller]
    provider_a_ids: set[str]  # provider A's objects: never in provider B's answers
    cprs: set[str]  # every CPR number the test sent, digits only
    secrets: set[str]  # affiliation codes and notes of the threat assessment
    token_client: dict[str, str]  # credentials for the token endpoint
    assessment: dict[str, Any]  # what the police uploaded
    _service_tokens: dict[frozenset[str], Caller] = field(default_factory=dict)

    @property
    def cw(self) -> dict[str, str]:
        return self.callers["caseworker"].headers

    @property
    def admin(self) -> dict[str, str]:
        return self.callers["admin"].headers

    @property
    def provider_a(self) -> dict[str, str]:
        return self.callers["provider"].headers

    def service(self, scopes: frozenset[str], label: str) -> Caller:
        if scopes not in self._service_tokens:
            token = client_token(self.system, self.admin, "service", scopes=sorted(scopes))
            self._service_tokens[scopes] = Caller(label, bearer(token), "service")
        caller = self._service_tokens[scopes]
        return Caller(label, caller.headers, "service")

    def new_cpr(self, birth: date = date(1990, 5, 17)) -> str:
        cpr = make_cpr(birth)
        self.cprs.add(cpr)
        return cpr

    def new_citizen(self, **fields: Any) -> dict[str, Any]:
        """An enrolled citizen with an hours cap (unless cap=None): {"id", "cpr", ...}."""
        return enrolled_citizen(self.http, self.cw, cpr=self.new_cpr(), **fields)

    def new_placement(self) -> str:
        citizen_id = self.new_citizen(enrolled_on=day(-60))["id"]
        response = place(self.http, self.cw, citizen_id, self.ids["contract_id"],
                         starts_on=monday(-3).isoformat(), ends_on=day(120))
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def report_attendance(self, placement_id: str, on: str, status: str) -> dict[str, Any]:
        hours = {"present": 4} if status == "present" else {}
        response = self.http.post("/v1/attendance", headers=self.provider_a, json={
            "records": [{"placement_id": placement_id, "date": on, "status": status, **hours}]})
        assert response.status_code == 200, response.text
        return response.json()["records"][0]

    def case_of(self, placement_id: str) -> str:
        response = self.http.get("/v1/sanction-cases", headers=self.cw, params={"limit": 500})
        assert response.status_code == 200, response.text
        cases = [c for c in response.json()["items"] if c["placement_id"] == placement_id]
        assert len(cases) == 1, cases
        return cases[0]["id"]

    def new_case_in_hearing(self) -> str:
        placement_id = self.new_placement()
        self.report_attendance(placement_id, monday(-1).isoformat(), "absent_unexcused")
        case_id = self.case_of(placement_id)
        response = self.http.post(f"/v1/sanction-cases/{case_id}/hearing", headers=self.cw,
                                  json={"sent_on": day(0), "respond_by": day(7)})
        assert response.status_code == 200, response.text
        return case_id

    def new_conversation(self) -> str:
        """Held yesterday: an outcome may be recorded."""
        yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
        response = self.http.post("/v1/conversations", headers=self.cw, json={
            "citizen_id": self.ids["citizen_id"], "scheduled_at": yesterday.isoformat()})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def new_contract(self) -> str:
        return make_contract(self.http, self.admin, self.ids["provider_id"],
                             **contract_period())["id"]

    def new_api_client(self) -> str:
        return new_client(self.system, self.admin, "analyst")["client_id"]


def soon() -> str:
    return (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).isoformat()


class CprWitness:
    """Scans every answer the module's client gets for a CPR number: the test's own (with
    or without the dash) anywhere in the text, and any JSON string shaped like one."""

    SHAPE = re.compile(r"^\d{6}-?\d{4}$")

    def __init__(self) -> None:
        self.cprs: set[str] = set()
        self.seen = 0
        self.leaks: list[str] = []

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        self.seen += 1
        where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
        text = response.text
        for cpr in self.cprs:
            if cpr in text or f"{cpr[:6]}-{cpr[6:]}" in text:
                self.leaks.append(f"{where}: a CPR number of a test citizen")
        try:
            body = response.json()
        except ValueError:
            return
        for value in json_strings(body):
            if self.SHAPE.match(value):
                self.leaks.append(f"{where}: a CPR-shaped string")


def json_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_strings(item)


def json_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from json_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_keys(item)


@pytest.fixture(scope="module")
def witness() -> CprWitness:
    return CprWitness()


@pytest.fixture(scope="module")
def http(system: System, witness: CprWitness) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=system.url, timeout=60,
                      event_hooks={"response": [witness]}) as client:
        yield client


def new_client(system: System, admin: dict[str, str], role: str, **extra: Any
               ) -> dict[str, Any]:
    """Like System.new_client, with one admin token for all (each token costs a slow hash)."""
    response = httpx.post(f"{system.url}/v1/admin/clients", headers=admin, timeout=30,
                          json={"name": f"matrix {role}", "role": role, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def client_token(system: System, admin: dict[str, str], role: str, **extra: Any) -> str:
    client = new_client(system, admin, role, **extra)
    return system.token(client["client_id"], client["client_secret"])


def bad_callers(system: System, admin: dict[str, str]) -> list[Caller]:
    """A token that must get 401 on every route, whatever it claims."""
    key_file = system.settings.signing_key_path
    kid, pem = gateway_private_key(key_file)
    evil_pem, _ = attacker_key()
    everything = " ".join(sorted({s.value for scopes in ROLE_SCOPES.values() for s in scopes}))
    claims = good_claims(system.settings, scope=everything)
    expired = good_claims(system.settings, scope=everything, iat=0, nbf=0, exp=300)
    revoked = new_client(system, admin, "admin")
    revoked_token = system.token(revoked["client_id"], revoked["client_secret"])
    response = httpx.delete(f"{system.url}/v1/admin/clients/{revoked['client_id']}",
                            headers=admin, timeout=30)
    assert response.status_code == 204, response.text
    return [
        Caller("no token", {}, None),
        Caller("garbage token", {"Authorization": "Bearer not-a-token"}, None),
        Caller("expired token", bearer(sign_es256(expired, pem, kid=kid)), None),
        Caller("token signed by a foreign key", bearer(sign_es256(claims, evil_pem, kid=kid)),
               None),
        Caller("token of a revoked admin client", bearer(revoked_token), None),
    ]


@pytest.fixture(scope="module")
def world(system: System, http: httpx.Client, witness: CprWitness) -> World:
    admin = bearer(system.admin_token())
    callers = {role: Caller(role, bearer(client_token(system, admin, role)), role)
               for role in HUMAN_ROLES if role != "provider"}
    provider_a = make_provider(http, admin, "Provider A ApS")
    provider_b = make_provider(http, admin, "Provider B ApS")
    contract_a = make_contract(http, admin, provider_a["id"], **contract_period())
    # B has its own, so its lists are not empty.
    make_contract(http, admin, provider_b["id"], **contract_period())
    callers["provider"] = Caller(
        "provider", bearer(client_token(system, admin, "provider",
                                        provider_id=provider_a["id"])),
        "provider")
    callers["provider (other)"] = Caller(
        "provider (other)", bearer(client_token(system, admin, "provider",
                                                provider_id=provider_b["id"])),
        "provider")
    token_client = new_client(system, admin, "auditor")
    w = World(system=system, http=http, ids={}, callers=callers,
              bad_callers=bad_callers(system, admin), provider_a_ids=set(), cprs=witness.cprs,
              secrets=set(), token_client=token_client, assessment={})
    w.ids.update(provider_id=provider_a["id"], contract_id=contract_a["id"])

    # A citizen placed with provider A (active today), with an unexcused absence (which
    # opens a sanction case), rights guidance, a conversation and a threat assessment.
    person = w.new_citizen(enrolled_on=day(-60))
    w.ids["citizen_id"] = person["id"]
    cw = w.cw
    cohort = http.post("/v1/cohorts", headers=cw, json={
        "contract_id": contract_a["id"], "offer_type": "utility_work", "name": "Matrix hold",
        "max_size": 4, "location": "Valby"})
    assert cohort.status_code == 201, cohort.text
    w.ids["cohort_id"] = cohort.json()["id"]
    placement = place(http, cw, w.ids["citizen_id"], contract_a["id"],
                      starts_on=monday(-3).isoformat(), ends_on=day(120))
    assert placement.status_code == 201, placement.text
    w.ids["placement_id"] = placement.json()["id"]
    record = w.report_attendance(w.ids["placement_id"], monday(-1).isoformat(),
                                 "absent_unexcused")
    w.ids["record_id"] = record["id"]
    w.ids["case_id"] = w.case_of(w.ids["placement_id"])
    response = http.post("/v1/rights-guidance", headers=cw, json={
        "citizen_id": w.ids["citizen_id"], "given_on": day(-50), "channel": "letter"})
    assert response.status_code == 201, response.text
    w.ids["conversation_id"] = w.new_conversation()

    police = callers["police"].headers
    affiliations = [unique_code("MATRIX"), unique_code("MATRIX")]
    notes = f"matrix note {uuid.uuid4().hex}"
    w.assessment = {"cpr": person["cpr"], "level": 3, "valid_from": day(-5),
                    "valid_until": day(200), "affiliations": affiliations,
                    "measures": ["jobcenter_premises_only"], "notes": notes}
    response = http.post("/v1/threat-assessments", headers=police, json=w.assessment)
    assert response.status_code == 202, response.text
    w.ids["assessment_id"] = response.json()["id"]
    w.secrets.update(affiliations, [notes])
    response = http.post("/v1/conflicts", headers=police, json={
        "affiliation_a": affiliations[0], "affiliation_b": unique_code("RIVAL"),
        "valid_from": day(-5), "valid_until": day(200)})
    assert response.status_code == 201, response.text
    w.ids["conflict_id"] = response.json()["id"]
    # A person unknown to the unit: a referral (listed with cpr_masked only).
    unknown = dict(w.assessment, cpr=w.new_cpr(date(1985, 2, 3)), level=1, affiliations=[],
                   notes="referral note")
    response = http.post("/v1/threat-assessments", headers=police, json=unknown)
    assert response.status_code == 202, response.text

    w.ids["client_id"] = w.new_api_client()
    w.provider_a_ids = {provider_a["id"], contract_a["id"], w.ids["cohort_id"],
                        w.ids["placement_id"], w.ids["record_id"], w.ids["citizen_id"]}
    return w


def citizen_cpr(w: World) -> str:
    return w.assessment["cpr"]


# How to call each route ---------------------------------------------------------------------
Ids = dict[str, str]


@dataclass(frozen=True)
class Recipe:
    ok: int = 200  # the success status of an allowed caller
    query: Callable[[World, Ids], dict[str, Any]] | None = None
    body: Callable[[World, Ids], Any] | None = None
    form: Callable[[World, Ids], dict[str, str]] | None = None
    headers: Callable[[World, Ids], dict[str, str]] | None = None
    # For an allowed caller: fresh objects (path parameters) so each call can succeed.
    fresh: Callable[[World], Ids] | None = None


def _if_match(w: World, ids: Ids) -> dict[str, str]:
    response = w.http.get(f"/v1/citizens/{ids['citizen_id']}", headers=w.cw)
    assert response.status_code == 200, response.text
    return {"If-Match": response.headers["ETag"]}


def _cvr() -> str:
    return str(10_000_000 + uuid.uuid4().int % 90_000_000)


RECIPES: dict[str, Recipe] = {
    "POST /v1/auth/token": Recipe(form=lambda w, ids: {
        "grant_type": "client_credentials", "client_id": w.token_client["client_id"],
        "client_secret": w.token_client["client_secret"]}),
    "POST /v1/admin/clients": Recipe(201, body=lambda w, ids: {
        "name": "matrix probe", "role": "analyst"}),
    "DELETE /v1/admin/clients/{client_id}": Recipe(
        204, fresh=lambda w: {"client_id": w.new_api_client()}),
    # citizens
    "POST /v1/citizens": Recipe(201, body=lambda w, ids: {
        "cpr": w.new_cpr(), "name": "Matrix Person", "benefit": "kontanthjaelp",
        "readiness": "jobparat"}),
    "POST /v1/citizens/lookup": Recipe(body=lambda w, ids: {"cpr": citizen_cpr(w)}),
    "GET /v1/citizens/enrolled-during": Recipe(query=lambda w, ids: {
        "from": day(-30), "to": day(0)}),
    "PATCH /v1/citizens/{citizen_id}": Recipe(
        body=lambda w, ids: {"name": "Matrix Person Renamed"}, headers=_if_match),
    "POST /v1/citizens/{citizen_id}/enrolments": Recipe(
        201, body=lambda w, ids: {"enrolled_on": day(-10), "referral_source": "police"},
        fresh=lambda w: {"citizen_id": enrol_free(w)}),
    "POST /v1/citizens/{citizen_id}/exit": Recipe(
        body=lambda w, ids: {"exited_on": day(-1), "reason": "job"},
        fresh=lambda w: {"citizen_id": w.new_citizen(enrolled_on=day(-30), cap=None)["id"]}),
    "GET /v1/reports/enrolment": Recipe(query=lambda w, ids: {"as_of": day(0)}),
    # providers
    "POST /v1/providers": Recipe(201, body=lambda w, ids: {
        "name": "Matrix Provider ApS", "cvr": _cvr()}),
    "GET /v1/contracts": Recipe(query=lambda w, ids: {"provider_id": w.ids["provider_id"]}),
    "POST /v1/contracts": Recipe(201, body=lambda w, ids: {
        "provider_id": w.ids["provider_id"], "kind": "framework",
        "offer_types": ["utility_work"], "starts_on": day(-10), "ends_on": day(300),
        "capacity": 5, "weekly_price_ore": 100_000, "max_threat_level": 2}),
    "POST /v1/contracts/{contract_id}/extend": Recipe(
        body=lambda w, ids: {"ends_on": day(1000)},
        fresh=lambda w: {"contract_id": w.new_contract()}),
    # activation
    "PUT /v1/hours-caps/{citizen_id}": Recipe(body=lambda w, ids: {
        "weekly_hours": 37, "reason": "assessed again"}),
    "POST /v1/cohorts": Recipe(201, body=lambda w, ids: {
        "contract_id": w.ids["contract_id"], "offer_type": "utility_work",
        "name": "Matrix cohort", "max_size": 6, "location": "Valby"}),
    "GET /v1/cohorts": Recipe(query=lambda w, ids: {"contract_id": w.ids["contract_id"]}),
    "POST /v1/placements": Recipe(
        201, body=lambda w, ids: {
            "citizen_id": ids["citizen_id"], "contract_id": w.ids["contract_id"],
            "offer_type": "special_employment", "starts_on": day(7), "ends_on": day(60),
            "weekly_hours": 10},
        fresh=lambda w: {"citizen_id": w.new_citizen(enrolled_on=day(-30))["id"]}),
    "GET /v1/placements": Recipe(query=lambda w, ids: {"contract_id": w.ids["contract_id"]}),
    "POST /v1/placements/{placement_id}/end": Recipe(
        body=lambda w, ids: {"ended_on": day(0), "reason": "matrix"},
        fresh=lambda w: {"placement_id": w.new_placement()}),
    "POST /v1/placements/{placement_id}/absence-notice": Recipe(
        body=lambda w, ids: {"given_on": monday(-3).isoformat()}),
    "POST /v1/attendance": Recipe(body=lambda w, ids: {"records": [{
        "placement_id": w.ids["placement_id"], "date": monday(-2).isoformat(),
        "status": "present", "hours": 4}]}),
    "GET /v1/attendance": Recipe(query=lambda w, ids: {"placement_id": w.ids["placement_id"]}),
    "POST /v1/sanction-cases/{case_id}/hearing": Recipe(body=lambda w, ids: {
        "sent_on": day(0), "respond_by": day(7)}),
    "POST /v1/sanction-cases/{case_id}/contact-attempts": Recipe(201, body=lambda w, ids: {
        "at": datetime.now(UTC).replace(microsecond=0).isoformat(), "channel": "phone",
        "reached": False}),
    "POST /v1/sanction-cases/{case_id}/decision": Recipe(
        body=lambda w, ids: {"outcome": "no_sanction", "reasonable_excuse": True,
                             "deduction_days": 0, "justification": "Ill that day."},
        fresh=lambda w: {"case_id": w.new_case_in_hearing()}),
    "POST /v1/rights-guidance": Recipe(201, body=lambda w, ids: {
        "citizen_id": w.ids["citizen_id"], "given_on": day(-1), "channel": "meeting"}),
    "GET /v1/rights-guidance": Recipe(query=lambda w, ids: {"citizen_id": w.ids["citizen_id"]}),
    "GET /v1/conversations/due": Recipe(query=lambda w, ids: {"week": week_label()}),
    "POST /v1/conversations": Recipe(201, body=lambda w, ids: {
        "citizen_id": w.ids["citizen_id"], "scheduled_at": soon()}),
    "POST /v1/conversations/{conversation_id}/outcome": Recipe(
        body=lambda w, ids: {"attended": True},
        fresh=lambda w: {"conversation_id": w.new_conversation()}),
    "GET /v1/reports/activation": Recipe(query=lambda w, ids: {"week": week_label()}),
    "GET /v1/reports/sanctions": Recipe(query=lambda w, ids: {"month": day(0)[:7]}),
    "GET /v1/reports/spending": Recipe(query=lambda w, ids: {"year": local_today().year}),
    # security
    "POST /v1/threat-assessments": Recipe(202, body=lambda w, ids: {
        "cpr": w.new_cpr(date(1979, 9, 9)), "level": 1, "valid_from": day(-1),
        "valid_until": day(30), "affiliations": [], "measures": []}),
    "GET /v1/threat-assessments": Recipe(query=lambda w, ids: {
        "citizen_id": w.ids["citizen_id"]}),
    "POST /v1/conflicts": Recipe(201, body=lambda w, ids: {
        "affiliation_a": unique_code("PROBE"), "affiliation_b": unique_code("PROBE"),
        "valid_from": day(0), "valid_until": day(30)}),
    "POST /v1/group-checks": Recipe(body=lambda w, ids: {
        "citizen_id": w.ids["citizen_id"], "member_ids": []}),
    "GET /v1/referrals": Recipe(query=lambda w, ids: {"status": "all"}),
}


def enrol_free(w: World) -> str:
    """A registered citizen who is not enrolled."""
    response = w.http.post("/v1/citizens", headers=w.cw, json={
        "cpr": w.new_cpr(), "name": "Matrix Person", "benefit": "dagpenge",
        "readiness": "jobparat"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def week_label() -> str:
    year, week, _ = local_today().isocalendar()
    return f"{year}-W{week:02d}"


# The expectation for one caller ---------------------------------------------------------------
@dataclass(frozen=True)
class Expect:
    kind: str  # "ok", "unauthorized", "forbidden", "hidden", "filtered"

    def describe(self, recipe: Recipe | None) -> str:
        if self.kind == "ok":
            return str(recipe.ok) if recipe else "2xx (or 422: past the gate)"
        return {"unauthorized": "401", "forbidden": "403", "hidden": "404",
                "filtered": "200 without provider A's objects"}[self.kind]


def expectation(entry: Entry, caller: Caller) -> Expect:
    if entry.public:
        return Expect("ok")
    if caller.role is None:
        return Expect("unauthorized")
    if caller.role == "service":
        return Expect("ok" if caller.label == "service (route's scopes)" else "forbidden")
    if caller.role in entry.allow:
        return Expect("ok")
    if caller.role in entry.hidden:
        return Expect("hidden")
    if caller.role in entry.own:
        if caller.label == "provider (other)":
            return Expect("hidden" if entry.names_an_object else "filtered")
        return Expect("ok")
    return Expect("forbidden")


def callers_for(entry: Entry, w: World) -> list[Caller]:
    """Refused callers first, so a write an allowed caller makes cannot mask a refusal."""
    everyone = [*w.bad_callers, *(w.callers[r] for r in HUMAN_ROLES),
                w.callers["provider (other)"]]
    if entry.service:
        everyone.append(w.service(entry.service, "service (route's scopes)"))
        others = SERVICE_SCOPES - entry.service
        if others:
            everyone.append(w.service(frozenset(others), "service (other scopes)"))
    else:
        everyone.append(w.service(SERVICE_SCOPES, "service (all service scopes)"))
    return sorted(everyone, key=lambda c: expectation(entry, c).kind == "ok")


def send(w: World, entry: Entry, recipe: Recipe | None, caller: Caller,
         allowed: bool) -> httpx.Response:
    ids = dict(w.ids)
    if allowed and recipe and recipe.fresh:
        ids.update(recipe.fresh(w))
    try:
        path = entry.path.format_map(ids)
    except KeyError as exc:
        raise AssertionError(f"{entry.route}: the test's world has no object for {exc}; "
                             "add one to the `world` fixture") from None
    headers = dict(caller.headers)
    kwargs: dict[str, Any] = {}
    if recipe:
        if recipe.headers:
            headers.update(recipe.headers(w, ids))
        if recipe.query:
            kwargs["params"] = recipe.query(w, ids)
        if recipe.body:
            kwargs["json"] = recipe.body(w, ids)
        if recipe.form:
            kwargs["data"] = recipe.form(w, ids)
    return w.http.request(entry.method, path, headers=headers, **kwargs)


def problem_code(response: httpx.Response) -> str | None:
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return None
    return response.json().get("code")


def check(entry: Entry, recipe: Recipe | None, caller: Caller, expect: Expect,
          response: httpx.Response, w: World) -> list[str]:
    """What is wrong with one answer (empty: nothing)."""
    status = response.status_code
    said = f"{entry.route} as {caller.label}: expected {expect.describe(recipe)}, got {status}"
    if status >= 500:
        return [f"{said}: {response.text[:300]}"]
    if expect.kind == "unauthorized":
        return [] if status == 401 and problem_code(response) == "unauthorized" else [said]
    if expect.kind == "forbidden":
        return [] if status == 403 and problem_code(response) == "insufficient_scope" else [said]
    if expect.kind == "hidden":
        return [] if status == 404 and problem_code(response) == "not_found" else [said]
    if expect.kind == "filtered":
        if status != 200:
            return [said]
        leaked = [i for i in w.provider_a_ids if i in response.text]
        return [f"{said}, and it shows provider A's objects {leaked}"] if leaked else []
    # An allowed caller.
    if recipe is not None and status != recipe.ok:
        return [f"{said}: {response.text[:300]}"]
    if recipe is None and (status in (401, 403, 404)
                           or (not 200 <= status < 300 and status != 422)):
        return [f"{said}: {response.text[:300]}"]
    problems = []
    if entry.keys is not None and 200 <= status < 300:
        keys = set(response.json())
        if keys != entry.keys:
            problems.append(f"{entry.route} as {caller.label}: keys {sorted(keys)}, the "
                            f"matrix says {sorted(entry.keys)}")
    if caller.label == "provider" and entry.own and entry.method == "GET" and (
            not any(i in response.text for i in w.provider_a_ids)):
        problems.append(f"{entry.route} as provider: its own objects are missing")
    return problems


def need_to_know_leaks(entry: Entry, caller: Caller, response: httpx.Response,
                       w: World) -> list[str]:
    if caller.role in MATRIX.need_to_know_readers and entry.route in MATRIX.need_to_know_routes:
        return []
    found = []
    try:
        keys = set(json_keys(response.json())) & MATRIX.need_to_know_keys
    except ValueError:
        keys = set()
    if keys:
        found.append(f"{entry.route} as {caller.label}: the answer carries {sorted(keys)}")
    if any(secret in response.text for secret in w.secrets):
        found.append(f"{entry.route} as {caller.label}: an affiliation or a note leaked")
    return found


# The tests ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def openapi(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/openapi.json")
    assert response.status_code == 200, response.text
    document = response.json()
    assert "Not shown" not in document["info"].get("description", ""), (
        "a service's OpenAPI document is missing from the merged one")
    return document


def test_every_route_has_an_entry_and_every_entry_a_route(openapi: dict[str, Any]) -> None:
    served = set(operations(openapi))
    missing = sorted(served - set(MATRIX.entries))
    assert not missing, ("new route without an entry in tests/access_matrix.yaml: "
                         + ", ".join(missing))
    gone = sorted(route for route, entry in MATRIX.entries.items()
                  if route not in served and not entry.planned)
    assert not gone, ("entry in tests/access_matrix.yaml for a route the OpenAPI document "
                      "no longer has: " + ", ".join(gone))
    built = sorted(route for route, entry in MATRIX.entries.items()
                   if route in served and entry.planned)
    assert not built, "served now: drop `planned` from " + ", ".join(built)
    assert MATRIX.need_to_know_routes <= set(MATRIX.entries)
    stale = sorted(set(RECIPES) - set(MATRIX.entries))
    assert not stale, f"call recipes for routes not in the matrix: {stale}"


def test_the_documented_scopes_agree_with_the_matrix(openapi: dict[str, Any]) -> None:
    """What a client reads in the OpenAPI document's `security` says the same as the
    matrix: a role holding one of an operation's scopes is let in (or sees its own, or is
    told 404); a role holding none is refused."""
    disagreements = []
    for route, operation in operations(openapi).items():
        entry = MATRIX.entries.get(route)
        if entry is None:
            continue  # the test above names it
        declared = declared_scopes(operation)
        if declared is None or entry.public:
            if not (declared is None and entry.public):
                disagreements.append(f"{route}: public in one, not in the other")
            continue
        for role in HUMAN_ROLES:
            holds = bool(declared & {s.value for s in ROLE_SCOPES[Role(role)]})
            listed = role in entry.allow | entry.own | entry.hidden
            if holds != listed:
                disagreements.append(f"{route}: {role} {'holds' if holds else 'lacks'} "
                                     f"{sorted(declared)} but the matrix "
                                     f"{'lists' if listed else 'refuses'} it")
        if declared & SERVICE_SCOPES != entry.service:
            disagreements.append(f"{route}: service scopes {sorted(declared & SERVICE_SCOPES)}"
                                 f" declared, {sorted(entry.service)} in the matrix")
    assert not disagreements, "\n".join(disagreements)


@pytest.mark.parametrize("route", sorted(MATRIX.entries))
def test_route(route: str, world: World, openapi: dict[str, Any],
               witness: CprWitness) -> None:
    entry = MATRIX.entries[route]
    if route not in operations(openapi):
        assert entry.planned  # else the coverage test fails
        pytest.skip(f"{route} is planned (API.md) and not served yet")
    recipe = RECIPES.get(route)
    problems: list[str] = []
    leaks_before = len(witness.leaks)
    for caller in callers_for(entry, world):
        expect = expectation(entry, caller)
        response = send(world, entry, recipe, caller, allowed=expect.kind == "ok")
        problems += check(entry, recipe, caller, expect, response, world)
        problems += need_to_know_leaks(entry, caller, response, world)
    problems += witness.leaks[leaks_before:]
    assert not problems, "\n".join(problems)


def test_only_the_security_coordinator_reads_level_affiliations_and_notes(
        world: World) -> None:
    """Field by field: the whole assessment for the security coordinator; for everyone
    else who must follow the measures, the same measures and group size and nothing more."""
    officer = world.callers["security_officer"].headers
    response = world.http.get(f"/v1/threat-assessments/{world.ids['assessment_id']}",
                              headers=officer)
    assert response.status_code == 200, response.text
    full = response.json()
    sent = world.assessment
    assert full["citizen_id"] == world.ids["citizen_id"]
    assert full["level"] == sent["level"]
    assert full["affiliations"] == sent["affiliations"]
    assert full["notes"] == sent["notes"]
    assert full["measures"] == sent["measures"]
    for role in HUMAN_ROLES:
        if role != "security_officer":
            refused = world.http.get(f"/v1/threat-assessments/{world.ids['assessment_id']}",
                                     headers=world.callers[role].headers)
            assert refused.status_code == 403, (role, refused.text)
            assert set(refused.json()) & MATRIX.need_to_know_keys == set()

    readers = {role: world.callers[role].headers
               for role in ("caseworker", "team_lead", "security_officer", "provider")}
    readers["service"] = world.service(frozenset({"security:check"}), "service").headers
    expected = {"citizen_id": world.ids["citizen_id"], "measures": full["required_measures"],
                "max_group_size": full["max_group_size"], "as_of": day(0)}
    for label, headers in readers.items():
        response = world.http.get(f"/v1/constraints/{world.ids['citizen_id']}",
                                  headers=headers)
        assert response.status_code == 200, (label, response.text)
        assert response.json() == expected, label
        assert not any(s in response.text for s in world.secrets), label


def test_no_answer_carried_a_cpr_number(world: World, witness: CprWitness) -> None:
    """Runs last in the module: every answer the module's client got, setup included."""
    assert witness.seen and witness.cprs, "nothing was witnessed"
    assert not witness.leaks, "\n".join(sorted(set(witness.leaks)))


def test_the_matrix_file_reads_as_api_md() -> None:
    """A few rows of API.md's access matrix, spelled out, so a careless edit of the file
    cannot quietly widen what it proves."""
    e = MATRIX.entries
    assert e["GET /v1/threat-assessments/{assessment_id}"].allow == {"security_officer"}
    assert e["POST /v1/threat-assessments"].allow == {"police"}
    assert all(entry.allow <= {"auditor"} for route, entry in e.items()
               if route.startswith("GET /v1/audit"))
    assert all(not entry.allow & {"police", "analyst", "auditor", "provider"}
               for route, entry in e.items() if "/citizens" in route)
    assert all(entry.allow | entry.own <= {"team_lead", "analyst"}
               for route, entry in e.items() if "/reports/" in route)
    assert MATRIX.need_to_know_readers == {"security_officer"}
