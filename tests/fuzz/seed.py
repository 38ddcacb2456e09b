"""Real objects for the fuzzer to find: a positive case sometimes names one of them
instead of a random id, so the rules behind the 404s are exercised too."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from ..support.builders import enrolled_citizen, make_contract, make_cpr, make_provider, place
from ..support.system import System, bearer

TODAY = date.today()


def ok(response, status: int = 200) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    return response.json()


def seed(system: System) -> tuple[dict[str, list[str]], str]:
    """Returns ({parameter name: [real ids]}, the provider the provider token is bound to)."""
    admin = bearer(system.admin_token())
    caseworker = bearer(system.token_for("caseworker"))
    police = bearer(system.token_for("police"))
    with system.http() as http:
        provider = make_provider(http, admin, "Fuzz ApS")
        contract = make_contract(http, admin, provider["id"],
                                 ends_on=(TODAY + timedelta(days=400)).isoformat())
        provider_token = bearer(system.token_for("provider", provider_id=provider["id"]))
        cohort = ok(http.post("/v1/cohorts", headers=caseworker, json={
            "contract_id": contract["id"], "offer_type": "utility_work", "name": "Hold A",
            "max_size": 10, "location": "Valby"}), 201)
        citizens, placements, records = [], [], []
        for readiness in ("jobparat", "aktivitetsparat"):
            citizen = enrolled_citizen(http, caseworker, readiness=readiness)
            citizens.append(citizen["id"])
            placement = ok(place(http, caseworker, citizen["id"], contract["id"],
                                 starts_on=(TODAY - timedelta(days=30)).isoformat(),
                                 ends_on=(TODAY + timedelta(days=30)).isoformat(),
                                 weekly_hours=10), 201)
            placements.append(placement["id"])
            batch = ok(http.post("/v1/attendance", headers=provider_token, json={"records": [
                {"placement_id": placement["id"], "date": (TODAY - timedelta(days=2)).isoformat(),
                 "status": "absent_unexcused"},
                {"placement_id": placement["id"], "date": (TODAY - timedelta(days=1)).isoformat(),
                 "status": "present", "hours": 6}]}))
            records += [r["id"] for r in batch["records"]]
            ok(http.post("/v1/rights-guidance", headers=caseworker, json={
                "citizen_id": citizen["id"], "given_on": (TODAY - timedelta(days=20)).isoformat(),
                "channel": "letter"}), 201)
        cases = [c["id"] for c in ok(http.get("/v1/sanction-cases", headers=caseworker,
                                              params={"limit": 500}))["items"]]
        conversation = ok(http.post("/v1/conversations", headers=caseworker, json={
            "citizen_id": citizens[0],
            "scheduled_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()}), 201)
        cpr = make_cpr(date(1990, 5, 17))
        ok(http.post("/v1/citizens", headers=caseworker, json={
            "cpr": cpr, "name": "Known Person", "benefit": "kontanthjaelp",
            "readiness": "jobparat"}), 201)
        assessment = ok(http.post("/v1/threat-assessments", headers=police, json={
            "cpr": cpr, "level": 3, "valid_from": TODAY.isoformat(),
            "valid_until": (TODAY + timedelta(days=100)).isoformat(),
            "affiliations": ["AFF-FUZZ"], "measures": []}), 202)
        conflict = ok(http.post("/v1/conflicts", headers=police, json={
            "affiliation_a": "AFF-FUZZ", "affiliation_b": "AFF-OTHER",
            "valid_from": TODAY.isoformat(),
            "valid_until": (TODAY + timedelta(days=100)).isoformat()}), 201)
        # A client the fuzzer may revoke: revoking its own clients would end the run.
        victim = system.new_client("analyst")
    ids = {
        "citizen_id": citizens, "contract_id": [contract["id"]],
        "provider_id": [provider["id"]], "cohort_id": [cohort["id"]],
        "placement_id": placements, "record_id": records, "case_id": cases,
        "conversation_id": [conversation["id"]], "assessment_id": [assessment["id"]],
        "conflict_id": [conflict["id"]], "client_id": [victim["client_id"]],
    }
    return ids, provider["id"]
