"""The activation, sanction-share and spending reports on a data set built here (this
module has its own system, so the figures are exact)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.platform.clock import local_today

from ..support.builders import enrolled_citizen, make_contract, make_provider, place
from ..support.system import System, bearer
from ..test_gateway import assert_problem

TODAY = local_today()
PRICE = 350_000  # øre a week


@pytest.fixture(scope="module")
def data(system: System) -> dict:
    admin = bearer(system.admin_token())
    cw = bearer(system.token_for("caseworker"))
    with system.http() as http:
        provider = make_provider(http, admin)
        contract = make_contract(http, admin, provider["id"], weekly_price_ore=PRICE,
                                 offer_types=["utility_work", "company_internship",
                                              "special_employment"],
                                 ends_on=(TODAY + timedelta(days=400)).isoformat())
        provider_token = bearer(system.token_for("provider", provider_id=provider["id"]))
        caps = [20, 30, 37, None]
        citizens = [enrolled_citizen(http, cw, cap=cap, enrolled_on="2025-01-06")
                    for cap in caps]
        plan = [  # (citizen, offer, start, end, hours)
            (0, "utility_work", "2025-03-03", "2025-04-27", 20),
            (1, "company_internship", "2025-03-17", "2025-03-23", 10),
            (2, "special_employment", "2025-01-06", "2025-02-02", 20),  # before the week
        ]
        placements = []
        for index, offer, start, end, hours in plan:
            response = place(http, cw, citizens[index]["id"], contract["id"], offer_type=offer,
                             starts_on=start, ends_on=end, weekly_hours=hours)
            assert response.status_code == 201, response.text
            placements.append(response.json())
        reported = http.post("/v1/attendance", headers=provider_token, json={"records": [
            {"placement_id": placements[0]["id"], "date": "2025-03-18",
             "status": "absent_unexcused"}]})
        assert reported.status_code == 200, reported.text
    return {"citizens": citizens, "contract": contract, "plan": plan, "cw": cw,
            "provider_token": provider_token, "admin": admin}


def test_activation_report_for_a_week(system: System, data) -> None:
    analyst = bearer(system.token_for("analyst"))
    response = system.http().get("/v1/reports/activation", params={"week": "2025-W12"},
                                 headers=analyst)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "week": "2025-W12", "citizens": 4, "average_scheduled_hours": 7.5,
        "average_cap": 29.0, "share_utility_work": 0.25,
        "share_internship_or_wage_subsidy": 0.25, "absences_unexcused": 1,
        "sanction_cases": {"open": 1, "decided": 0, "sanctioned": 0}}
    empty = system.http().get("/v1/reports/activation", params={"week": "2024-W12"},
                              headers=analyst).json()
    assert empty["citizens"] == 0 and empty["average_scheduled_hours"] == 0


def expected_spending(year: int, plan: list) -> tuple[int, int]:
    committed = spent = 0
    for _, _, start, end, _ in plan:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
        days = [first + timedelta(d) for d in range((last - first).days + 1)]
        in_year = [d for d in days if d.year == year]
        committed += len(in_year) * PRICE
        spent += len([d for d in in_year if d <= TODAY]) * PRICE
    return round(committed / 7), round(spent / 7)


def test_spending_report(system: System, data) -> None:
    analyst = bearer(system.token_for("analyst"))
    with system.http() as http:
        body = http.get("/v1/reports/spending", params={"year": 2025}, headers=analyst).json()
        full_year = http.get("/v1/reports/enrolment", params={"as_of": "2025-12-31"},
                             headers=analyst).json()["full_year_persons"]
    committed, spent = expected_spending(2025, data["plan"])
    assert body["budget_ore"] == 1_500_000_000
    assert (body["committed_ore"], body["spent_ore"], body["forecast_ore"]) == (
        committed, spent, spent)
    assert body["cost_per_full_year_person_ore"] == round(spent / full_year)
    assert [(c["contract_id"], c["placements"]) for c in body["contracts"]] == [
        (data["contract"]["id"], 3)]
    future = http_get(system, "/v1/reports/spending", {"year": TODAY.year + 2}, analyst)
    assert future["spent_ore"] == 0 and future["cost_per_full_year_person_ore"] is None


def http_get(system: System, path: str, params: dict, headers: dict) -> dict:
    with system.http() as http:
        response = http.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()


def test_monthly_share_sanctioned(system: System, data) -> None:
    cw = data["cw"]
    with system.http() as http:
        citizen = enrolled_citizen(http, cw, enrolled_on="2025-01-06")
        placement = place(http, cw, citizen["id"], data["contract"]["id"], weekly_hours=5,
                          starts_on=(TODAY - timedelta(days=10)).isoformat(),
                          ends_on=(TODAY + timedelta(days=10)).isoformat()).json()
        day = (TODAY - timedelta(days=3)).isoformat()
        assert http.post("/v1/attendance", headers=data["provider_token"], json={"records": [
            {"placement_id": placement["id"], "date": day, "status": "absent_unexcused"}]}
        ).status_code == 200
        case = http.get("/v1/sanction-cases", params={"citizen_id": citizen["id"]},
                        headers=cw).json()["items"][0]
        http.post("/v1/rights-guidance", headers=cw, json={
            "citizen_id": citizen["id"], "given_on": "2025-01-06", "channel": "letter"})
        http.post("/v1/rights-guidance", headers=cw, json={
            "citizen_id": citizen["id"], "given_on": (TODAY - timedelta(days=30)).isoformat(),
            "channel": "letter"})
        # The citizen's time to respond has passed: a sanction may be decided.
        http.post(f"/v1/sanction-cases/{case['id']}/hearing", headers=cw, json={
            "sent_on": day, "respond_by": (TODAY - timedelta(1)).isoformat()})
        decided = http.post(f"/v1/sanction-cases/{case['id']}/decision", headers=cw, json={
            "outcome": "sanction", "reasonable_excuse": False, "deduction_days": 1,
            "justification": "No excuse given."})
        assert decided.status_code == 200, decided.text
    analyst = bearer(system.token_for("analyst"))
    body = http_get(system, "/v1/reports/sanctions", {"month": f"{TODAY:%Y-%m}"}, analyst)
    assert body == {"month": f"{TODAY:%Y-%m}", "enrolled": 5, "sanctioned": 1,
                    "share": round(1 / 5, 3)}


def test_report_roles_and_input(system: System, data) -> None:
    with system.http() as http:
        for role in ("caseworker", "provider", "auditor"):
            extra = {"provider_id": data["contract"]["provider_id"]} if role == "provider" else {}
            headers = bearer(system.token_for(role, **extra))
            assert_problem(http.get("/v1/reports/spending", params={"year": 2025},
                                    headers=headers), 403, "insufficient_scope")
        lead = bearer(system.token_for("team_lead"))
        for path, params in (("/v1/reports/activation", {"week": "2025-W54"}),
                             ("/v1/reports/activation", {"week": "W12"}),
                             ("/v1/reports/activation", {"week": "٢٠٢٦-W٤٨"}),
                             ("/v1/reports/activation", {"week": "9999-W52"}),
                             ("/v1/reports/sanctions", {"month": "2025-13"}),
                             ("/v1/reports/sanctions", {"month": "٢٠٢٦-11"}),
                             ("/v1/reports/sanctions", {"month": "0001-01"}),
                             ("/v1/reports/sanctions", {"month": "9999-12"}),
                             ("/v1/reports/spending", {"year": 1900})):
            assert_problem(http.get(path, params=params, headers=lead), 422,
                           "validation_error")
