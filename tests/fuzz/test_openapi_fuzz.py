"""Fuzzing the whole API through the gateway, from its merged OpenAPI document.

schemathesis generates valid (positive) and invalid (negative) requests for every
operation of `GET /openapi.json` and sends them with a token of a role that holds the
operation's scope (the scopes come from the operation's `security` in the document, so a
new route is fuzzed without an edit here; where several roles qualify they take turns, a
provider's token is bound to a real provider). A positive case names, half the time, a
real object instead of a random id, so the rules behind the 404s run too.

Every answer must pass schemathesis's checks (no 5xx, the status code, content type,
headers and body documented for the operation, invalid data refused) and ours: an error
is a problem document (`application/problem+json` with type, title, status, detail,
code; the token endpoint's 400 and 401 also carry the OAuth `error`), every answer has
an `X-Request-ID`, and no CPR number sent (in a `cpr` field) is ever echoed back.

CI runs a few examples per operation and mode with a fixed seed (on SQLite); the longer
run is `SIKKERBY_FUZZ_EXAMPLES=200 .venv/bin/python -m pytest tests/fuzz` (random seeds;
`SIKKERBY_FUZZ_SEED` fixes one), see tests/README.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from gateway.routing import ROUTES, RouteTable
from services.platform.scopes import ROLE_SCOPES, Role, Scope

from ..support.system import System, bearer
from .seed import seed as seed_data

LONG_EXAMPLES = int(os.environ.get("SIKKERBY_FUZZ_EXAMPLES", "0"))
EXAMPLES = LONG_EXAMPLES or 10  # per operation and mode in CI
FIXED_SEED = os.environ.get("SIKKERBY_FUZZ_SEED")
PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}
TOKEN_PATH = "/v1/auth/token"
CPR = re.compile(r"(?<!\d)\d{6}-?\d{4}(?!\d)")
# The order roles take turns in; the service role last (it is the services' own).
ROLE_ORDER = [Role.caseworker, Role.provider, Role.admin, Role.team_lead, Role.police,
              Role.security_officer, Role.analyst, Role.auditor, Role.service]
GATEWAY = "gateway"  # the gateway's own routes: whatever the route table does not forward
AREAS = sorted({route.prefix for route in ROUTES}) + [GATEWAY]
TABLE = RouteTable()


def area_of(path: str) -> str:
    route = TABLE.match(path)
    return route.prefix if route is not None else GATEWAY


class Tokens:
    """One client per role, its token renewed well before it expires (long runs)."""

    def __init__(self, system: System, provider_id: str) -> None:
        self.system = system
        self.clients: dict[Role, dict[str, Any]] = {}
        for role in ROLE_ORDER:
            extra: dict[str, Any] = {}
            if role is Role.provider:
                extra["provider_id"] = provider_id
            if role is Role.service:
                extra["scopes"] = sorted(s.value for s in ROLE_SCOPES[Role.service])
            self.clients[role] = system.new_client(role.value, **extra)
        self._tokens: dict[Role, tuple[float, str]] = {}

    def header(self, role: Role) -> dict[str, str]:
        issued, token = self._tokens.get(role, (0.0, ""))
        if time.monotonic() - issued > 240:
            client = self.clients[role]
            token = self.system.token(client["client_id"], client["client_secret"])
            self._tokens[role] = (time.monotonic(), token)
        return bearer(token)


@pytest.fixture(scope="module")
def fuzz_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = System(tmp_path_factory.mktemp("fuzz")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def world(fuzz_system: System) -> tuple[dict[str, list[str]], Tokens]:
    ids, provider_id = seed_data(fuzz_system)
    return ids, Tokens(fuzz_system, provider_id)


@pytest.fixture(scope="module")
def api_schema(fuzz_system: System):  # type: ignore[no-untyped-def]
    config = SchemathesisConfig.from_dict({
        # positive_data_acceptance is off: a domain refusal of valid data (404 for a
        # random id, 409, 422 for a rule) is a valid answer. Every other check is on,
        # negative_data_rejection too: request fields take only what the schema allows
        # (services/platform/fields.py), so invalid data is a 422.
        "checks": {"positive_data_acceptance": {"enabled": False},
                   "negative_data_rejection": {"enabled": True}},
        "request-timeout": 30,
    })
    return schemathesis.openapi.from_url(f"{fuzz_system.url}/openapi.json", config=config)


def required_scopes(operation) -> set[str]:  # type: ignore[no-untyped-def]
    security = operation.definition.raw.get("security") or []
    return {scope for requirement in security for scopes in requirement.values()
            for scope in scopes}


def eligible_roles(operation) -> list[Role]:  # type: ignore[no-untyped-def]
    wanted = {Scope(s) for s in required_scopes(operation)}
    return [role for role in ROLE_ORDER if ROLE_SCOPES[role] & wanted]


def case_random(case) -> random.Random:  # type: ignore[no-untyped-def]
    """Choices that depend on the case only, so hypothesis replays them exactly."""
    text = repr((case.operation.label, case.path_parameters, case.query, case.body))
    return random.Random(hashlib.sha256(text.encode()).digest())


def name_real_objects(case, ids: dict[str, list[str]], rng: random.Random) -> None:  # type: ignore[no-untyped-def]
    """Put real ids where a positive case names an object by a known parameter name."""

    def swap(container: Any) -> None:
        if isinstance(container, dict):
            for key, value in container.items():
                if key in ids and isinstance(value, str):
                    container[key] = rng.choice(ids[key])
                else:
                    swap(value)
        elif isinstance(container, list):
            for item in container:
                swap(item)

    swap(case.path_parameters)
    swap(case.query)
    if isinstance(case.body, dict | list):
        swap(case.body)


def cprs_in(value: Any) -> Iterator[str]:
    """The CPR numbers a request carries where the contract puts them (`cpr` fields)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "cpr" and isinstance(item, str):
                yield from CPR.findall(item)
            else:
                yield from cprs_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from cprs_in(item)


