"""A citizen's export (the right of access): everything held about the person across
services, police information withheld in the same words for everyone, the export itself
on record, all or nothing. Through the gateway, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from services.platform.clock import local_today
from services.platform.settings import ServiceName

from ..support.builders import enrolled_citizen, make_contract, make_provider, place
from ..support.servers import ThreadedServer
from ..support.system import FACTORIES, System, bearer
from ..test_gateway import assert_problem

TODAY = local_today()


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


@pytest.fixture(scope="module")
def ctx(system: System) -> dict:
    admin = bearer(system.admin_token())
    with system.http() as http:
        provider = make_provider(http, admin)
        contract = make_contract(http, admin, provider["id"], starts_on="2025-01-01",
                                 ends_on=day(400))
        uncleared = make_contract(http, admin, provider["id"], starts_on="2025-01-01",
                                  ends_on=day(400), max_threat_level=0)
    return {"caseworker": bearer(system.token_for("caseworker")), "contract": contract,
            "uncleared": uncleared, "police": bearer(system.token_for("police")),
            "provider": bearer(system.token_for("provider", provider_id=provider["id"]))}


@pytest.fixture
def http(system: System):
    with system.http() as client:
        yield client


def ok(response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def export(http: httpx.Client, headers: dict, citizen_id: str) -> dict:
    response = http.get(f"/v1/citizens/{citizen_id}/export", headers=headers)
    body = ok(response)
    assert response.headers["cache-control"] == "no-store"
    return body


def a_full_case(http: httpx.Client, ctx: dict) -> dict:
    """A citizen with something of every kind: a change, an enrolment, a cap changed
    once, a placement, attendance with a correction, an absence case heard and decided,
    rights guidance, and a missed conversation."""
    cw = ctx["caseworker"]
    citizen = enrolled_citizen(http, cw, cap=37, readiness="aktivitetsparat")
    cid = citizen["id"]
    etag = http.get(f"/v1/citizens/{cid}", headers=cw).headers["etag"]
    ok(http.patch(f"/v1/citizens/{cid}", headers={**cw, "If-Match": etag},
                  json={"name": "Renamed Person"}))
    ok(http.put(f"/v1/hours-caps/{cid}", headers=cw,
                json={"weekly_hours": 30, "reason": "reassessed after a conversation"}))
    placement = ok(place(http, cw, cid, ctx["contract"]["id"], weekly_hours=20,
                         starts_on=day(-20), ends_on=day(30)), 201)
    pid = placement["id"]
    ok(http.post("/v1/attendance", headers=ctx["provider"], json={"records": [
        {"placement_id": pid, "date": day(-10), "status": "present", "hours": 6},
        {"placement_id": pid, "date": day(-9), "status": "absent_unexcused"},
        {"placement_id": pid, "date": day(-8), "status": "present", "hours": 5}]}))
    ok(http.post("/v1/attendance", headers=ctx["provider"], json={"records": [
        {"placement_id": pid, "date": day(-8), "status": "late", "hours": 4}]}))
    ok(http.post("/v1/rights-guidance", headers=cw, json={
        "citizen_id": cid, "given_on": day(-30), "channel": "digital_post"}), 201)
    case = ok(http.get("/v1/sanction-cases", params={"citizen_id": cid},
                       headers=cw))["items"][0]
    ok(http.post(f"/v1/sanction-cases/{case['id']}/hearing", headers=cw,
                 json={"sent_on": day(-5), "respond_by": day(9)}))
    ok(http.post(f"/v1/sanction-cases/{case['id']}/contact-attempts", headers=cw,
                 json={"at": f"{day(-4)}T10:00:00+01:00", "channel": "phone",
                       "reached": True}), 201)
    ok(http.post(f"/v1/sanction-cases/{case['id']}/decision", headers=cw, json={
        "outcome": "no_sanction", "reasonable_excuse": True, "deduction_days": 0,
        "justification": "Documented illness."}))
    conversation = ok(http.post("/v1/conversations", headers=cw, json={
        "citizen_id": cid, "scheduled_at": f"{day(-3)}T09:00:00+01:00"}), 201)
    ok(http.post(f"/v1/conversations/{conversation['id']}/outcome", headers=cw,
                 json={"attended": False}))
    return {**citizen, "placement_id": pid, "case_id": case["id"]}


def test_the_export_holds_everything_the_system_holds(http, ctx) -> None:
    person = a_full_case(http, ctx)
    body = export(http, ctx["caseworker"], person["id"])

    assert body["format"] == "sikkerby.citizen-export/1"
    citizen = body["citizen"]
    assert citizen["id"] == person["id"] and citizen["name"] == "Renamed Person"
    assert citizen["cpr_masked"] == person["cpr_masked"] and citizen["birth_date"]
    assert citizen["benefit"] == "kontanthjaelp" and citizen["readiness"] == "aktivitetsparat"
    assert citizen["status"] == "enrolled"
    assert [(c["field"], c["old_value"], c["new_value"]) for c in citizen["changes"]] == [
        ("name", "Test Person", "Renamed Person")]
    assert [(e["enrolled_on"], e["exited_on"]) for e in body["enrolments"]] == [
        ("2025-01-06", None)]

    activation = body["activation"]
    assert activation["hours_cap"]["weekly_hours"] == 30
    assert [h["weekly_hours"] for h in activation["hours_cap"]["history"]] == [37, 30]
    assert [p["id"] for p in activation["placements"]] == [person["placement_id"]]
    versions = [(a["date"], a["version"], a["status"], a["current"])
                for a in activation["attendance"]]
    assert versions == [(day(-10), 1, "present", True), (day(-9), 1, "absent_unexcused", True),
                        (day(-8), 1, "present", False), (day(-8), 2, "late", True)]
    cases = {c["kind"]: c for c in activation["sanction_cases"]}
    absence = cases["activation_absence"]
    assert absence["id"] == person["case_id"] and absence["status"] == "decided"
    assert absence["hearing_sent_on"] == day(-5)
    assert [a["channel"] for a in absence["contact_attempts"]] == ["phone"]
    assert [d["outcome"] for d in absence["decisions"]] == ["no_sanction"]
    assert cases["missed_conversation"]["status"] == "open"
    assert [c["status"] for c in activation["conversations"]] == ["missed"]
    assert [g["given_on"] for g in activation["rights_guidance"]] == [day(-30)]

    # Who looked and when, from both services, oldest first.
    log = body["access_log"]
    moments = [datetime.fromisoformat(e["at"]) for e in log]
    assert moments == sorted(moments)
    seen = {(e["service"], e["action"]) for e in log}
    assert {("citizens", "citizen.create"), ("citizens", "citizen.update"),
            ("citizens", "enrolment.create"), ("activation", "hours_cap.set"),
            ("activation", "placement.create"), ("activation", "attendance.report"),
            ("activation", "sanction_case.write")} <= seen
    assert {"caseworker", "provider"} <= {e["role"] for e in log}
    assert all(set(e) == {"at", "service", "actor", "role", "action", "purpose", "outcome"}
               for e in log)

    # Police information is never part of it, and every export says so.
    assert body["withheld"]["police_information"] == "may_be_withheld"
    assert "crime" in body["withheld"]["notice"]
    text = json.dumps(body)
    assert person["cpr"] not in text and person["cpr"][:6] + "-" + person["cpr"][6:] not in text


def test_the_export_itself_is_on_record_in_both_services(http, ctx, system: System) -> None:
    person = enrolled_citizen(http, ctx["caseworker"])
    export(http, ctx["caseworker"], person["id"])
    again = export(http, ctx["caseworker"], person["id"])
    exports = [e for e in again["access_log"] if e["action"] == "citizen.export"]
    assert [(e["service"], e["role"], e["purpose"], e["outcome"]) for e in exports] == [
        ("citizens", "caseworker", "subject_access", "success"),
        ("activation", "service", "subject_access", "success")]
    assert exports[1]["actor"] == "svc-citizens"


def test_police_information_is_withheld_without_a_trace(http, ctx) -> None:
    cw = ctx["caseworker"]
    plain = enrolled_citizen(http, cw)
    reported = enrolled_citizen(http, cw)
    affiliation, note = f"AFF-{uuid.uuid4().hex[:10]}", f"note {uuid.uuid4().hex}"
    response = http.post("/v1/threat-assessments", headers=ctx["police"], json={
        "cpr": reported["cpr"], "level": 4, "valid_from": day(-10), "valid_until": day(200),
        "affiliations": [affiliation], "measures": ["notify_police"], "notes": note})
    assert response.status_code == 202, response.text
    # A placement the measures forbid: refused, and on record as refused.
    assert_problem(place(http, cw, reported["id"], ctx["uncleared"]["id"],
                         starts_on=day(1), ends_on=day(20)), 409, "security_measures")
    # A caseworker's own lookup is shown; the security service's lookup is not.
    ok(http.post("/v1/citizens/lookup", headers=cw, json={"cpr": reported["cpr"]}))

    shown, other = export(http, cw, reported["id"]), export(http, cw, plain["id"])
    assert shown["withheld"] == other["withheld"]
    assert set(shown) == set(other) and set(shown["activation"]) == set(other["activation"])
    text = json.dumps(shown)
    for secret in (affiliation, note, "security_measures", "notify_police", "svc-security",
                   "threat", "police_upload"):
        assert secret not in text, secret
    lookups = [e for e in shown["access_log"] if e["action"] == "citizen.lookup"]
    assert [e["role"] for e in lookups] == ["caseworker"]
    refused = [e for e in shown["access_log"] if e["action"] == "placement.create"]
    assert [e["outcome"] for e in refused] == ["refused"]


def test_only_a_caseworker_exports(http, ctx, system: System) -> None:
    person = enrolled_citizen(http, ctx["caseworker"])
    url = f"/v1/citizens/{person['id']}/export"
    assert_problem(http.get(url), 401, "unauthorized")
    for role in ("team_lead", "analyst", "auditor", "security_officer", "admin", "police"):
        response = http.get(url, headers=bearer(system.token_for(role)))
        assert response.status_code == 403, (role, response.text)
    assert http.get(url, headers=ctx["provider"]).status_code == 403
    # A caseworker token asked for fewer scopes cannot export.
    client = system.new_client("caseworker")
    narrow = system.token(client["client_id"], client["client_secret"], scope="citizens:read")
    assert_problem(http.get(url, headers=bearer(narrow)), 403, "insufficient_scope")
    # The activation part is for the citizens service's own client only.
    record = f"/v1/activation-records/{person['id']}"
    assert http.get(record, headers=ctx["caseworker"]).status_code == 403
    other_service = bearer(system.token_for("service", scopes=["citizens:status"]))
    assert http.get(record, headers=other_service).status_code == 403
    service = bearer(system.token_for("service", scopes=["activation:export"]))
    assert http.get(url, headers=service).status_code == 403
    assert ok(http.get(record, headers=service))["citizen_id"] == person["id"]


def test_a_missing_citizen_is_404(http, ctx) -> None:
    assert_problem(http.get(f"/v1/citizens/{uuid.uuid4()}/export",
                            headers=ctx["caseworker"]), 404, "not_found")


def stand_in(answer: dict | None) -> FastAPI:
    """An activation service that answers every record request with `answer` (or 500)."""
    app = FastAPI()

    @app.get("/v1/activation-records/{citizen_id}")
    async def record(citizen_id: str) -> JSONResponse:
        if answer is None:
            return JSONResponse({"detail": "boom"}, status_code=500)
        return JSONResponse({**answer, "citizen_id": answer.get("citizen_id", citizen_id)})

    return app


def swap_activation(system: System, app: FastAPI | None) -> None:
    """Replace the activation service with `app`; None: none at all (down)."""
    running = system.servers.pop(ServiceName.activation, None)
    if running is not None:
        running.stop()
    if app is not None:
        system.servers[ServiceName.activation] = ThreadedServer(
            app, system.ports[ServiceName.activation]).start()


def restore_activation(system: System) -> None:
    running = system.servers.pop(ServiceName.activation, None)
    if running is not None:
        running.stop()
    app = FACTORIES[ServiceName.activation](
        system.service_settings(ServiceName.activation, system.shared))
    system.servers[ServiceName.activation] = ThreadedServer(
        app, system.ports[ServiceName.activation]).start()


EMPTY_PARTS = {"hours_cap": None, "placements": [], "attendance": [], "conversations": [],
               "sanction_cases": [], "rights_guidance": [], "access_log": []}


def test_without_the_activation_service_there_is_no_export(http, ctx, system: System) -> None:
    person = enrolled_citizen(http, ctx["caseworker"])
    url = f"/v1/citizens/{person['id']}/export"
    try:
        swap_activation(system, None)
        assert_problem(http.get(url, headers=ctx["caseworker"]), 503, "service_unavailable")
        swap_activation(system, stand_in(None))  # up, but failing
        assert_problem(http.get(url, headers=ctx["caseworker"]), 503, "service_unavailable")
        partial = {k: v for k, v in EMPTY_PARTS.items() if k != "sanction_cases"}
        swap_activation(system, stand_in(partial))  # an answer with a part missing
        assert_problem(http.get(url, headers=ctx["caseworker"]), 503, "service_unavailable")
        swap_activation(system, stand_in({**EMPTY_PARTS, "citizen_id": str(uuid.uuid4())}))
        assert_problem(http.get(url, headers=ctx["caseworker"]), 503, "service_unavailable")
        swap_activation(system, stand_in(EMPTY_PARTS))  # a complete (empty) answer
        assert export(http, ctx["caseworker"], person["id"])["activation"]["placements"] == []
    finally:
        restore_activation(system)
    body = export(http, ctx["caseworker"], person["id"])
    # The refused attempts are on record too.
    outcomes = [e["outcome"] for e in body["access_log"]
                if e["service"] == "citizens" and e["action"] == "citizen.export"]
    assert outcomes[:4] == ["refused:service_unavailable"] * 4 and outcomes[4] == "success"
