"""Hours caps, cohorts and placements through the gateway, on SQLite and PostgreSQL,
with the real citizens, providers and security services behind it."""

from __future__ import annotations

import concurrent.futures
import contextlib
import uuid
from datetime import date, timedelta

import httpx
import pytest

from services.platform.clock import local_today

from ..support.builders import enrolled_citizen, make_contract, make_provider, place, register
from ..support.holds import group_checks_held
from ..support.system import System, bearer
from ..test_gateway import assert_problem


@pytest.fixture(scope="module")
def ctx(system: System) -> dict:
    admin = bearer(system.admin_token())
    caseworker = bearer(system.token_for("caseworker"))
    with system.http() as http:
        provider = make_provider(http, admin)
        contract = make_contract(http, admin, provider["id"])
    return {"admin": admin, "caseworker": caseworker, "provider": provider,
            "contract": contract}


# Hours caps ---------------------------------------------------------------------------
def test_hours_cap_with_history(system: System, http, ctx) -> None:
    cw = ctx["caseworker"]
    citizen = enrolled_citizen(http, cw, cap=None)
    url = f"/v1/hours-caps/{citizen['id']}"
    assert_problem(http.get(url, headers=cw), 404, "not_found")
    for bad in ({"weekly_hours": 37.5, "reason": "x"}, {"weekly_hours": -1, "reason": "x"},
                {"weekly_hours": 7.3, "reason": "x"}, {"weekly_hours": 10},
                {"weekly_hours": 10, "reason": " "}):
        assert_problem(http.put(url, json=bad, headers=cw), 422, "validation_error")
    first = http.put(url, json={"weekly_hours": 20, "reason": "first assessment"}, headers=cw)
    assert first.status_code == 200 and first.json()["weekly_hours"] == 20
    second = http.put(url, json={"weekly_hours": 37, "reason": "ready for more"}, headers=cw)
    body = second.json()
    assert body["weekly_hours"] == 37 and body["reason"] == "ready for more"
    assert [(h["weekly_hours"], h["previous_weekly_hours"], h["reason"])
            for h in body["history"]] == [(20, None, "first assessment"),
                                          (37, 20, "ready for more")]
    assert all(h["set_by"] for h in body["history"])
    lead = bearer(system.token_for("team_lead"))
    assert http.get(url, headers=lead).json()["weekly_hours"] == 37
    assert_problem(http.put(url, json={"weekly_hours": 1, "reason": "x"}, headers=lead),
                   403, "insufficient_scope")
    provider = bearer(system.token_for("provider", provider_id=ctx["provider"]["id"]))
    assert_problem(http.get(url, headers=provider), 404, "not_found")


# Placements: each refusal ------------------------------------------------------------------
def test_placement_hours_take_one_decimal(http, ctx) -> None:
    """API.md: hours are numbers with at most one decimal (a cap: in half hours)."""
    citizen = enrolled_citizen(http, ctx["caseworker"])
    today = local_today()

    def hours(value: float) -> httpx.Response:
        return place(http, ctx["caseworker"], citizen["id"], ctx["contract"]["id"],
                     weekly_hours=value, starts_on=today.isoformat(),
                     ends_on=(today + timedelta(30)).isoformat())

    for bad in (7.25, 0, 37.1):
        assert_problem(hours(bad), 422, "validation_error")
    placed = hours(7.3)
    assert placed.status_code == 201, placed.text
    assert placed.json()["weekly_hours"] == 7.3


def test_placement_succeeds_and_copies_the_price(http, ctx) -> None:
    citizen = enrolled_citizen(http, ctx["caseworker"])
    today = local_today()
    response = place(http, ctx["caseworker"], citizen["id"], ctx["contract"]["id"],
                     starts_on=today.isoformat(), ends_on=(today + timedelta(60)).isoformat())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "active" and body["weekly_hours"] == 20
    assert body["weekly_price_ore"] == ctx["contract"]["weekly_price_ore"]
    assert body["provider_id"] == ctx["provider"]["id"]
    listed = http.get("/v1/placements", params={"citizen_id": citizen["id"]},
                      headers=ctx["caseworker"]).json()["items"]
    assert [p["id"] for p in listed] == [body["id"]]


