"""Police uploads through the gateway, on SQLite and PostgreSQL: the same answer for known
and unknown persons, referrals, idempotency, validation, encryption at rest, audit, and
no CPR number in any answer or log line."""

from __future__ import annotations

import concurrent.futures
import itertools
import uuid
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import Uuid, bindparam, text

from services.platform.db import make_engine
from services.platform.settings import ServiceName

from ..support.builders import make_cpr, register
from ..support.leaks import LeakWitness
from ..support.servers import ThreadedServer
from ..support.system import FACTORIES, System, bearer
from ..test_gateway import assert_problem
from .support import assessment, code, constraints, days, note, upload

USED_CPRS: set[str] = set()
_births = itertools.count()
SECURITY_TABLES = ("threat_subject", "threat_assessment", "affiliation_conflict", "referral",
                   "audit_entry", "idempotency_key")


WITNESS = LeakWitness()


@pytest.fixture(scope="module", autouse=True)
def collect_logs():
    with WITNESS.listening():
        yield


@pytest.fixture(scope="module")
def http(system: System):
    with WITNESS.client(system.url, timeout=60) as client:
        yield client


def known(http: httpx.Client, callers) -> dict:
    person = register(http, callers.caseworker)
    USED_CPRS.add(person["cpr"])
    return person


def unknown() -> str:
    """A CPR number the citizens service does not know, with a birth date of its own (so
    its referral is told apart by `cpr_masked`)."""
    cpr = make_cpr(date(1950, 1, 1) + timedelta(days=next(_births) * 13))
    USED_CPRS.add(cpr)
    return cpr


def raw_rows(system: System, *tables: str) -> dict[str, list]:
    engine = make_engine(system.settings.database_url(ServiceName.security))
    try:
        with engine.connect() as connection:
            return {t: [tuple(r) for r in connection.execute(text(f"SELECT * FROM {t}"))]  # noqa: S608
                    for t in tables}
    finally:
        engine.dispose()


