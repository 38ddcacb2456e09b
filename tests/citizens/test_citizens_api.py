"""The citizens service through the gateway, on SQLite and PostgreSQL."""

from __future__ import annotations

import concurrent.futures
import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from services.citizens.models import Enrolment
from services.platform.clock import local_today
from services.platform.db import make_engine
from services.platform.settings import ServiceName

from ..support.builders import OTHER_ZEROS, make_cpr, register, spelt
from ..support.leaks import LeakWitness
from ..support.system import System, bearer
from ..test_gateway import assert_problem

USED_CPRS: set[str] = set()


WITNESS = LeakWitness()


@pytest.fixture(scope="module", autouse=True)
def collect_logs():
    with WITNESS.listening():
        yield


@pytest.fixture(scope="module")
def http(system: System):
    with WITNESS.client(system.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def caseworker(system: System) -> dict[str, str]:
    return bearer(system.token_for("caseworker"))


def new_citizen(http: httpx.Client, headers: dict[str, str], **fields) -> dict:
    citizen = register(http, headers, **fields)
    USED_CPRS.add(citizen["cpr"].replace("-", ""))
    return citizen


def test_register_answers_without_the_cpr(http, caseworker) -> None:
    cpr = make_cpr(date(1991, 3, 9), dash=True)
    USED_CPRS.add(cpr.replace("-", ""))
    response = http.post("/v1/citizens", headers=caseworker, json={
        "cpr": cpr, "name": "Ali Test", "benefit": "kontanthjaelp",
        "readiness": "aktivitetsparat"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "name", "cpr_masked", "birth_date", "age", "benefit",
                         "readiness", "status"}
    assert body["cpr_masked"] == f"{cpr[:6]}-XXXX"
    assert body["birth_date"] == "1991-03-09"
    today = local_today()
    assert body["age"] == today.year - 1991 - ((today.month, today.day) < (3, 9))
    assert body["status"] == "not_enrolled"
    assert response.headers["etag"] == '"1"'
    uuid.UUID(body["id"])


@pytest.mark.parametrize("cpr", ["12345", "3213901234", "0113901234", "2902011234",
                                 "abcdefghij", "0101505123", "01019012345"])
def test_invalid_cpr_is_422_without_echo(http, caseworker, cpr: str) -> None:
    response = http.post("/v1/citizens", headers=caseworker, json={
        "cpr": cpr, "name": "X", "benefit": "kontanthjaelp", "readiness": "jobparat"})
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "cpr"]
    assert cpr not in response.text


def test_a_registered_cpr_is_409_with_the_id_dash_or_not(http, caseworker) -> None:
    citizen = new_citizen(http, caseworker)
    digits = citizen["cpr"]
    for form in (digits, f"{digits[:6]}-{digits[6:]}"):
        response = http.post("/v1/citizens", headers=caseworker, json={
            "cpr": form, "name": "Again", "benefit": "dagpenge", "readiness": "jobparat"})
        body = assert_problem(response, 409, "citizen_exists")
        assert body["id"] == citizen["id"]


def test_lookup_by_cpr_in_the_body(http, caseworker) -> None:
    citizen = new_citizen(http, caseworker)
    found = http.post("/v1/citizens/lookup", headers=caseworker, json={"cpr": citizen["cpr"]})
    assert found.status_code == 200 and found.json() == {"id": citizen["id"]}
    unknown = make_cpr(date(1980, 1, 1))
    assert_problem(http.post("/v1/citizens/lookup", headers=caseworker,
                             json={"cpr": unknown}), 404, "not_found")
    assert_problem(http.post("/v1/citizens/lookup", headers=caseworker,
                             json={"cpr": "nonsense"}), 422, "validation_error")


@pytest.mark.parametrize("script", ["fullwidth", "arabic_indic"])
def test_a_cpr_in_other_digits_is_422_not_a_second_person(http, caseworker,
                                                          script: str) -> None:
    """Fullwidth or Arabic-Indic digits are not another spelling of a registered number
    (they would hash apart from it: a second citizen for one person, a lookup that
    misses), nor a new number: 422, for registration and lookup alike."""
    citizen = new_citizen(http, caseworker)
    digits = citizen["cpr"]
    fresh = make_cpr(date(1985, 6, 7))
    for form in (digits, f"{digits[:6]}-{digits[6:]}", fresh):
        other = spelt(form, OTHER_ZEROS[script])
        assert other != form
        for path, body in (
                ("/v1/citizens", {"cpr": other, "name": "Again", "benefit": "dagpenge",
                                  "readiness": "jobparat"}),
                ("/v1/citizens/lookup", {"cpr": other})):
            response = http.post(path, headers=caseworker, json=body)
            problem = assert_problem(response, 422, "validation_error")
            assert problem["errors"][0]["loc"] == ["body", "cpr"]
            assert other not in response.text and form not in response.text
    # Still one person under the number, and the fresh one was not registered.
    found = http.post("/v1/citizens/lookup", headers=caseworker, json={"cpr": digits})
    assert found.status_code == 200 and found.json() == {"id": citizen["id"]}
    assert_problem(http.post("/v1/citizens/lookup", headers=caseworker, json={"cpr": fresh}),
                   404, "not_found")


def test_get_unknown_citizen_is_404(http, caseworker) -> None:
    assert_problem(http.get(f"/v1/citizens/{uuid.uuid4()}", headers=caseworker), 404,
                   "not_found")
    assert_problem(http.get("/v1/citizens/not-a-uuid", headers=caseworker), 422,
                   "validation_error")


@pytest.mark.parametrize("role", ["provider", "police", "security_officer", "analyst",
                                  "auditor", "admin"])
def test_roles_without_citizen_access_get_403(system: System, http, caseworker,
                                              role: str) -> None:
    citizen = new_citizen(http, caseworker)
    extra = {"provider_id": str(uuid.uuid4())} if role == "provider" else {}
    headers = bearer(system.token_for(role, **extra))
    assert_problem(http.get(f"/v1/citizens/{citizen['id']}", headers=headers), 403,
                   "insufficient_scope")
    assert_problem(http.get("/v1/citizens", headers=headers), 403, "insufficient_scope")


def test_team_lead_reads_but_does_not_write(system: System, http, caseworker) -> None:
    citizen = new_citizen(http, caseworker)
    lead = bearer(system.token_for("team_lead"))
    assert http.get(f"/v1/citizens/{citizen['id']}", headers=lead).status_code == 200
    assert_problem(http.post(f"/v1/citizens/{citizen['id']}/enrolments", headers=lead,
                             json={"enrolled_on": "2025-01-01", "referral_source": "police"}),
                   403, "insufficient_scope")
    assert_problem(http.post("/v1/citizens", headers=lead, json={
        "cpr": make_cpr(date(1990, 1, 1)), "name": "X", "benefit": "other",
        "readiness": "jobparat"}), 403, "insufficient_scope")
    assert_problem(http.get("/v1/citizens"), 401, "unauthorized")


def test_enrolment_lifecycle_and_its_refusals(http, caseworker) -> None:
    citizen = new_citizen(http, caseworker)
    base = f"/v1/citizens/{citizen['id']}"
    today = local_today()
    assert_problem(http.post(f"{base}/exit", headers=caseworker,
                             json={"exited_on": "2025-02-01", "reason": "job"}),
                   409, "not_enrolled")
    assert_problem(http.post(f"{base}/enrolments", headers=caseworker, json={
        "enrolled_on": (today + timedelta(days=1)).isoformat(), "referral_source": "police"}),
        422, "date_in_future")
    assert_problem(http.post(f"{base}/enrolments", headers=caseworker, json={
        "enrolled_on": "2025-01-10", "referral_source": "neighbour"}), 422, "validation_error")
    enrolled = http.post(f"{base}/enrolments", headers=caseworker,
                         json={"enrolled_on": "2025-01-10", "referral_source": "police"})
    assert enrolled.status_code == 201, enrolled.text
    assert enrolled.json()["exited_on"] is None
    assert http.get(base, headers=caseworker).json()["status"] == "enrolled"
    assert_problem(http.post(f"{base}/enrolments", headers=caseworker,
                             json={"enrolled_on": "2025-02-10", "referral_source": "other"}),
                   409, "already_enrolled")
    assert_problem(http.post(f"{base}/exit", headers=caseworker,
                             json={"exited_on": "2025-01-09", "reason": "job"}),
                   422, "exit_before_enrolment")
    assert_problem(http.post(f"{base}/exit", headers=caseworker,
                             json={"exited_on": "2025-03-01", "reason": "lottery"}),
                   422, "validation_error")
    exited = http.post(f"{base}/exit", headers=caseworker,
                       json={"exited_on": "2025-03-01", "reason": "job"})
    assert exited.status_code == 200
    assert exited.json()["exit_reason"] == "job"
    assert http.get(base, headers=caseworker).json()["status"] == "exited"
    assert_problem(http.post(f"{base}/exit", headers=caseworker,
                             json={"exited_on": "2025-03-02", "reason": "job"}),
                   409, "not_enrolled")
    # Periods never overlap: a comeback starts on or after the last exit.
    assert_problem(http.post(f"{base}/enrolments", headers=caseworker,
                             json={"enrolled_on": "2025-02-01", "referral_source": "police"}),
                   422, "enrolment_overlaps")
    again = http.post(f"{base}/enrolments", headers=caseworker,
                      json={"enrolled_on": "2025-03-01", "referral_source": "prison_service"})
    assert again.status_code == 201
    periods = http.get(f"{base}/enrolments", headers=caseworker).json()
    assert [(p["enrolled_on"], p["exited_on"]) for p in periods] == [
        ("2025-01-10", "2025-03-01"), ("2025-03-01", None)]
    assert http.get(base, headers=caseworker).json()["status"] == "enrolled"


def test_a_failed_write_changes_nothing(http, caseworker) -> None:
    citizen = new_citizen(http, caseworker)
    base = f"/v1/citizens/{citizen['id']}"
    http.post(f"{base}/enrolments", headers=caseworker,
              json={"enrolled_on": "2025-01-10", "referral_source": "police"})
    http.post(f"{base}/exit", headers=caseworker,
              json={"exited_on": "2025-01-01", "reason": "job"})
    periods = http.get(f"{base}/enrolments", headers=caseworker).json()
    assert [p["exited_on"] for p in periods] == [None]


def test_patch_needs_if_match_and_keeps_history(system: System, http, caseworker) -> None:
    citizen = new_citizen(http, caseworker)
    base = f"/v1/citizens/{citizen['id']}"
    etag = http.get(base, headers=caseworker).headers["etag"]
    assert_problem(http.patch(base, headers=caseworker, json={"name": "New"}),
                   428, "precondition_required")
    assert_problem(http.patch(base, headers={**caseworker, "If-Match": "*"},
                              json={"name": "New"}), 428, "precondition_required")
    # Latin-1's superscript digits are digits to str.isdigit(), not to int(): sent to
    # the service itself (the gateway forwards header values re-encoded).
    direct = system.servers[ServiceName.citizens].url
    for not_an_etag in (b'"\xb2"', b"\xb9", b'W/"1\xb3"'):
        for url in (base, f"{direct}{base}"):
            assert_problem(http.patch(url, headers={**caseworker, "If-Match": not_an_etag},
                                      json={"name": "New"}), 428, "precondition_required")
    assert_problem(http.patch(base, headers={**caseworker, "If-Match": etag}, json={}),
                   422, "validation_error")
    assert_problem(http.patch(base, headers={**caseworker, "If-Match": etag},
                              json={"cpr": "0101901234"}), 422, "validation_error")
    assert_problem(http.patch(base, headers={**caseworker, "If-Match": etag},
                              json={"benefit": None}), 422, "validation_error")
    changed = http.patch(base, headers={**caseworker, "If-Match": etag},
                         json={"name": "New Name", "readiness": "aktivitetsparat"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "New Name"
    new_etag = changed.headers["etag"]
    assert new_etag != etag and http.get(base, headers=caseworker).headers["etag"] == new_etag
    # The old ETag is stale now: a lost update is refused, and nothing changes.
    assert_problem(http.patch(base, headers={**caseworker, "If-Match": etag},
                              json={"name": "Lost Update"}), 412, "precondition_failed")
    assert http.get(base, headers=caseworker).json()["name"] == "New Name"
    history = http.get(f"{base}/changes", headers=caseworker).json()
    assert [(h["field"], h["old_value"], h["new_value"]) for h in history] == [
        ("name", "Test Person", "New Name"), ("readiness", "jobparat", "aktivitetsparat")]
    assert all(h["version"] == 2 and h["changed_by"] for h in history)
    assert_problem(http.patch(f"/v1/citizens/{uuid.uuid4()}",
                              headers={**caseworker, "If-Match": '"1"'}, json={"name": "x"}),
                   404, "not_found")


def test_list_filters_and_pagination(http, caseworker) -> None:
    ids = {}
    for label, dates in (("never", None), ("in", ("2024-06-01", None)),
                         ("out", ("2024-06-02", "2024-09-01"))):
        citizen = new_citizen(http, caseworker)
        ids[label] = citizen["id"]
        if dates:
            http.post(f"/v1/citizens/{citizen['id']}/enrolments", headers=caseworker,
                      json={"enrolled_on": dates[0], "referral_source": "police"})
        if dates and dates[1]:
            http.post(f"/v1/citizens/{citizen['id']}/exit", headers=caseworker,
                      json={"exited_on": dates[1], "reason": "education"})

    def all_pages(**params) -> list[dict]:
        items, cursor = [], None
        while True:
            page = http.get("/v1/citizens", headers=caseworker,
                            params={"limit": 2, **params, **({"cursor": cursor} if cursor else {})}
                            ).json()
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items

    enrolled = {c["id"] for c in all_pages(status="enrolled")}
    exited = {c["id"] for c in all_pages(status="exited")}
    never = {c["id"] for c in all_pages(status="not_enrolled")}
    assert ids["in"] in enrolled and ids["in"] not in exited | never
    assert ids["out"] in exited and ids["out"] not in enrolled | never
    assert ids["never"] in never and ids["never"] not in enrolled | exited
    ranged = {c["id"] for c in all_pages(enrolled_from="2024-06-01", enrolled_to="2024-06-01")}
    assert ids["in"] in ranged and ids["out"] not in ranged
    everyone = all_pages()
    assert len(everyone) == len({c["id"] for c in everyone})
    assert_problem(http.get("/v1/citizens", headers=caseworker, params={"status": "x"}),
                   422, "validation_error")
    assert_problem(http.get("/v1/citizens", headers=caseworker, params={"limit": 501}),
                   422, "validation_error")


def test_eligibility_for_the_activation_service(system: System, http, caseworker) -> None:
    citizen = new_citizen(http, caseworker, birth=date(2001, 2, 3),
                          readiness="aktivitetsparat")
    http.post(f"/v1/citizens/{citizen['id']}/enrolments", headers=caseworker,
              json={"enrolled_on": "2025-01-10", "referral_source": "police"})
    service = bearer(system.token_for("service", scopes=["citizens:status"]))
    response = http.get(f"/v1/citizens/{citizen['id']}/eligibility", headers=service)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {"id": citizen["id"], "status": "enrolled", "birth_date": "2001-02-03",
                    "readiness": "aktivitetsparat",
                    "enrolments": [{"enrolled_on": "2025-01-10", "exited_on": None}]}
    # The narrow scope opens nothing else.
    assert_problem(http.get(f"/v1/citizens/{citizen['id']}", headers=service), 403,
                   "insufficient_scope")
    assert_problem(http.post("/v1/citizens/lookup", headers=service,
                             json={"cpr": citizen["cpr"]}), 403, "insufficient_scope")


def test_the_security_service_resolves_a_cpr(system: System, http, caseworker) -> None:
    citizen = new_citizen(http, caseworker)
    service = bearer(system.token_for("service", scopes=["citizens:resolve"]))
    found = http.post("/v1/citizens/lookup", headers=service, json={"cpr": citizen["cpr"]})
    assert found.json() == {"id": citizen["id"]}
    assert_problem(http.get(f"/v1/citizens/{citizen['id']}", headers=service), 403,
                   "insufficient_scope")


def test_concurrent_enrolments_leave_one_open_period(system: System, http,
                                                     caseworker) -> None:
    citizen = new_citizen(http, caseworker)

    def attempt(i: int) -> int:
        with httpx.Client(base_url=system.url, timeout=60) as client:
            return client.post(f"/v1/citizens/{citizen['id']}/enrolments", headers=caseworker,
                               json={"enrolled_on": f"2025-01-{10 + i % 10:02d}",
                                     "referral_source": "police"}).status_code

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(attempt, range(24)))
    assert statuses.count(201) == 1 and statuses.count(409) == 23, statuses
    periods = http.get(f"/v1/citizens/{citizen['id']}/enrolments", headers=caseworker).json()
    assert len(periods) == 1


def test_the_database_allows_one_open_enrolment_whatever_the_code(system: System,
                                                                  http, caseworker) -> None:
    """The partial unique index itself refuses a second open period."""
    citizen = new_citizen(http, caseworker)
    http.post(f"/v1/citizens/{citizen['id']}/enrolments", headers=caseworker,
              json={"enrolled_on": "2025-01-10", "referral_source": "police"})
    engine = make_engine(system.settings.database_url(ServiceName.citizens))
    try:
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(Enrolment.__table__.insert().values(
                id=uuid.uuid4(), citizen_id=uuid.UUID(citizen["id"]),
                enrolled_on=date(2025, 2, 1), referral_source="police", enrolled_by="x",
                created_at=datetime.now(UTC)))
    finally:
        engine.dispose()


def test_concurrent_registrations_of_one_cpr(system: System, caseworker) -> None:
    cpr = make_cpr(date(1985, 7, 7))
    USED_CPRS.add(cpr)

    def attempt(_: int) -> httpx.Response:
        with httpx.Client(base_url=system.url, timeout=60) as client:
            return client.post("/v1/citizens", headers=caseworker, json={
                "cpr": cpr, "name": "Race", "benefit": "other", "readiness": "jobparat"})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(attempt, range(16)))
    created = [r for r in responses if r.status_code == 201]
    assert len(created) == 1
    assert {r.json()["id"] for r in responses} == {created[0].json()["id"]}
    WITNESS.bodies.extend(r.text for r in responses)


def test_every_access_is_audited_without_the_cpr(system: System, http, caseworker) -> None:
    citizen = new_citizen(http, caseworker)
    http.get(f"/v1/citizens/{citizen['id']}", headers=caseworker)
    http.post("/v1/citizens/lookup", headers=caseworker, json={"cpr": citizen["cpr"]})
    http.post(f"/v1/citizens/{citizen['id']}/exit", headers=caseworker,
              json={"exited_on": "2025-01-01", "reason": "job"})  # refused: not enrolled
    engine = make_engine(system.settings.database_url(ServiceName.citizens))
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT action, outcome, actor, role, request_id, citizen_id FROM audit_entry "
                "ORDER BY seq")).all()
            everything = connection.execute(text("SELECT * FROM audit_entry")).all()
            cpr_columns = connection.execute(text("SELECT cpr_encrypted FROM citizen")).all()
    finally:
        engine.dispose()
    mine = [r for r in rows if str(r.citizen_id).replace("-", "") == citizen["id"].replace("-", "")]
    assert [(r.action, r.outcome) for r in mine] == [
        ("citizen.create", "success"), ("citizen.read", "success"),
        ("citizen.lookup", "success"), ("enrolment.exit", "refused:not_enrolled")]
    assert all(r.role == "caseworker" and r.request_id for r in mine)
    dump = repr(everything) + repr(cpr_columns)
    for cpr in USED_CPRS:
        assert cpr not in dump and f"{cpr[:6]}-{cpr[6:]}" not in dump


def test_no_cpr_in_any_response_or_log() -> None:
    """Runs last in this module: every body this module saw, and every log record
    (before any redaction: nothing should try to log a CPR number at all)."""
    WITNESS.assert_never_saw(
        [form for cpr in USED_CPRS for form in (cpr, f"{cpr[:6]}-{cpr[6:]}")])