def test_not_enrolled(http, ctx) -> None:
    cw = ctx["caseworker"]
    never = register(http, cw)
    http.put(f"/v1/hours-caps/{never['id']}", json={"weekly_hours": 37, "reason": "x"},
             headers=cw)
    assert_problem(place(http, cw, never["id"], ctx["contract"]["id"]), 409, "not_enrolled")
    # Enrolled only after the placement would start.
    late = enrolled_citizen(http, cw, enrolled_on="2025-04-01")
    assert_problem(place(http, cw, late["id"], ctx["contract"]["id"]), 409, "not_enrolled")
    assert_problem(place(http, cw, str(uuid.uuid4()), ctx["contract"]["id"]), 409,
                   "not_enrolled")


def test_hours_cap_not_set(http, ctx) -> None:
    citizen = enrolled_citizen(http, ctx["caseworker"], cap=None)
    assert_problem(place(http, ctx["caseworker"], citizen["id"], ctx["contract"]["id"]),
                   409, "hours_cap_not_set")


def test_contract_not_covering(http, ctx) -> None:
    cw = ctx["caseworker"]
    citizen = enrolled_citizen(http, cw)
    narrow = make_contract(http, ctx["admin"], ctx["provider"]["id"],
                           offer_types=["utility_work"], starts_on="2025-01-01",
                           ends_on="2025-05-31")
    body = assert_problem(place(http, cw, citizen["id"], narrow["id"]), 422,
                          "contract_not_covering")
    assert body["reason"] == "offer_type"
    body = assert_problem(place(http, cw, citizen["id"], narrow["id"], offer_type="utility_work"),
                          422, "contract_not_covering")
    assert body["reason"] == "period"
    assert_problem(place(http, cw, citizen["id"], str(uuid.uuid4())), 422,
                   "contract_not_covering")


@pytest.mark.parametrize(("birth", "offer", "start", "ok"), [
    (date(1996, 3, 3), "youth_education", "2025-03-02", True),   # 28: under 30
    (date(1995, 3, 3), "youth_education", "2025-03-03", False),  # 30 on the first day
    (date(1995, 3, 3), "employment_course_30plus", "2025-03-03", True),
    (date(1995, 3, 4), "employment_course_30plus", "2025-03-03", False),  # 29 at start
])
def test_age_rules_at_the_start(http, ctx, birth, offer, start, ok) -> None:
    citizen = enrolled_citizen(http, ctx["caseworker"], birth=birth, enrolled_on="2025-01-06")
    response = place(http, ctx["caseworker"], citizen["id"], ctx["contract"]["id"],
                     offer_type=offer, starts_on=start, ends_on="2025-04-30")
    if ok:
        assert response.status_code == 201, response.text
    else:
        assert_problem(response, 422, "age_ineligible")


def test_mentor_company_start_phase_at_most_28_days(http, ctx) -> None:
    citizen = enrolled_citizen(http, ctx["caseworker"])
    too_long = place(http, ctx["caseworker"], citizen["id"], ctx["contract"]["id"],
                     offer_type="mentor_company", starts_on="2025-03-03", ends_on="2025-03-31")
    assert_problem(too_long, 422, "start_phase_too_long")
    ok = place(http, ctx["caseworker"], citizen["id"], ctx["contract"]["id"],
               offer_type="mentor_company", starts_on="2025-03-03", ends_on="2025-03-30")
    assert ok.status_code == 201, ok.text


def test_hours_cap_exceeded_names_the_first_week(http, ctx) -> None:
    cw = ctx["caseworker"]
    citizen = enrolled_citizen(http, cw, cap=30)
    assert place(http, cw, citizen["id"], ctx["contract"]["id"], weekly_hours=20,
                 starts_on="2025-03-10", ends_on="2025-03-23").status_code == 201
    # Starts a week earlier; the overlap begins in the week of 10 March (2025-W11).
    body = assert_problem(place(http, cw, citizen["id"], ctx["contract"]["id"],
                                weekly_hours=10.5, starts_on="2025-03-03",
                                ends_on="2025-03-16"), 409, "hours_cap_exceeded")
    assert body["week"] == "2025-W11"
    assert place(http, cw, citizen["id"], ctx["contract"]["id"], weekly_hours=10,
                 starts_on="2025-03-03", ends_on="2025-03-16").status_code == 201


