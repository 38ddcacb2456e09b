"""Demo data for `sikkerby up --demo`, loaded through the public API like any client
would, so that it exercises the same rules and audit as real use.

- two providers (admin), a provider client bound to the first, and three contracts
  between them with different offer types, capacities, prices and clearances; one ends
  within 60 days, so `GET /v1/contracts?expiring_within_days=60` shows something;
- twelve citizens (caseworker) with made-up CPR numbers: valid dates and century digits,
  day and month alike (0101..., 0202..., ...) so that they are plainly not real people's.
  Six are enrolled (one of them came back after an exit), five have left for different
  reasons, one is registered and not enrolled. Dates are counted back from today.

A second `up --demo` on the same data directory adds nothing: existing providers and
citizens (409) are skipped, and contracts are made only for a demo provider that has none.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx

from services.platform.clock import local_today

DEMO_PROVIDERS = [
    {"name": "Vej til Job ApS", "cvr": "31415926"},
    {"name": "Nytteindsats København", "cvr": "27182818"},
]

# Per provider CVR; dates in days from today (negative: in the past).
DEMO_CONTRACTS: dict[str, list[dict[str, Any]]] = {
    "31415926": [
        {"kind": "special", "offer_types": ["mentor_company", "company_internship",
                                             "wage_subsidy"],
         "starts_on": -300, "ends_on": 430, "capacity": 25, "weekly_price_ore": 185_000,
         "max_threat_level": 3},
        {"kind": "framework", "offer_types": ["youth_education", "employment_course_30plus"],
         "starts_on": -120, "ends_on": 610, "capacity": 12, "weekly_price_ore": 240_000,
         "max_threat_level": 2},
    ],
    "27182818": [
        {"kind": "framework", "offer_types": ["utility_work", "special_employment"],
         "starts_on": -500, "ends_on": 45, "capacity": 40, "weekly_price_ore": 95_000,
         "max_threat_level": 1},
    ],
}

# (cpr, name, benefit, readiness, periods); a period is (enrolled days ago, referral
# source, exited days ago or None, exit reason or None), oldest first. The 7th digit gives
# the century: 0-3 the 1900s; 4 with a year up to 36 the 2000s.
DEMO_CITIZENS: list[tuple[str, str, str, str, list[tuple[int, str, int | None, str | None]]]] = [
    ("010185-0001", "Demo Borger 01", "kontanthjaelp", "aktivitetsparat",
     [(420, "police", None, None)]),
    ("020290-1002", "Demo Borger 02", "kontanthjaelp", "jobparat",
     [(300, "prison_service", None, None)]),
    ("030392-2003", "Demo Borger 03", "uddannelseshjaelp", "uddannelsesparat",
     [(180, "jobcenter", None, None)]),
    ("040494-3004", "Demo Borger 04", "integrationsydelse", "aktivitetsparat",
     [(90, "other", None, None)]),
    ("050596-0005", "Demo Borger 05", "dagpenge", "jobparat",
     [(30, "jobcenter", None, None)]),
    ("060698-1006", "Demo Borger 06", "kontanthjaelp", "jobparat",
     [(700, "police", 380, "job")]),
    ("070788-2007", "Demo Borger 07", "uddannelseshjaelp", "aabenlyst_uddannelsesparat",
     [(650, "jobcenter", 200, "education")]),
    ("080883-3008", "Demo Borger 08", "kontanthjaelp", "aktivitetsparat",
     [(540, "jobcenter", 260, "benefit_ended")]),
    ("090991-0009", "Demo Borger 09", "kontanthjaelp", "aktivitetsparat",
     [(480, "police", 150, "imprisonment")]),
    ("101093-1010", "Demo Borger 10", "other", "jobparat",
     [(400, "other", 60, "moved")]),
    # Left for prison, and came back referred by the prison service.
    ("111102-4011", "Demo Borger 11", "uddannelseshjaelp", "uddannelsesparat",
     [(760, "police", 500, "imprisonment"), (120, "prison_service", None, None)]),
    # Registered; not enrolled (yet).
    ("121204-4012", "Demo Borger 12", "uddannelseshjaelp", "uddannelsesparat", []),
]


def _token(client: httpx.Client, credentials: dict[str, str]) -> str:
    response = client.post("/v1/auth/token", data={
        "grant_type": "client_credentials", "client_id": credentials["client_id"],
        "client_secret": credentials["client_secret"]})
    response.raise_for_status()
    return response.json()["access_token"]


def _bearer(client: httpx.Client, credentials: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(client, credentials)}"}


def _all(client: httpx.Client, path: str, headers: dict[str, str],
         **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 500, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, params=query, headers=headers)
        response.raise_for_status()
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def _providers(client: httpx.Client, headers: dict[str, str]
               ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The demo providers made now, and every demo provider's id by CVR (made now or
    by an earlier run)."""
    made = []
    for data in DEMO_PROVIDERS:
        response = client.post("/v1/providers", json=data, headers=headers)
        if response.status_code == 409:  # a second `up --demo` on the same data
            continue
        response.raise_for_status()
        made.append(response.json())
    demo_cvrs = {p["cvr"] for p in DEMO_PROVIDERS}
    ids = {p["cvr"]: p["id"] for p in _all(client, "/v1/providers", headers)
           if p["cvr"] in demo_cvrs}
    return made, ids


