"""Safety measures enforced inside the placement's transaction, with the real security
service's answers: the body names the measure, never a level, an affiliation or another
citizen. Rivals placed into one cohort at once: at most one side gets in."""

from __future__ import annotations

import concurrent.futures
import threading
import uuid
from datetime import timedelta

import httpx
import pytest

from services.platform.clock import local_today

from ..support.builders import enrolled_citizen, make_contract, make_provider, place
from ..support.holds import group_checks_held
from ..support.system import System, bearer
from ..test_gateway import assert_problem

TODAY = local_today()


@pytest.fixture(scope="module")
def ctx(system: System) -> dict:
    admin = bearer(system.admin_token())
    with system.http() as http:
        provider = make_provider(http, admin)
        cleared = make_contract(http, admin, provider["id"], max_threat_level=4,
                                ends_on=(TODAY + timedelta(days=400)).isoformat())
        uncleared = make_contract(http, admin, provider["id"], max_threat_level=1,
                                  ends_on=(TODAY + timedelta(days=400)).isoformat())
        # Another place: a contract of another provider.
        elsewhere = make_contract(http, admin, make_provider(http, admin)["id"],
                                  max_threat_level=4,
                                  ends_on=(TODAY + timedelta(days=400)).isoformat())
    return {"caseworker": bearer(system.token_for("caseworker")),
            "police": bearer(system.token_for("police")), "cleared": cleared,
            "uncleared": uncleared, "elsewhere": elsewhere}


def assess(http, ctx, cpr: str, level: int, affiliations: list[str],
           measures: list[str] | None = None) -> None:
    response = http.post("/v1/threat-assessments", headers=ctx["police"], json={
        "cpr": cpr, "level": level, "valid_from": (TODAY - timedelta(days=1)).isoformat(),
        "valid_until": (TODAY + timedelta(days=100)).isoformat(),
        "affiliations": affiliations, "measures": measures or [], "notes": "test"})
    assert response.status_code == 202, response.text


