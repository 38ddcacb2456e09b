"""Sanction cases decided by people, after a hearing, within the law's preconditions;
rights guidance; weekly conversations. Through the gateway, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from services.activation.sanctions import decide_by
from services.activation.weeks import monday_of, week_label
from services.platform.clock import local_today

from ..support.builders import enrolled_citizen, make_contract, make_provider, place
from ..support.system import System, bearer
from ..test_gateway import assert_problem

TODAY = local_today()
# The absence the cases are about: far enough back for a hearing whose time to respond
# has passed (a sanction must wait for it).
EVENT = TODAY - timedelta(days=3)


@pytest.fixture(scope="module")
def ctx(system: System) -> dict:
    admin = bearer(system.admin_token())
    with system.http() as http:
        provider = make_provider(http, admin)
        contract = make_contract(http, admin, provider["id"], starts_on="2025-01-01",
                                 ends_on=(TODAY + timedelta(days=400)).isoformat())
    return {"caseworker": bearer(system.token_for("caseworker")), "contract": contract,
            "provider_token": bearer(system.token_for("provider",
                                                      provider_id=provider["id"]))}


def absence_case(http, ctx, *, readiness: str = "jobparat", day: date = EVENT) -> dict:
    cw = ctx["caseworker"]
    citizen = enrolled_citizen(http, cw, readiness=readiness, enrolled_on="2025-01-06")
    placement = place(http, cw, citizen["id"], ctx["contract"]["id"], weekly_hours=10,
                      starts_on=(day - timedelta(days=7)).isoformat(),
                      ends_on=(TODAY + timedelta(days=30)).isoformat())
    assert placement.status_code == 201, placement.text
    reported = http.post("/v1/attendance", headers=ctx["provider_token"], json={"records": [
        {"placement_id": placement.json()["id"], "date": day.isoformat(),
         "status": "absent_unexcused"}]})
    assert reported.status_code == 200, reported.text
    cases = http.get("/v1/sanction-cases", params={"citizen_id": citizen["id"]},
                     headers=cw).json()["items"]
    assert len(cases) == 1
    return cases[0]


def guidance(http, ctx, citizen_id: str, given_on: date) -> None:
    response = http.post("/v1/rights-guidance", headers=ctx["caseworker"], json={
        "citizen_id": citizen_id, "given_on": given_on.isoformat(), "channel": "digital_post"})
    assert response.status_code == 201, response.text


def hearing(http, ctx, case: dict, respond_by: date | None = None) -> None:
    """Sent on the day of the event; by default the citizen's time to respond has passed."""
    sent_on = date.fromisoformat(case["occurred_on"])
    response = http.post(f"/v1/sanction-cases/{case['id']}/hearing", headers=ctx["caseworker"],
                         json={"sent_on": sent_on.isoformat(), "respond_by": (
                             respond_by or sent_on + timedelta(days=1)).isoformat()})
    assert response.status_code == 200, response.text


SANCTION = {"outcome": "sanction", "reasonable_excuse": False, "deduction_days": 1,
            "justification": "Absent without a reasonable excuse after a hearing."}


def test_the_case_shows_its_deadline(http, ctx) -> None:
    case = absence_case(http, ctx)
    assert case["decide_by"] == decide_by(EVENT).isoformat()
    assert case["status"] == "open" and case["kind"] == "activation_absence"


def test_hearing_comes_before_any_decision(http, ctx) -> None:
    case = absence_case(http, ctx)
    url = f"/v1/sanction-cases/{case['id']}/decision"
    no = {"outcome": "no_sanction", "reasonable_excuse": True, "deduction_days": 0,
          "justification": "Documented illness."}
    assert_problem(http.post(url, headers=ctx["caseworker"], json=no), 409, "hearing_required")
    assert_problem(http.post(url, headers=ctx["caseworker"], json=SANCTION), 409,
                   "hearing_required")
    hearing(http, ctx, case)
    decided = http.post(url, headers=ctx["caseworker"], json=no)
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "decided"