def test_ending_a_placement_frees_hours_and_seat_from_the_end_date(http, ctx) -> None:
    cw, admin = ctx["caseworker"], ctx["admin"]
    single = make_contract(http, admin, ctx["provider"]["id"], capacity=1)
    first = enrolled_citizen(http, cw, cap=20)
    second = enrolled_citizen(http, cw, cap=20)
    placed = place(http, cw, first["id"], single["id"], starts_on="2025-03-03",
                   ends_on="2025-06-29")
    assert placed.status_code == 201
    assert_problem(place(http, cw, second["id"], single["id"], starts_on="2025-05-05",
                         ends_on="2025-06-01"), 409, "contract_full")
    assert_problem(place(http, cw, first["id"], ctx["contract"]["id"], weekly_hours=5,
                         starts_on="2025-05-05", ends_on="2025-06-01"),
                   409, "hours_cap_exceeded")
    ended = http.post(f"/v1/placements/{placed.json()['id']}/end", headers=cw,
                      json={"ended_on": "2025-05-05", "reason": "moved to internship"})
    assert ended.status_code == 200 and ended.json()["ended_on"] == "2025-05-05"
    assert ended.json()["status"] == "ended"
    assert_problem(http.post(f"/v1/placements/{placed.json()['id']}/end", headers=cw,
                             json={"ended_on": "2025-05-06", "reason": "again"}),
                   409, "placement_already_ended")
    assert place(http, cw, second["id"], single["id"], starts_on="2025-05-05",
                 ends_on="2025-06-01").status_code == 201
    assert place(http, cw, first["id"], ctx["contract"]["id"], weekly_hours=20,
                 starts_on="2025-05-12", ends_on="2025-06-01").status_code == 201


def test_cap_cannot_go_below_scheduled_hours(http, ctx) -> None:
    cw = ctx["caseworker"]
    citizen = enrolled_citizen(http, cw, cap=30)
    today = local_today()
    assert place(http, cw, citizen["id"], ctx["contract"]["id"], weekly_hours=25,
                 starts_on=today.isoformat(), ends_on="2027-06-30").status_code == 201
    url = f"/v1/hours-caps/{citizen['id']}"
    body = assert_problem(http.put(url, json={"weekly_hours": 24.5, "reason": "less"},
                                   headers=cw), 409, "hours_cap_below_scheduled")
    assert body["scheduled_hours"] == 25
    assert http.get(url, headers=cw).json()["weekly_hours"] == 30  # unchanged
    assert http.put(url, json={"weekly_hours": 25, "reason": "exactly"},
                    headers=cw).status_code == 200


def test_cohorts_belong_to_a_contract_and_fill_up(http, ctx) -> None:
    cw = ctx["caseworker"]
    cohort = http.post("/v1/cohorts", headers=cw, json={
        "contract_id": ctx["contract"]["id"], "offer_type": "utility_work", "name": "Hold A",
        "max_size": 2, "location": "Amager"})
    assert cohort.status_code == 201, cohort.text
    cohort_id = cohort.json()["id"]
    assert_problem(http.post("/v1/cohorts", headers=cw, json={
        "contract_id": ctx["contract"]["id"], "offer_type": "wage_subsidy", "name": "B",
        "max_size": 2, "location": "x"}), 422, "contract_not_covering")
    citizens = [enrolled_citizen(http, cw) for _ in range(3)]
    assert_problem(place(http, cw, citizens[0]["id"], ctx["contract"]["id"],
                         offer_type="special_employment", cohort_id=cohort_id),
                   422, "cohort_mismatch")
    for citizen in citizens[:2]:
        response = place(http, cw, citizen["id"], ctx["contract"]["id"],
                         offer_type="utility_work", cohort_id=cohort_id)
        assert response.status_code == 201, response.text
    assert_problem(place(http, cw, citizens[2]["id"], ctx["contract"]["id"],
                         offer_type="utility_work", cohort_id=cohort_id), 409, "cohort_full")
    # After the cohort's members have left, there is room again.
    assert place(http, cw, citizens[2]["id"], ctx["contract"]["id"], offer_type="utility_work",
                 cohort_id=cohort_id, starts_on="2025-07-07",
                 ends_on="2025-08-31").status_code == 201


