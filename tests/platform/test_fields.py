"""Request fields take what the OpenAPI document allows and nothing looser
(services/platform/fields.py): no number of seconds for a date or a timestamp, no other
spelling of a date, no "5" for an integer or a number in a JSON body, no "true" or 1 for
a boolean; in a query string "5" still is an integer. A refusal is the 422 problem
document with `code: "validation_error"`, and the document's schemas stay as they were."""

from __future__ import annotations

import typing
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from gateway.audit import router as gateway_audit_router
from gateway.routes import router as gateway_router
from services.activation.routes import router as activation_router
from services.citizens.routes import router as citizens_router
from services.platform.fields import BodyBool, BodyInt, BodyNumber, Day, Timestamp
from services.platform.pagination import DEFAULT_LIMIT, Limit
from services.platform.problems import install_problem_handlers
from services.providers.routes import router as providers_router
from services.security.routes import router as security_router

from ..support.builders import make_cpr, make_provider, register
from ..support.system import System, bearer
from ..test_gateway import assert_problem


# The kernel's types, behind the project's problem handlers ------------------------------
class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    day: Day
    at: Timestamp
    count: BodyInt
    hours: BodyNumber
    flag: BodyBool
    until: Day | None = None


def fields_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/things")
    def post_thing(body: Thing) -> dict[str, Any]:
        return body.model_dump(mode="json")

    @app.get("/things")
    def list_things(on: Day | None = None, limit: Limit = DEFAULT_LIMIT) -> dict[str, Any]:
        return {"on": on and on.isoformat(), "limit": limit}

    return app


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(fields_app()) as test_client:
        yield test_client


VALID = {"day": "2026-11-23", "at": "2026-11-23T09:30:00+01:00", "count": 5, "hours": 7.5,
         "flag": True}


def test_valid_values_pass(client: TestClient) -> None:
    response = client.post("/things", json=VALID)
    assert response.status_code == 200, response.text
    assert response.json() == {**VALID, "until": None}
    # A JSON integer is a number (37 hours); a UTC timestamp; false is a boolean too.
    response = client.post("/things", json={**VALID, "hours": 37, "flag": False,
                                            "at": "2026-11-23T08:30:00.25Z",
                                            "until": "2026-12-31"})
    assert response.status_code == 200, response.text
    assert response.json()["hours"] == 37.0 and response.json()["flag"] is False
    assert response.json()["until"] == "2026-12-31"


@pytest.mark.parametrize(("field", "value"), [
    ("day", 1700000000),  # seconds since 1970
    ("day", 86400),  # seconds that fall on a midnight: lax pydantic made 1970-01-02 of it
    ("day", 0),
    ("day", "86400"),
    ("day", 2026.5),
    ("day", "2026-1-5"),
    ("day", "20261123"),
    ("day", "2026-11-23T00:00:00"),
    ("day", "2026-11-23\n"),
    ("day", "٢٠٢٦-١١-٢٣"),  # digits, but not ASCII ones
    ("day", ["2026-11-23"]),
    ("day", "9999-12-31"),  # past the range the rules can count weeks in
    ("day", "1899-12-31"),
    ("until", 0),
    ("at", 1700000000),
    ("at", "1700000000"),
    ("at", "2026-11-23 09:30:00+01:00"),
    ("at", "2026-11-23T09:30:00+0100"),
    ("at", "2026-11-23T09:30:00"),  # no offset
    ("count", "5"),
    ("count", True),
    ("count", 5.5),
    ("hours", "7.5"),
    ("hours", "37"),
    ("hours", True),
    ("flag", "true"),
    ("flag", "yes"),
    ("flag", 1),
    ("flag", 0),
])
def test_a_body_value_the_schema_calls_invalid_is_422(client: TestClient, field: str,
                                                      value: object) -> None:
    response = client.post("/things", json={**VALID, field: value})
    body = assert_problem(response, 422, "validation_error")
    assert {tuple(error["loc"][:2]) for error in body["errors"]} == {("body", field)}