def test_no_sanction_while_the_citizen_may_still_respond(http, ctx) -> None:
    case = absence_case(http, ctx)
    guidance(http, ctx, case["citizen_id"], EVENT - timedelta(days=10))
    hearing(http, ctx, case, respond_by=TODAY)  # the citizen may answer until today's end
    url = f"/v1/sanction-cases/{case['id']}/decision"
    refused = assert_problem(http.post(url, headers=ctx["caseworker"], json=SANCTION), 409,
                             "hearing_required")
    assert TODAY.isoformat() in refused["detail"]
    no = {"outcome": "no_sanction", "reasonable_excuse": True, "deduction_days": 0,
          "justification": "The citizen's answer showed an excuse.",
          "legal_basis": "aktivloven § 36"}
    decided = http.post(url, headers=ctx["caseworker"], json=no)
    assert decided.status_code == 200, decided.text
    assert decided.json()["decisions"][0]["legal_basis"] == "aktivloven § 36"


def test_guidance_must_be_in_force_on_the_day(http, ctx) -> None:
    case = absence_case(http, ctx)
    hearing(http, ctx, case)
    url = f"/v1/sanction-cases/{case['id']}/decision"
    assert_problem(http.post(url, headers=ctx["caseworker"], json=SANCTION), 409,
                   "guidance_missing")
    # Given after the event, or expired before it: still missing.
    guidance(http, ctx, case["citizen_id"], TODAY)
    guidance(http, ctx, case["citizen_id"], EVENT - timedelta(days=200))
    assert_problem(http.post(url, headers=ctx["caseworker"], json=SANCTION), 409,
                   "guidance_missing")
    guidance(http, ctx, case["citizen_id"], EVENT - timedelta(days=100))
    decided = http.post(url, headers=ctx["caseworker"], json=SANCTION)
    assert decided.status_code == 200, decided.text
    decision = decided.json()["decisions"][0]
    assert decision["outcome"] == "sanction" and decision["deduction_days"] == 1
    assert decision["decided_by"] and decision["justification"]


def test_activity_ready_citizens_must_be_sought_first(http, ctx) -> None:
    case = absence_case(http, ctx, readiness="aktivitetsparat")
    guidance(http, ctx, case["citizen_id"], EVENT - timedelta(days=10))
    hearing(http, ctx, case)
    url = f"/v1/sanction-cases/{case['id']}/decision"
    assert_problem(http.post(url, headers=ctx["caseworker"], json=SANCTION), 409,
                   "contact_attempt_required")
    attempt = http.post(f"/v1/sanction-cases/{case['id']}/contact-attempts",
                        headers=ctx["caseworker"], json={
                            "at": datetime.now(UTC).isoformat(), "channel": "phone",
                            "reached": False})
    assert attempt.status_code == 201, attempt.text
    assert http.post(url, headers=ctx["caseworker"], json=SANCTION).status_code == 200


def test_no_sanction_after_the_deadline(http, ctx) -> None:
    old_day = date(2025, 3, 5)  # decide_by was 30 June 2025
    case = absence_case(http, ctx, day=old_day)
    assert case["decide_by"] == "2025-06-30"
    guidance(http, ctx, case["citizen_id"], old_day - timedelta(days=5))
    hearing(http, ctx, case)
    url = f"/v1/sanction-cases/{case['id']}/decision"
    assert_problem(http.post(url, headers=ctx["caseworker"], json=SANCTION), 409,
                   "deadline_passed")
    no = {"outcome": "no_sanction", "reasonable_excuse": False, "deduction_days": 0,
          "justification": "Too late to deduct."}
    assert http.post(url, headers=ctx["caseworker"], json=no).status_code == 200


def test_a_decision_is_never_changed_only_replaced(http, ctx) -> None:
    case = absence_case(http, ctx)
    guidance(http, ctx, case["citizen_id"], EVENT - timedelta(days=10))
    hearing(http, ctx, case)
    url = f"/v1/sanction-cases/{case['id']}/decision"
    first = http.post(url, headers=ctx["caseworker"], json=SANCTION).json()["decisions"][0]
    fix = {**SANCTION, "deduction_days": 2, "justification": "Two days, not one."}
    assert_problem(http.post(url, headers=ctx["caseworker"], json=fix), 409,
                   "decision_not_current")
    replaced = http.post(url, headers=ctx["caseworker"], json={**fix, "replaces": first["id"]})
    assert replaced.status_code == 200, replaced.text
    decisions = replaced.json()["decisions"]
    assert [(d["deduction_days"], d["replaces"]) for d in decisions] == [
        (1, None), (2, first["id"])]
    assert_problem(http.post(url, headers=ctx["caseworker"],
                             json={**fix, "replaces": first["id"]}), 409,
                   "decision_not_current")