def problem_documents(ctx, response, case) -> None:  # type: ignore[no-untyped-def]
    """Every error is a problem document; every answer carries an X-Request-ID."""
    assert response.headers.get("x-request-id"), "no X-Request-ID"
    if response.status_code < 400:
        return
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/problem+json"), (
        f"error {response.status_code} as {content_type!r}, not a problem document")
    body = json.loads(response.content)
    missing = PROBLEM_KEYS - body.keys()
    assert not missing, f"problem document without {sorted(missing)}"
    assert body["status"] == response.status_code, "problem status differs from HTTP's"
    if case.operation.path == TOKEN_PATH and response.status_code in (400, 401):
        assert body.get("error"), "an OAuth refusal without `error`"


def no_cpr_echo(ctx, response, case) -> None:  # type: ignore[no-untyped-def]
    """A CPR number that was sent is never echoed back (`cpr_masked` is fine)."""
    text = response.content.decode("utf-8", "replace").replace("-", "")
    for cpr in cprs_in(case.body):
        assert cpr.replace("-", "") not in text, "a CPR number sent was echoed back"


def run_operation(operation, mode: GenerationMode, ids: dict[str, list[str]],  # type: ignore[no-untyped-def]
                  tokens: Tokens) -> None:
    roles = eligible_roles(operation)
    if required_scopes(operation):
        assert roles, f"{operation.label}: no role holds any of its scopes"

    def call(case) -> None:  # type: ignore[no-untyped-def]
        rng = case_random(case)
        headers: dict[str, str] = {}
        if roles:
            headers.update(tokens.header(rng.choice(roles)))
        if mode is GenerationMode.POSITIVE and rng.random() < 0.5:
            name_real_objects(case, ids, rng)
        case.call_and_validate(headers=headers,
                               additional_checks=[problem_documents, no_cpr_echo])

    test = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    derandomize=not LONG_EXAMPLES and FIXED_SEED is None,
                    suppress_health_check=list(HealthCheck), print_blob=True)(
        given(case=operation.as_strategy(generation_mode=mode))(call))
    if FIXED_SEED is not None:
        test = seed(int(FIXED_SEED))(test)
    try:
        test()
    except Unsatisfiable:
        return  # nothing invalid can be made for it (no parameters, no body)


@pytest.mark.parametrize("area", AREAS)
def test_fuzz_every_operation(area: str, api_schema, world) -> None:  # type: ignore[no-untyped-def]
    """No 5xx, every status documented, every error a problem document, for every
    operation of the area (a route-table prefix, or the gateway's own routes)."""
    ids, tokens = world
    failures = []
    operations = [result.ok() for result in api_schema.get_all_operations()
                  if area_of(result.ok().path) == area]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                run_operation(operation, mode, ids, tokens)
            except (Exception, BaseExceptionGroup) as exc:  # report every operation's
                failures.append(f"{operation.label} ({mode.value}):\n{exc}")
    assert not failures, "\n\n".join(failures)


def test_every_operation_is_in_an_area(api_schema) -> None:  # type: ignore[no-untyped-def]
    """The areas cover the whole document (the gateway's bucket takes the rest), and
    every secured operation has a role to fuzz it with."""
    labels = [result.ok().label for result in api_schema.get_all_operations()]
    assert len(labels) > 50
    for result in api_schema.get_all_operations():
        operation = result.ok()
        assert area_of(operation.path) in AREAS
        if required_scopes(operation):
            assert eligible_roles(operation), operation.label


def test_the_document_lists_the_errors_as_problem_documents(api_schema) -> None:  # type: ignore[no-untyped-def]
    """What the fuzzer holds the answers to: every error response of the merged document
    is `application/problem+json`, every secured operation documents 401, 403 and 503,
    and every forwarded one the gateway's own 429 and 504."""
    for result in api_schema.get_all_operations():
        operation = result.ok()
        responses = operation.definition.raw["responses"]
        for status, response in responses.items():
            if int(status) >= 400:
                assert set(response.get("content", {})) == {"application/problem+json"}, (
                    operation.label, status)
        if required_scopes(operation):
            assert {"401", "403", "503"} <= responses.keys(), operation.label
        if TABLE.match(operation.path) is not None:
            assert {"429", "504"} <= responses.keys(), operation.label