def test_providers_see_only_their_own(system: System, http, ctx) -> None:
    cw, admin = ctx["caseworker"], ctx["admin"]
    other_provider = make_provider(http, admin, "Other ApS")
    other_contract = make_contract(http, admin, other_provider["id"])
    mine = place(http, cw, enrolled_citizen(http, cw)["id"], ctx["contract"]["id"]).json()
    theirs = place(http, cw, enrolled_citizen(http, cw)["id"], other_contract["id"]).json()
    provider = bearer(system.token_for("provider", provider_id=ctx["provider"]["id"]))
    assert http.get(f"/v1/placements/{mine['id']}", headers=provider).status_code == 200
    assert_problem(http.get(f"/v1/placements/{theirs['id']}", headers=provider), 404,
                   "not_found")
    listed = http.get("/v1/placements", params={"limit": 500}, headers=provider).json()
    assert {p["provider_id"] for p in listed["items"]} == {ctx["provider"]["id"]}
    assert_problem(place(http, provider, enrolled_citizen(http, cw)["id"],
                         ctx["contract"]["id"]), 403, "insufficient_scope")
    for role in ("police", "analyst", "auditor", "admin", "security_officer"):
        assert_problem(http.get("/v1/placements", headers=bearer(system.token_for(role))),
                       403, "insufficient_scope")


# Concurrency ------------------------------------------------------------------------------
def _concurrently(system: System, calls: list, *, held: bool = False
                  ) -> list[httpx.Response]:
    """`held`: every call is held inside its race window (`group_checks_held`)."""
    def run(call) -> httpx.Response:
        with httpx.Client(base_url=system.url, timeout=120) as client:
            return call(client)

    with (concurrent.futures.ThreadPoolExecutor(len(calls)) as pool,
          group_checks_held(system) if held else contextlib.nullcontext() as all_waiting):
        futures = [pool.submit(run, call) for call in calls]
        if all_waiting is not None:
            all_waiting(len(calls))
    return [future.result() for future in futures]


def test_concurrent_placements_never_exceed_the_cap(system: System, http, ctx) -> None:
    cw = ctx["caseworker"]
    citizen = enrolled_citizen(http, cw, cap=30)
    # A contract for each: on one contract its seat lock alone would queue them all.
    contracts = [make_contract(http, ctx["admin"], ctx["provider"]["id"]) for _ in range(8)]
    calls = [lambda c, contract_id=contract["id"]: place(
                 c, cw, citizen["id"], contract_id, weekly_hours=7.5, starts_on="2025-03-03",
                 ends_on="2025-03-30")
             for contract in contracts]
    # Held until all have read the citizen's hours or wait for the cap's lock: without
    # that lock all of them see 0 hours and all get in.
    responses = _concurrently(system, calls, held=True)
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 4, [r.text for r in responses if r.status_code != 201][:2]
    assert all(r.json()["code"] == "hours_cap_exceeded" for r in responses
               if r.status_code != 201)
    placed = http.get("/v1/placements", params={"citizen_id": citizen["id"]},
                      headers=cw).json()["items"]
    assert sum(p["weekly_hours"] for p in placed) == 30


def test_concurrent_placements_never_exceed_capacity(system: System, http, ctx) -> None:
    cw = ctx["caseworker"]
    contract = make_contract(http, ctx["admin"], ctx["provider"]["id"], capacity=3)
    citizens = [enrolled_citizen(http, cw) for _ in range(10)]
    calls = [lambda c, cid=citizen["id"]: place(c, cw, cid, contract["id"])
             for citizen in citizens]
    responses = _concurrently(system, calls)
    assert sorted(r.status_code for r in responses) == [201] * 3 + [409] * 7
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"contract_full"}
    placed = http.get("/v1/placements", params={"contract_id": contract["id"], "limit": 500},
                      headers=cw).json()["items"]
    assert len(placed) == 3
