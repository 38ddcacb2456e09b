"""The demo data of `sikkerby up --demo`, loaded through the public API of a running
system, and loaded a second time without failing or adding anything."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from gateway.cli import create_demo_clients
from gateway.demo import DEMO_CITIZENS, DEMO_CONTRACTS, DEMO_PROVIDERS, load_demo, summary
from services.platform.clock import local_today
from services.platform.cpr import parse_cpr

from .support.system import System, bearer


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = System(tmp_path_factory.mktemp("demo")).start()  # SQLite
    yield running
    running.stop()


@pytest.fixture(scope="module")
def loaded(system: System) -> dict:
    clients = create_demo_clients(system.settings)
    made = load_demo(system.url, clients)
    return {"made": made, "clients": clients}


def token(system: System, clients: list[dict[str, str]], role: str) -> dict[str, str]:
    client = next(c for c in clients if c["role"] == role)
    return bearer(system.token(client["client_id"], client["client_secret"]))


def everything(http: httpx.Client, path: str, headers: dict[str, str], **params) -> list:
    response = http.get(path, params={"limit": 500, **params}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return response.json()["items"]


def test_the_demo_numbers_are_valid_and_plainly_made_up() -> None:
    today = local_today()
    numbers = [cpr for cpr, *_ in DEMO_CITIZENS]
    assert len(set(numbers)) == len(numbers) == 12
    for cpr in numbers:
        parsed = parse_cpr(cpr, today=today)
        assert parsed.digits[:2] == parsed.digits[2:4]  # day and month alike
    for _, _, _, _, periods in DEMO_CITIZENS:
        for k, (enrolled, _, exited, _) in enumerate(periods):
            assert enrolled > 0 and (exited is None or 0 < exited <= enrolled)
            assert exited is not None or k == len(periods) - 1  # only the last is open
            if k:
                assert enrolled <= periods[k - 1][2]  # no overlap


def test_load_demo_makes_providers_contracts_and_citizens(loaded: dict) -> None:
    made, clients = loaded["made"], loaded["clients"]
    assert len(made["providers"]) == 2
    assert len(made["contracts"]) == sum(len(c) for c in DEMO_CONTRACTS.values()) == 3
    assert len(made["citizens"]) == 12
    # No CPR number in what load_demo hands back (the CLI may print it).
    text = json.dumps(made)
    for cpr, *_ in DEMO_CITIZENS:
        assert cpr not in text and cpr.replace("-", "") not in text
    provider = next(c for c in clients if c["role"] == "provider")
    assert provider["provider_id"] == made["providers"][0]["id"]


def test_contracts_are_there_with_their_terms(system: System, loaded: dict) -> None:
    admin = token(system, loaded["clients"], "admin")
    today = local_today()
    with system.http() as http:
        providers = {p["cvr"]: p["id"] for p in everything(http, "/v1/providers", admin)}
        assert set(providers) == {p["cvr"] for p in DEMO_PROVIDERS}
        contracts = everything(http, "/v1/contracts", admin)
        assert len(contracts) == 3
        for contract in contracts:
            assert date.fromisoformat(contract["starts_on"]) < today
            assert date.fromisoformat(contract["ends_on"]) > today
        assert len({c["weekly_price_ore"] for c in contracts}) == 3
        assert len({c["capacity"] for c in contracts}) == 3
        assert len({c["max_threat_level"] for c in contracts}) == 3
        assert {c["kind"] for c in contracts} == {"special", "framework"}
        types = [t for c in contracts for t in c["offer_types"]]
        assert len(types) == len(set(types)) == 7  # every offer type, each in one contract
        expiring = everything(http, "/v1/contracts", admin, expiring_within_days=60)
        assert [c["provider_id"] for c in expiring] == [providers["27182818"]]
    # The demo provider client sees its own two contracts only.
    own = token(system, loaded["clients"], "provider")
    with system.http() as http:
        seen = everything(http, "/v1/contracts", own)
    assert {c["provider_id"] for c in seen} == {providers["31415926"]} and len(seen) == 2


def test_citizens_are_there_with_their_histories(system: System, loaded: dict) -> None:
    caseworker = token(system, loaded["clients"], "caseworker")
    with system.http() as http:
        by_status = {status: everything(http, "/v1/citizens", caseworker, status=status)
                     for status in ("enrolled", "exited", "not_enrolled")}
        assert [len(by_status[s]) for s in ("enrolled", "exited", "not_enrolled")] == [6, 5, 1]
        ids = {}
        for cpr, name, *_ in DEMO_CITIZENS:
            found = http.post("/v1/citizens/lookup", json={"cpr": cpr}, headers=caseworker)
            assert found.status_code == 200, found.text
            ids[name] = found.json()["id"]
        periods = {}
        for name, citizen_id in ids.items():
            response = http.get(f"/v1/citizens/{citizen_id}/enrolments", headers=caseworker)
            assert response.status_code == 200
            periods[name] = response.json()
    returned = periods["Demo Borger 11"]
    assert [(p["exit_reason"], p["referral_source"]) for p in returned] == [
        ("imprisonment", "police"), (None, "prison_service")]
    exits = {p["exit_reason"] for ps in periods.values() for p in ps if p["exit_reason"]}
    assert exits == {"job", "education", "benefit_ended", "imprisonment", "moved"}
    sources = {p["referral_source"] for ps in periods.values() for p in ps}
    assert sources == {"police", "prison_service", "jobcenter", "other"}
    today = local_today()
    assert all(date.fromisoformat(p["enrolled_on"]) < today for ps in periods.values()
               for p in ps)


def test_the_report_counts_the_demo_citizens(system: System, loaded: dict) -> None:
    team_lead = token(system, loaded["clients"], "team_lead")
    with system.http() as http:
        now = http.get("/v1/reports/enrolment", headers=team_lead).json()
        before = http.get("/v1/reports/enrolment", headers=team_lead, params={
            "as_of": (local_today() - timedelta(days=800)).isoformat()}).json()
    assert (now["enrolled_since_start"], now["active"], now["exited"]) == (11, 6, 5)
    assert before["enrolled_since_start"] == 0


def test_a_second_run_adds_nothing_and_does_not_fail(system: System, loaded: dict) -> None:
    clients = create_demo_clients(system.settings)  # `up --demo` makes new clients each time
    again = load_demo(system.url, clients)
    assert again == {"providers": [], "contracts": [], "citizens": []}
    assert "already there" in summary(again)
    assert any(c["role"] == "provider" for c in clients)
    admin = token(system, clients, "admin")
    caseworker = token(system, clients, "caseworker")
    with system.http() as http:
        assert len(everything(http, "/v1/providers", admin)) == 2
        assert len(everything(http, "/v1/contracts", admin)) == 3
        assert len(everything(http, "/v1/citizens", caseworker)) == 12


def test_contracts_are_added_for_demo_providers_from_an_older_run(tmp_path: Path) -> None:
    """A data directory from before the demo had contracts: providers, none of their
    contracts. The next `up --demo` gives them their contracts."""
    running = System(tmp_path).start()
    try:
        clients = create_demo_clients(running.settings)
        admin = token(running, clients, "admin")
        with running.http() as http:
            for data in DEMO_PROVIDERS:
                assert http.post("/v1/providers", json=data, headers=admin).status_code == 201
        made = load_demo(running.url, clients)
        assert made["providers"] == [] and len(made["contracts"]) == 3
        assert len(made["citizens"]) == 12
        assert summary(made) == (
            "Demo data: 0 providers, 3 contracts, 12 citizens (6 enrolled, 1 of them "
            "re-enrolled; 5 exited; 1 not enrolled).")
    finally:
        running.stop()