def referrals(http: httpx.Client, headers: dict, status: str = "open") -> list[dict]:
    items, cursor = [], None
    while True:
        params = {"status": status, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = http.get("/v1/referrals", headers=headers, params=params)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def history(http: httpx.Client, callers, **params) -> list[dict]:
    response = http.get("/v1/threat-assessments", headers=callers.security_officer,
                        params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]


# The police's answer ---------------------------------------------------------------------
def test_known_and_unknown_persons_get_the_same_answer(http, callers) -> None:
    person = known(http, callers)
    stranger = unknown()
    answers = []
    for cpr in (person["cpr"], f"{stranger[:6]}-{stranger[6:]}"):
        response = http.post("/v1/threat-assessments", headers=callers.police,
                             json=assessment(cpr, affiliations=[code()], notes=note()))
        answers.append(response)
    assert [r.status_code for r in answers] == [202, 202]
    assert [set(r.json()) for r in answers] == [{"id"}, {"id"}]
    assert [r.headers["content-type"] for r in answers] == ["application/json"] * 2
    assert [len(r.content) for r in answers][0] == len(answers[1].content)
    # The known person's assessment is theirs; the stranger is a referral, nothing more.
    known_id, stranger_id = (r.json()["id"] for r in answers)
    assert [a["id"] for a in history(http, callers, citizen_id=person["id"])] == [known_id]
    open_referrals = referrals(http, callers.caseworker)
    mine = [r for r in open_referrals if r["cpr_masked"] == f"{stranger[:6]}-XXXX"]
    assert len(mine) == 1
    assert set(mine[0]) == {"id", "cpr_masked", "status", "citizen_id", "reported_at",
                            "last_reported_at", "resolved_at"}
    assert (mine[0]["status"], mine[0]["citizen_id"]) == ("open", None)
    view = http.get(f"/v1/threat-assessments/{stranger_id}",
                    headers=callers.security_officer).json()
    assert (view["citizen_id"], view["referral_id"]) == (None, mine[0]["id"])
    # Never an enrolment: the citizens service still does not know the stranger.
    assert_problem(http.post("/v1/citizens/lookup", headers=callers.caseworker,
                             json={"cpr": stranger}), 404, "not_found")
    assert not [r for r in open_referrals if r["cpr_masked"] == f"{person['cpr'][:6]}-XXXX"
                and r["citizen_id"] == person["id"]]


def test_a_person_reported_again_stays_one_referral(http, callers) -> None:
    stranger = unknown()
    first = upload(http, callers.police, assessment(stranger, level=2))
    before = [r for r in referrals(http, callers.security_officer)
              if r["cpr_masked"] == f"{stranger[:6]}-XXXX"]
    second = upload(http, callers.police_b, assessment(stranger, level=3))
    after = [r for r in referrals(http, callers.security_officer)
             if r["cpr_masked"] == f"{stranger[:6]}-XXXX"]
    assert len(before) == len(after) == 1 and before[0]["id"] == after[0]["id"]
    assert after[0]["last_reported_at"] > before[0]["last_reported_at"]
    assert [a["id"] for a in history(http, callers, referral_id=after[0]["id"])] == [
        first, second]


def test_a_person_reported_before_registration_is_constrained_from_registration_on(
        http, callers) -> None:
    stranger = unknown()
    upload(http, callers.police, assessment(stranger, level=4))
    other = unknown()
    upload(http, callers.police, assessment(other, level=1))
    referral = next(r for r in referrals(http, callers.caseworker)
                    if r["cpr_masked"] == f"{stranger[:6]}-XXXX")
    # Registering the person tells the security service, in the same transaction: the
    # police's assessment constrains the citizen at once, and the referral is resolved.
    person = register(http, callers.caseworker, cpr=stranger)
    assert constraints(http, callers.caseworker, person["id"])["max_group_size"] == 1
    resolved = next(r for r in referrals(http, callers.caseworker, "resolved")
                    if r["id"] == referral["id"])
    assert (resolved["status"], resolved["citizen_id"]) == ("resolved", person["id"])
    assert resolved["resolved_at"] is not None
    assert referral["id"] not in {r["id"] for r in referrals(http, callers.caseworker)}
    assert referral["id"] in {r["id"] for r in referrals(http, callers.caseworker, "all")}
    # Nothing left for a re-check to find; the other person is still unknown.
    checked = http.post("/v1/referrals/recheck", headers=callers.caseworker)
    assert checked.status_code == 200, checked.text
    assert checked.json()["resolved"] == 0 and checked.json()["still_open"] >= 1
    # A person the police never reported: the registration links nothing.
    plain = known(http, callers)
    assert constraints(http, callers.caseworker, plain["id"])["measures"] == []

    # The police's next upload after the registration applies too.
    later = unknown()
    upload(http, callers.police, assessment(later, level=3))
    registered = register(http, callers.caseworker, cpr=later)
    upload(http, callers.police, assessment(later, level=3, measures=["notify_police"]))
    assert constraints(http, callers.caseworker, registered["id"])["measures"] == [
        "small_group", "two_staff", "notify_police"]
    assert len(history(http, callers, citizen_id=registered["id"])) == 2


def test_the_registration_announcement_is_the_citizens_services_alone(
        http, callers, system) -> None:
    """Only the citizens service's narrow scope may link a person to a police report,
    and its answer is the same whether or not the police reported the person."""
    stranger = unknown()
    upload(http, callers.police, assessment(stranger, level=4))
    body = {"cpr": stranger, "citizen_id": str(uuid.uuid4())}
    for who in (callers.caseworker, callers.security_officer, callers.police):
        refused = http.post("/v1/referrals/registrations", json=body, headers=who)
        assert refused.status_code == 403, refused.text
    assert next(r for r in referrals(http, callers.caseworker)
                if r["cpr_masked"] == f"{stranger[:6]}-XXXX")["status"] == "open"
    link = bearer(system.token_for("service", scopes=["threats:link"]))
    for cpr in (stranger, unknown()):
        answer = http.post("/v1/referrals/registrations", json={
            "cpr": cpr, "citizen_id": str(uuid.uuid4())}, headers=link)
        assert (answer.status_code, answer.content) == (204, b"")


# Idempotency -------------------------------------------------------------------------------
def test_the_same_key_and_body_give_the_first_answer_again(http, callers) -> None:
    person = known(http, callers)
    body = assessment(person["cpr"], affiliations=[code()])
    key = f"upload-{uuid.uuid4()}"
    first = upload(http, callers.police, body, key=key)
    assert upload(http, callers.police, body, key=key) == first
    assert [a["id"] for a in history(http, callers, citizen_id=person["id"])] == [first]
    assert_problem(http.post("/v1/threat-assessments", json={**body, "level": 4},
                             headers={**callers.police, "Idempotency-Key": key}),
                   409, "idempotency_key_reused")
    # Keys belong to a client: another police client's same key is another request.
    assert upload(http, callers.police_b, body, key=key) != first
    assert len(history(http, callers, citizen_id=person["id"])) == 2
    assert_problem(http.post("/v1/threat-assessments", json=body,
                             headers={**callers.police, "Idempotency-Key": "has space"}),
                   422, "validation_error")
    # An unknown person's upload replays just the same.
    stranger_body = assessment(unknown())
    again = f"upload-{uuid.uuid4()}"
    assert upload(http, callers.police, stranger_body, key=again) == upload(
        http, callers.police, stranger_body, key=again)


def test_conflicts_honour_idempotency_keys(http, callers) -> None:
    body = {"affiliation_a": code(), "affiliation_b": code(), "valid_from": days(0),
            "valid_until": days(30)}
    key = f"conflict-{uuid.uuid4()}"
    headers = {**callers.police, "Idempotency-Key": key}
    first = http.post("/v1/conflicts", json=body, headers=headers)
    again = http.post("/v1/conflicts", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json() == again.json()
    assert_problem(http.post("/v1/conflicts", json={**body, "valid_until": days(31)},
                             headers=headers), 409, "idempotency_key_reused")
    listed = http.get("/v1/conflicts", headers=callers.security_officer,
                      params={"limit": 500}).json()["items"]
    assert [c["id"] for c in listed if c["affiliation_a"] == body["affiliation_a"]] == [
        first.json()["id"]]


def test_concurrent_retries_with_one_key_store_one_assessment(system: System, callers) -> None:
    cpr = unknown()
    body = assessment(cpr, level=2)
    key = f"race-{uuid.uuid4()}"

    def attempt(_: int) -> httpx.Response:
        with httpx.Client(base_url=system.url, timeout=60) as client:
            return client.post("/v1/threat-assessments", json=body,
                               headers={**callers.police, "Idempotency-Key": key})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(attempt, range(16)))
    WITNESS.bodies.extend(r.text for r in responses)
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["id"] for r in responses}) == 1