def test_query_values_are_text_but_only_the_plain_spelling(client: TestClient) -> None:
    response = client.get("/things", params={"on": "2026-11-23", "limit": "5"})
    assert response.status_code == 200, response.text
    assert response.json() == {"on": "2026-11-23", "limit": 5}
    assert client.get("/things").json() == {"on": None, "limit": DEFAULT_LIMIT}
    for on in ("0", "86400", "1700000000", "2026-1-5", "2026-11-23T00:00:00", "20261123",
               "9999-12-31"):
        response = client.get("/things", params={"on": on})
        body = assert_problem(response, 422, "validation_error")
        assert [error["loc"] for error in body["errors"]] == [["query", "on"]], on
    for limit in ("5.0", " 5", "5 ", "5_0", "true", "0", "501", "x"):
        response = client.get("/things", params={"limit": limit})
        body = assert_problem(response, 422, "validation_error")
        assert [error["loc"] for error in body["errors"]] == [["query", "limit"]], limit


def test_the_document_shows_the_plain_types(client: TestClient) -> None:
    assert TypeAdapter(Day).json_schema() == {"type": "string", "format": "date"}
    assert TypeAdapter(Timestamp).json_schema() == {"type": "string", "format": "date-time"}
    assert TypeAdapter(BodyInt).json_schema() == {"type": "integer"}
    assert TypeAdapter(BodyNumber).json_schema() == {"type": "number"}
    assert TypeAdapter(BodyBool).json_schema() == {"type": "boolean"}
    parameters = client.get("/openapi.json").json()["paths"]["/things"]["get"]["parameters"]
    limit = next(p["schema"] for p in parameters if p["name"] == "limit")
    assert limit == {"type": "integer", "minimum": 1, "maximum": 500, "default": DEFAULT_LIMIT,
                     "title": "Limit", "description": "Page size (at most 500)"}


# Every field a client sends, on every route of the document -------------------------------
ROUTERS: list[APIRouter] = [citizens_router, providers_router, activation_router,
                            security_router, gateway_router, gateway_audit_router]
RequestField = tuple[str, str, Any]  # where, field, the type with its metadata


def _with_metadata(annotation: Any, metadata: list[Any]) -> Any:
    return Annotated[(annotation, *metadata)] if metadata else annotation


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in typing.get_args(annotation):
        yield from _models_in(argument)


def _body_fields(where: str, model: type[BaseModel]) -> Iterator[RequestField]:
    for name, info in model.model_fields.items():
        yield f"{where} body", f"{model.__name__}.{name}", _with_metadata(info.annotation,
                                                                          info.metadata)
        for nested in _models_in(info.annotation):
            yield from _body_fields(where, nested)


def request_fields() -> Iterator[RequestField]:
    for router in ROUTERS:
        for route in router.routes:
            if not isinstance(route, APIRoute) or not route.include_in_schema:
                continue  # not in the public document (the services' internal audit reads)
            where = f"{sorted(route.methods)[0]} {route.path}"
            for parameter in route.dependant.query_params:
                yield (f"{where} query", parameter.name,
                       _with_metadata(parameter.field_info.annotation,
                                      parameter.field_info.metadata))
            if route.body_field is not None:
                for model in _models_in(route.body_field.field_info.annotation):
                    yield from _body_fields(where, model)


def _accepts(adapter: TypeAdapter[Any], value: object) -> tuple[bool, object]:
    try:
        return True, adapter.validate_python(value)
    except ValidationError:
        return False, None


def too_lax(where: str, annotation: Any) -> tuple[str, list[object]]:
    """What kind of field it is (judged by what it takes), and the values of another type
    or spelling it takes too (none, for a field that holds to its schema)."""
    adapter = TypeAdapter(annotation)
    in_query = where.endswith("query")
    kind, wrong = "other", []
    ok, value = _accepts(adapter, "2026-01-05")
    if ok and type(value) is date:
        kind, wrong = "date", [0, 86400, "86400", "2026-1-5", "2026-01-05T00:00:00"]
    ok, value = _accepts(adapter, "2026-01-05T10:00:00+01:00")
    if ok and isinstance(value, datetime):
        kind, wrong = "timestamp", [1700000000, "1700000000"]
    for number in ((1, 2026) if not in_query else ("1", "2026")):  # in bounds: 0-4, a year
        ok, value = _accepts(adapter, number)
        if ok and isinstance(value, int | float) and not isinstance(value, bool):
            kind = "integer" if isinstance(value, int) else "number"
            wrong = ([f"{number}.0", f" {number}", f"{number} "] if in_query
                     else [str(number), True])
            break
    ok, value = _accepts(adapter, True)
    if ok and value is True and not in_query:
        kind, wrong = "boolean", ["true", 1, 0]
    return kind, [bad for bad in wrong if _accepts(adapter, bad)[0]]