def test_decision_bodies_are_checked(http, ctx) -> None:
    case = absence_case(http, ctx)
    url = f"/v1/sanction-cases/{case['id']}/decision"
    for bad in ({**SANCTION, "deduction_days": 0}, {**SANCTION, "reasonable_excuse": True},
                {"outcome": "no_sanction", "reasonable_excuse": False, "deduction_days": 3,
                 "justification": "x"}, {**SANCTION, "justification": " "},
                {**SANCTION, "outcome": "warning"}):
        assert_problem(http.post(url, headers=ctx["caseworker"], json=bad), 422,
                       "validation_error")
    bad_hearing = http.post(f"/v1/sanction-cases/{case['id']}/hearing",
                            headers=ctx["caseworker"],
                            json={"sent_on": "2026-01-10", "respond_by": "2026-01-10"})
    assert_problem(bad_hearing, 422, "validation_error")


def test_case_list_is_sorted_by_deadline_and_filtered(http, ctx) -> None:
    absence_case(http, ctx, day=EVENT)
    absence_case(http, ctx, day=date(2025, 3, 5))
    items = http.get("/v1/sanction-cases", params={"status": "open", "limit": 500},
                     headers=ctx["caseworker"]).json()["items"]
    deadlines = [c["decide_by"] for c in items]
    assert deadlines == sorted(deadlines) and all(c["status"] == "open" for c in items)
    soon = http.get("/v1/sanction-cases", params={"decide_by_before": "2025-12-31",
                                                  "limit": 500},
                    headers=ctx["caseworker"]).json()["items"]
    assert soon and all(c["decide_by"] <= "2025-12-31" for c in soon)


def test_roles_on_sanction_cases(system: System, http, ctx) -> None:
    case = absence_case(http, ctx)
    lead = bearer(system.token_for("team_lead"))
    assert http.get(f"/v1/sanction-cases/{case['id']}", headers=lead).status_code == 200
    assert_problem(http.post(f"/v1/sanction-cases/{case['id']}/hearing", headers=lead,
                             json={"sent_on": "2026-01-01", "respond_by": "2026-01-15"}),
                   403, "insufficient_scope")
    assert_problem(http.get("/v1/sanction-cases", headers=ctx["provider_token"]), 403,
                   "insufficient_scope")
    police = bearer(system.token_for("police"))
    assert_problem(http.get("/v1/sanction-cases", headers=police), 403, "insufficient_scope")


def test_writes_about_an_unknown_citizen_are_404(http, ctx) -> None:
    nobody = str(uuid.uuid4())
    cw = ctx["caseworker"]
    for method, path, body in (
            ("PUT", f"/v1/hours-caps/{nobody}", {"weekly_hours": 10, "reason": "x"}),
            ("POST", "/v1/rights-guidance", {"citizen_id": nobody,
                                             "given_on": TODAY.isoformat(),
                                             "channel": "letter"}),
            ("POST", "/v1/conversations", {"citizen_id": nobody,
                                           "scheduled_at": "2026-11-24T09:00:00+01:00"})):
        assert_problem(http.request(method, path, json=body, headers=cw), 404, "not_found")
    assert_problem(http.get(f"/v1/hours-caps/{nobody}", headers=cw), 404, "not_found")


def test_guidance_is_recorded_when_given(http, ctx) -> None:
    citizen = enrolled_citizen(http, ctx["caseworker"])
    future = (TODAY + timedelta(days=1)).isoformat()
    assert_problem(http.post("/v1/rights-guidance", headers=ctx["caseworker"], json={
        "citizen_id": citizen["id"], "given_on": future, "channel": "letter"}),
        422, "validation_error")
    guidance(http, ctx, citizen["id"], date(2026, 1, 15))
    listed = http.get("/v1/rights-guidance", params={"citizen_id": citizen["id"]},
                      headers=ctx["caseworker"]).json()
    assert [(g["given_on"], g["valid_until"]) for g in listed] == [("2026-01-15",
                                                                    "2026-07-14")]