def test_concurrent_uploads_for_one_new_person_make_one_referral(system: System, http,
                                                                 callers) -> None:
    cpr = unknown()

    def attempt(i: int) -> httpx.Response:
        with httpx.Client(base_url=system.url, timeout=60) as client:
            return client.post("/v1/threat-assessments", headers=callers.police,
                               json=assessment(cpr, level=i % 5))

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(attempt, range(16)))
    WITNESS.bodies.extend(r.text for r in responses)
    assert {r.status_code for r in responses} == {202}, [r.text for r in responses]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 16
    mine = [r for r in referrals(http, callers.security_officer)
            if r["cpr_masked"] == f"{cpr[:6]}-XXXX"]
    assert len(mine) == 1
    assert {a["id"] for a in history(http, callers, referral_id=mine[0]["id"])} == ids


# Validation --------------------------------------------------------------------------------
@pytest.mark.parametrize(("change", "where"), [
    ({"level": 5}, "level"),
    ({"level": -1}, "level"),
    ({"level": "3"}, "level"),
    ({"valid_until": days(-10)}, None),  # not after valid_from
    ({"valid_from": days(0), "valid_until": days(0)}, None),
    ({"valid_from": "2026-01-01", "valid_until": "2027-01-02"}, None),  # over a year
    ({"valid_from": "2026-01-01T00:00:00"}, "valid_from"),
    ({"measures": ["armed_guard"]}, "measures"),
    ({"measures": ["two_staff", "two_staff"]}, "measures"),
    ({"affiliations": ["LTF", "ltf"]}, "affiliations"),
    ({"affiliations": ["has space"]}, "affiliations"),
    ({"affiliations": ["x" * 65]}, "affiliations"),
    ({"affiliations": [f"A{i}" for i in range(51)]}, "affiliations"),
    ({"notes": "x" * 10_001}, "notes"),
    ({"cpr": "3213901234"}, "cpr"),
    ({"cpr": "12345"}, "cpr"),
    ({"benefit": "kontanthjaelp"}, "benefit"),
])
def test_invalid_uploads_are_422_without_echo(http, callers, change, where) -> None:
    cpr = make_cpr(date(1990, 1, 1))
    USED_CPRS.add(cpr)
    body = {**assessment(cpr), **change}
    response = http.post("/v1/threat-assessments", headers=callers.police, json=body)
    problem = assert_problem(response, 422, "validation_error")
    if where:
        assert problem["errors"][0]["loc"][:2] == ["body", where]
    assert cpr not in response.text and str(body["cpr"]) not in response.text


def test_the_validity_may_span_exactly_one_year(http, callers) -> None:
    upload(http, callers.police, assessment(unknown(), valid_from="2026-01-01",
                                            valid_until="2027-01-01"))
    upload(http, callers.police, assessment(unknown(), valid_from="2028-02-29",
                                            valid_until="2029-02-28"))