def test_every_request_field_holds_to_its_schema() -> None:
    """Every query parameter and JSON body field of every route in the document: a date,
    timestamp, integer, number or boolean takes no other type or spelling. A new field
    declared `date`, `int`, `float` or `bool` instead of the kernel's types fails here."""
    kinds: dict[str, int] = {}
    leaks = []
    for where, name, annotation in request_fields():
        kind, wrong = too_lax(where, annotation)
        kinds[kind] = kinds.get(kind, 0) + 1
        if wrong:
            leaks.append(f"{where} {name} ({kind}) takes {wrong!r}")
    assert not leaks, "\n".join(leaks)
    # The walk found the fields it guards (so the check above is not vacuous).
    assert kinds.get("date", 0) >= 25 and kinds.get("integer", 0) >= 15, kinds
    assert kinds.get("number", 0) >= 3 and kinds.get("boolean", 0) >= 3, kinds
    assert kinds.get("timestamp", 0) >= 2, kinds


# Through the gateway, on real routes ------------------------------------------------------
@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    system = System(tmp_path_factory.mktemp("fields")).start()  # SQLite: no database work
    yield system
    system.stop()


def test_the_services_refuse_lax_values_with_a_problem_document(running: System) -> None:
    caseworker = bearer(running.token_for("caseworker"))
    admin = bearer(running.admin_token())
    analyst = bearer(running.token_for("analyst"))
    with running.http() as http:
        citizen = register(http, caseworker, cpr=make_cpr(date(1990, 5, 17)))
        provider = make_provider(http, admin)
        enrol = f"/v1/citizens/{citizen['id']}/enrolments"
        for day in (1700000000, 86400, "2026-1-5", "2026-01-05T00:00:00"):
            response = http.post(enrol, headers=caseworker,
                                 json={"enrolled_on": day, "referral_source": "police"})
            assert_problem(response, 422, "validation_error")
        contract = {"provider_id": provider["id"], "kind": "special",
                    "offer_types": ["utility_work"], "starts_on": "2026-01-01",
                    "ends_on": "2026-12-31", "capacity": 5, "weekly_price_ore": 250_000,
                    "max_threat_level": 2}
        for field, value in (("capacity", "5"), ("weekly_price_ore", "250000"),
                             ("max_threat_level", True), ("starts_on", 1767225600)):
            response = http.post("/v1/contracts", headers=admin,
                                 json={**contract, field: value})
            assert_problem(response, 422, "validation_error")
        outcome = f"/v1/conversations/{uuid.uuid4()}/outcome"
        for attended in ("true", 1):
            response = http.post(outcome, headers=caseworker, json={"attended": attended})
            assert_problem(response, 422, "validation_error")
        for as_of in ("0", "1700000000", "2026-1-5"):
            response = http.get("/v1/reports/enrolment", params={"as_of": as_of},
                                headers=analyst)
            assert_problem(response, 422, "validation_error")
        response = http.get("/v1/providers", params={"limit": "5.0"}, headers=admin)
        assert_problem(response, 422, "validation_error")

        # The same requests with valid values get past validation.
        response = http.post(enrol, headers=caseworker,
                             json={"enrolled_on": "2026-01-05", "referral_source": "police"})
        assert response.status_code == 201, response.text
        response = http.post("/v1/contracts", headers=admin, json=contract)
        assert response.status_code == 201, response.text
        response = http.post(outcome, headers=caseworker, json={"attended": True})
        assert_problem(response, 404, "not_found")  # a conversation that does not exist
        response = http.get("/v1/reports/enrolment", params={"as_of": "2026-01-05"},
                            headers=analyst)
        assert response.status_code == 200, response.text
        response = http.get("/v1/providers", params={"limit": "5"}, headers=admin)
        assert response.status_code == 200, response.text