def cohort(http, ctx, max_size: int = 10) -> str:
    response = http.post("/v1/cohorts", headers=ctx["caseworker"], json={
        "contract_id": ctx["cleared"]["id"], "offer_type": "utility_work",
        "name": f"Hold {uuid.uuid4().hex[:6]}", "max_size": max_size, "location": "Valby"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def place_now(http, ctx, citizen_id: str, contract: str = "cleared", **fields):
    return place(http, ctx["caseworker"], citizen_id, ctx[contract]["id"],
                 offer_type="utility_work", starts_on=TODAY.isoformat(),
                 ends_on=(TODAY + timedelta(days=30)).isoformat(), weekly_hours=10, **fields)


def assert_names_only_the_measure(body: dict, measure: str, secrets: list[str]) -> None:
    assert body["measure"] == measure
    text = str(body)
    for secret in secrets:
        assert secret not in text
    assert "level" not in body and "affiliation" not in text.lower()


def test_individual_only_and_clearance(http, ctx) -> None:
    citizen = enrolled_citizen(http, ctx["caseworker"])
    assess(http, ctx, citizen["cpr"], 4, ["GRP-NORTH-7"])
    body = assert_problem(place_now(http, ctx, citizen["id"], cohort_id=cohort(http, ctx)),
                          409, "security_measures")
    assert_names_only_the_measure(body, "individual_only", ["GRP-NORTH-7"])
    body = assert_problem(place_now(http, ctx, citizen["id"], contract="uncleared"), 409,
                          "security_measures")
    assert_names_only_the_measure(body, "contract_not_cleared", ["GRP-NORTH-7"])
    assert place_now(http, ctx, citizen["id"]).status_code == 201


def test_rivals_never_share_a_cohort(http, ctx) -> None:
    side_a, side_b = f"A-{uuid.uuid4().hex[:6]}", f"B-{uuid.uuid4().hex[:6]}"
    conflict = http.post("/v1/conflicts", headers=ctx["police"], json={
        "affiliation_a": side_a, "affiliation_b": side_b,
        "valid_from": (TODAY - timedelta(days=1)).isoformat(),
        "valid_until": (TODAY + timedelta(days=100)).isoformat()})
    assert conflict.status_code == 201, conflict.text
    first = enrolled_citizen(http, ctx["caseworker"])
    rival = enrolled_citizen(http, ctx["caseworker"])
    assess(http, ctx, first["cpr"], 1, [side_a])
    assess(http, ctx, rival["cpr"], 1, [side_b])
    group = cohort(http, ctx)
    assert place_now(http, ctx, first["id"], cohort_id=group).status_code == 201
    body = assert_problem(place_now(http, ctx, rival["id"], cohort_id=group), 409,
                          "security_measures")
    assert_names_only_the_measure(body, "no_shared_location_with_conflicts",
                                  [side_a, side_b, first["id"]])
    # Nor at the same place (the provider) at the same time, cohort or not, under another
    # contract too (DOMAIN.md: never in the same group or at the same place and time).
    for attempt in (place_now(http, ctx, rival["id"], cohort_id=cohort(http, ctx)),
                    place_now(http, ctx, rival["id"]),
                    place_now(http, ctx, rival["id"], contract="uncleared")):
        body = assert_problem(attempt, 409, "security_measures")
        assert_names_only_the_measure(body, "no_shared_location_with_conflicts",
                                      [side_a, side_b, first["id"]])
    # At another place, or at the same place once the first has left, the rival can be.
    assert place_now(http, ctx, rival["id"], contract="elsewhere").status_code == 201
    later = place(http, ctx["caseworker"], rival["id"], ctx["cleared"]["id"],
                  offer_type="utility_work",
                  starts_on=(TODAY + timedelta(days=31)).isoformat(),
                  ends_on=(TODAY + timedelta(days=60)).isoformat(), weekly_hours=10)
    assert later.status_code == 201, later.text
    # A citizen with no affiliation in a conflict is placed beside either.
    neutral = enrolled_citizen(http, ctx["caseworker"])
    assess(http, ctx, neutral["cpr"], 1, [f"N-{uuid.uuid4().hex[:6]}"])
    assert place_now(http, ctx, neutral["id"]).status_code == 201


def rival_sides(http, ctx, per_side: int = 3) -> tuple[str, str, dict[str, str]]:
    """A conflict in force between two fresh affiliations, and `per_side` enrolled citizens
    on each side: (side a, side b, citizen id -> side)."""
    side_a, side_b = f"A-{uuid.uuid4().hex[:6]}", f"B-{uuid.uuid4().hex[:6]}"
    assert http.post("/v1/conflicts", headers=ctx["police"], json={
        "affiliation_a": side_a, "affiliation_b": side_b,
        "valid_from": (TODAY - timedelta(days=1)).isoformat(),
        "valid_until": (TODAY + timedelta(days=100)).isoformat()}).status_code == 201
    sides = {}
    for side in (side_a, side_b) * per_side:
        citizen = enrolled_citizen(http, ctx["caseworker"])
        assess(http, ctx, citizen["cpr"], 1, [side])
        sides[citizen["id"]] = side
    return side_a, side_b, sides


def race(system: System, sides: dict[str, str], request) -> list[str]:  # type: ignore[no-untyped-def]
    """Every citizen's placement at once, held inside the race window (see
    `group_checks_held`); the ids of those placed. `request(client, citizen_id)` places."""
    start = threading.Barrier(len(sides), timeout=30)

    def attempt(citizen_id: str) -> int:
        with httpx.Client(base_url=system.url, timeout=120) as client:
            start.wait()  # tokens and citizens are ready: only the placements race
            return request(client, citizen_id).status_code

    with (concurrent.futures.ThreadPoolExecutor(len(sides)) as pool,
          group_checks_held(system) as all_waiting):
        futures = {cid: pool.submit(attempt, cid) for cid in sides}
        all_waiting(len(sides))
    statuses = {cid: future.result() for cid, future in futures.items()}
    assert set(statuses.values()) <= {201, 409}, statuses
    return [cid for cid, status in statuses.items() if status == 201]


def test_rivals_placed_at_once_only_one_side_gets_in(system: System, http, ctx) -> None:
    """Every request is held between reading the cohort's members and inserting (see
    `group_checks_held`): without the contract's and the cohort's row locks all of them
    see no rival in the cohort, and both sides get in, in every run on PostgreSQL."""
    _, _, sides = rival_sides(http, ctx)
    group = cohort(http, ctx)
    # A member beforehand, with no affiliation: the contract's first placement creates its
    # seats row, and placements racing to create it would queue behind the first one.
    neutral = enrolled_citizen(http, ctx["caseworker"])["id"]
    assert place_now(http, ctx, neutral, cohort_id=group).status_code == 201
    placed = race(system, sides,
                  lambda client, cid: place_now(client, ctx, cid, cohort_id=group))
    assert placed and len({sides[cid] for cid in placed}) == 1, "rivals share a cohort"
    members = http.get("/v1/placements", params={"limit": 500}, headers=ctx["caseworker"]
                       ).json()["items"]
    in_cohort = {p["citizen_id"] for p in members if p["cohort_id"] == group}
    assert in_cohort == {neutral, *placed}


def test_rivals_placed_at_once_under_two_contracts_of_one_provider(
        system: System, http, ctx) -> None:
    """The same place (the provider) at the same time, under different contracts: the
    contract and cohort locks do not meet here; the place's lock does. Held as above,
    every request gets its first answer (send the site) at once: without the place's lock
    both sides get in (PostgreSQL)."""
    side_a, _, sides = rival_sides(http, ctx)
    contract_of = {cid: "cleared" if side == side_a else "uncleared"
                   for cid, side in sides.items()}
    placed = race(system, sides, lambda client, cid: place_now(
        client, ctx, cid, contract=contract_of[cid]))
    assert placed and len({sides[cid] for cid in placed}) == 1, \
        "rivals at one place at one time"