# Conversations -----------------------------------------------------------------------------
def due_items(http, headers: dict[str, str], monday: date, limit: int = 500) -> list[dict]:
    """Every page of the week's due list."""
    items: list[dict] = []
    cursor = None
    while True:
        response = http.get("/v1/conversations/due", headers=headers, params={
            "week": week_label(monday), "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


def test_the_due_list_comes_in_pages(http, ctx) -> None:
    cw = ctx["caseworker"]
    for _ in range(3):
        enrolled_citizen(http, cw, enrolled_on="2025-01-06")
    monday = monday_of(TODAY) - timedelta(days=7)
    whole = due_items(http, cw, monday)
    assert len(whole) >= 3
    first = http.get("/v1/conversations/due", headers=cw,
                     params={"week": week_label(monday), "limit": 2}).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    paged = due_items(http, cw, monday, limit=2)
    assert [i["citizen_id"] for i in paged] == [i["citizen_id"] for i in whole]
    assert len({i["citizen_id"] for i in paged}) == len(paged)
    assert [i["citizen_id"] for i in paged] == sorted(i["citizen_id"] for i in paged)
    assert_problem(http.get("/v1/conversations/due", headers=cw, params={
        "week": week_label(monday), "cursor": "not-a-cursor"}), 422, "invalid_cursor")


def test_conversation_states_across_weeks(http, ctx) -> None:
    cw = ctx["caseworker"]
    idle = enrolled_citizen(http, cw, enrolled_on="2025-01-06")
    busy = enrolled_citizen(http, cw, enrolled_on="2025-01-06")
    last_week = monday_of(TODAY) - timedelta(days=7)
    two_weeks_ago = last_week - timedelta(days=7)
    assert place(http, cw, busy["id"], ctx["contract"]["id"], weekly_hours=10,
                 starts_on=last_week.isoformat(),
                 ends_on=(last_week + timedelta(days=6)).isoformat()).status_code == 201

    def due(monday: date) -> dict[str, str]:
        return {i["citizen_id"]: i["status"] for i in due_items(http, cw, monday)}

    assert due(last_week)[idle["id"]] == "due"
    assert busy["id"] not in due(last_week)  # in activation that week
    assert due(two_weeks_ago)[busy["id"]] == "due"

    def book(monday: date) -> dict:
        at = datetime.combine(monday + timedelta(days=1), datetime.min.time(),
                              tzinfo=UTC).replace(hour=9)
        response = http.post("/v1/conversations", headers=cw,
                             json={"citizen_id": idle["id"], "scheduled_at": at.isoformat()})
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "booked"
        return response.json()

    held = book(two_weeks_ago)
    missed = book(last_week)
    assert due(last_week)[idle["id"]] == "booked"
    assert http.post(f"/v1/conversations/{held['id']}/outcome", headers=cw,
                     json={"attended": True}).json()["status"] == "held"
    assert http.post(f"/v1/conversations/{missed['id']}/outcome", headers=cw,
                     json={"attended": False}).json()["status"] == "missed"
    assert due(two_weeks_ago)[idle["id"]] == "held"
    assert due(last_week)[idle["id"]] == "missed"
    assert_problem(http.post(f"/v1/conversations/{missed['id']}/outcome", headers=cw,
                             json={"attended": True}), 409, "outcome_recorded")
    # An outcome only once the conversation's time has come: no case for a future miss.
    ahead = book(monday_of(TODAY) + timedelta(days=14))
    refused = assert_problem(http.post(f"/v1/conversations/{ahead['id']}/outcome",
                                       headers=cw, json={"attended": False}),
                             422, "validation_error")
    assert [e["loc"] for e in refused["errors"]] == [["body", "attended"]]
    cases = http.get("/v1/sanction-cases", params={"citizen_id": idle["id"]},
                     headers=cw).json()["items"]
    assert [(c["kind"], c["status"], c["conversation_id"]) for c in cases] == [
        ("missed_conversation", "open", missed["id"])]
    refused = assert_problem(http.get("/v1/conversations/due", params={"week": "2026-W60"},
                                      headers=cw), 422, "validation_error")
    assert [e["loc"] for e in refused["errors"]] == [["query", "week"]]