def _contracts(client: httpx.Client, headers: dict[str, str], provider_ids: dict[str, str],
               today: date) -> list[dict[str, Any]]:
    made = []
    for cvr, contracts in DEMO_CONTRACTS.items():
        provider_id = provider_ids.get(cvr)
        if provider_id is None or _all(client, "/v1/contracts", headers,
                                       provider_id=provider_id):
            continue  # not there, or it has its contracts already
        for contract in contracts:
            body = {**contract, "provider_id": provider_id,
                    "starts_on": (today + timedelta(days=contract["starts_on"])).isoformat(),
                    "ends_on": (today + timedelta(days=contract["ends_on"])).isoformat()}
            response = client.post("/v1/contracts", json=body, headers=headers)
            response.raise_for_status()
            made.append(response.json())
    return made


def _citizens(client: httpx.Client, headers: dict[str, str],
              today: date) -> list[dict[str, Any]]:
    made = []
    for cpr, name, benefit, readiness, periods in DEMO_CITIZENS:
        response = client.post("/v1/citizens", headers=headers, json={
            "cpr": cpr, "name": name, "benefit": benefit, "readiness": readiness})
        if response.status_code == 409:  # citizen_exists: made by an earlier run
            continue
        response.raise_for_status()
        citizen = response.json()
        for enrolled_ago, source, exited_ago, reason in periods:
            enrolled = client.post(
                f"/v1/citizens/{citizen['id']}/enrolments", headers=headers,
                json={"enrolled_on": (today - timedelta(days=enrolled_ago)).isoformat(),
                      "referral_source": source})
            enrolled.raise_for_status()
            if exited_ago is not None:
                exited = client.post(
                    f"/v1/citizens/{citizen['id']}/exit", headers=headers,
                    json={"exited_on": (today - timedelta(days=exited_ago)).isoformat(),
                          "reason": reason})
                exited.raise_for_status()
        if periods:
            citizen["status"] = "enrolled" if periods[-1][2] is None else "exited"
        citizen["enrolments"] = len(periods)
        made.append(citizen)  # the API's answer: cpr_masked, never the number
    return made


def summary(made: dict[str, list[dict[str, Any]]]) -> str:
    citizens = made["citizens"]
    if not (made["providers"] or made["contracts"] or citizens):
        return "Demo data: already there from an earlier run."
    count = {s: sum(c["status"] == s for c in citizens)
             for s in ("enrolled", "exited", "not_enrolled")}
    returned = sum(c["enrolments"] > 1 for c in citizens)
    return (f"Demo data: {len(made['providers'])} providers, {len(made['contracts'])} "
            f"contracts, {len(citizens)} citizens "
            f"({count['enrolled']} enrolled, {returned} of them re-enrolled; "
            f"{count['exited']} exited; {count['not_enrolled']} not enrolled).")


def load_demo(base_url: str, clients: list[dict[str, str]]) -> dict[str, Any]:
    """Create the demo providers, their contracts and a provider client bound to the
    first provider (admin), and the demo citizens with their enrolments (caseworker).

    Returns what this call made: {"providers", "contracts", "citizens"} (lists of the
    API's answers); `clients` gains the provider client's credentials."""
    admin = next(c for c in clients if c["role"] == "admin")
    caseworker = next((c for c in clients if c["role"] == "caseworker"), None)
    today = local_today()  # the services' calendar: no enrolment or exit in the future
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        headers = _bearer(client, admin)
        providers, provider_ids = _providers(client, headers)
        contracts = _contracts(client, headers, provider_ids, today)
        first = provider_ids.get(DEMO_PROVIDERS[0]["cvr"])
        if first is not None:
            created = client.post("/v1/admin/clients", headers=headers, json={
                "name": f"demo provider ({DEMO_PROVIDERS[0]['name']})", "role": "provider",
                "provider_id": first})
            created.raise_for_status()
            body = created.json()
            clients.append({"role": "provider", "client_id": body["client_id"],
                            "client_secret": body["client_secret"], "provider_id": first})
        citizens = (_citizens(client, _bearer(client, caseworker), today)
                    if caseworker is not None else [])
    return {"providers": providers, "contracts": contracts, "citizens": citizens}