@pytest.mark.parametrize("change", [
    {"affiliation_a": ""}, {"affiliation_b": None}, {"valid_until": days(-20)},
    {"valid_until": days(400)}, {"extra": 1},
])
def test_invalid_conflicts_are_422(http, callers, change) -> None:
    body = {"affiliation_a": "A1", "affiliation_b": "B1", "valid_from": days(-10),
            "valid_until": days(10), **change}
    assert_problem(http.post("/v1/conflicts", headers=callers.police, json=body), 422,
                   "validation_error")


# At rest, in the audit log, in answers and logs ---------------------------------------------
def test_affiliations_notes_and_cpr_are_never_stored_in_clear(system: System, http,
                                                              callers) -> None:
    person, stranger = known(http, callers), unknown()
    secrets = [code("AT-REST"), code("AT-REST"), note(), note()]
    upload(http, callers.police, assessment(person["cpr"], affiliations=[secrets[0]],
                                            notes=secrets[2]), key=f"k-{uuid.uuid4()}")
    upload(http, callers.police, assessment(stranger, affiliations=[secrets[1]],
                                            notes=secrets[3]))
    conflict_a, conflict_b = code("AT-REST"), code("AT-REST")
    http.post("/v1/conflicts", headers=callers.police, json={
        "affiliation_a": conflict_a, "affiliation_b": conflict_b, "valid_from": days(0),
        "valid_until": days(10)})
    secrets += [conflict_a, conflict_b]
    dump = repr(raw_rows(system, *SECURITY_TABLES))
    for secret in secrets:
        for form in (secret, secret.upper(), secret.lower()):
            assert form not in dump
    for cpr in USED_CPRS:
        assert cpr not in dump and f"{cpr[:6]}-{cpr[6:]}" not in dump
    # ... and the security coordinator reads them decrypted.
    listed = history(http, callers, citizen_id=person["id"])
    assert listed[-1]["affiliations"] == [secrets[0]] and listed[-1]["notes"] == secrets[2]


def test_every_upload_and_read_is_audited(system: System, http, callers) -> None:
    person = known(http, callers)
    assessment_id = upload(http, callers.police, assessment(person["cpr"]))
    http.get(f"/v1/threat-assessments/{assessment_id}", headers=callers.security_officer)
    constraints(http, callers.caseworker, person["id"])
    http.post("/v1/group-checks", headers=callers.service, json={"citizen_id": person["id"]})
    engine = make_engine(system.settings.database_url(ServiceName.security))
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT action, role, purpose, outcome, request_id FROM audit_entry "
                "WHERE citizen_id = :c ORDER BY seq").bindparams(bindparam("c", type_=Uuid)),
                {"c": uuid.UUID(person["id"])}).all()
    finally:
        engine.dispose()
    assert [(r.action, r.role, r.purpose, r.outcome) for r in rows] == [
        ("threat_assessment.create", "police", "police_upload", "success"),
        ("threat_assessment.read", "security_officer", "security_coordination", "success"),
        ("constraints.read", "caseworker", "safety_measures", "success"),
        ("group_check", "service", "placement_check", "success"),
    ]
    assert all(r.request_id and r.request_id != "-" for r in rows)


def test_the_audit_chain_stays_intact(system: System) -> None:
    from services.platform.audit import verify_chain
    from services.platform.db import new_session

    engine = make_engine(system.settings.database_url(ServiceName.security))
    try:
        with new_session(engine) as session:
            intact, count = verify_chain(session)
    finally:
        engine.dispose()
    assert intact and count > 10


def test_no_cpr_in_any_response_or_log() -> None:
    """Runs last in this module: every body this module saw, and every log record."""
    WITNESS.assert_never_saw(
        [form for cpr in USED_CPRS for form in (cpr, f"{cpr[:6]}-{cpr[6:]}")])


def test_no_registration_while_the_security_service_cannot_be_told(
        http, callers, system: System) -> None:
    """Fail closed: a citizen is never registered unseen by the security service."""
    stranger = unknown()
    upload(http, callers.police, assessment(stranger, level=4))
    service = ServiceName.security
    system.servers[service].stop()
    try:
        refused = http.post("/v1/citizens", headers=callers.caseworker, json={
            "cpr": stranger, "name": "Test Person", "benefit": "kontanthjaelp",
            "readiness": "jobparat"})
        assert_problem(refused, 503, "service_unavailable")
    finally:
        app = FACTORIES[service](system.service_settings(service, system.shared))
        system.servers[service] = ThreadedServer(app, system.ports[service]).start()
    lookup = http.post("/v1/citizens/lookup", json={"cpr": stranger},
                       headers=callers.caseworker)
    assert lookup.status_code == 404, "nothing was registered"
    person = register(http, callers.caseworker, cpr=stranger)
    assert constraints(http, callers.caseworker, person["id"])["max_group_size"] == 1
