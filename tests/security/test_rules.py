"""What is in force, the measures it requires, and the group check, through the gateway on
SQLite and PostgreSQL: defaults by level, expiry, supersession, the conflict rule."""

from __future__ import annotations

import concurrent.futures
import threading
import time
import uuid
from typing import Any

import httpx
import pytest

from services.security.measures import DEFAULT_POLICY, MeasurePolicy

from ..support.system import System
from ..test_gateway import assert_problem
from .support import (
    assessment,
    citizen,
    code,
    conflict,
    constraints,
    days,
    group_check,
    upload,
)

ALL_FOUR = ["individual_only", "small_group", "two_staff", "notify_police"]


def reported(http: httpx.Client, callers, **fields) -> dict:
    """A registered citizen with one assessment uploaded: {"id", "cpr", "assessment"}."""
    person = citizen(http, callers.caseworker)
    person["assessment"] = upload(http, callers.police, assessment(person["cpr"], **fields))
    return person


def officer_view(http: httpx.Client, callers, assessment_id: str) -> dict:
    response = http.get(f"/v1/threat-assessments/{assessment_id}", headers=callers.security_officer)
    assert response.status_code == 200, response.text
    return response.json()


# Measures by level ---------------------------------------------------------------------------
@pytest.mark.parametrize(("level", "measures", "limit"), [
    (0, [], None), (1, [], None), (2, [], None),
    (3, ["small_group", "two_staff"], 4),
    (4, ALL_FOUR, 1),
])
def test_default_measures_by_level(http, callers, level, measures, limit) -> None:
    person = reported(http, callers, level=level)
    body = constraints(http, callers.caseworker, person["id"])
    assert body == {"citizen_id": person["id"], "measures": measures, "max_group_size": limit,
                    "as_of": days(0)}


def test_the_assessments_own_measures_are_merged_with_the_defaults(http, callers) -> None:
    low = reported(http, callers, level=1, measures=["jobcenter_premises_only"])
    assert constraints(http, callers.caseworker, low["id"])["measures"] == [
        "jobcenter_premises_only"]
    high = reported(http, callers, level=3,
                    measures=["notify_police", "two_staff", "no_shared_location_with_conflicts"])
    body = constraints(http, callers.team_lead, high["id"])
    assert body["measures"] == ["small_group", "two_staff", "notify_police",
                                "no_shared_location_with_conflicts"]
    assert body["max_group_size"] == 4
    # A small group named by the police at a low level has the default limit too.
    small = reported(http, callers, level=0, measures=["small_group"])
    assert constraints(http, callers.caseworker, small["id"])["max_group_size"] == 4


def test_a_citizen_never_reported_has_no_measures(http, callers) -> None:
    for citizen_id in (citizen(http, callers.caseworker)["id"], str(uuid.uuid4())):
        assert constraints(http, callers.caseworker, citizen_id) == {
            "citizen_id": citizen_id, "measures": [], "max_group_size": None,
            "as_of": days(0)}


def test_the_policy_table_is_checked_when_made() -> None:
    assert DEFAULT_POLICY.required(4, []) == ALL_FOUR
    with pytest.raises(ValueError, match="every level"):
        MeasurePolicy(by_level={0: frozenset()})
    with pytest.raises(ValueError, match="at least two"):
        MeasurePolicy(small_group_limit=1)
    custom = MeasurePolicy(by_level={**DEFAULT_POLICY.by_level, 2: frozenset({"two_staff"})},
                           small_group_limit=6)
    assert custom.required(2, ["notify_police"]) == ["two_staff", "notify_police"]
    assert custom.max_group_size(custom.required(3, [])) == 6


# Validity: expiry, scheduling, supersession ------------------------------------------------
def test_an_expired_assessment_no_longer_constrains(http, callers) -> None:
    person = reported(http, callers, level=4, valid_from=days(-200), valid_until=days(-1))
    assert constraints(http, callers.caseworker, person["id"])["measures"] == []
    assert constraints(http, callers.caseworker, person["id"], as_of=days(-1))["measures"] == (
        ALL_FOUR)
    assert officer_view(http, callers, person["assessment"])["status"] == "expired"
    # The last day of validity is a day in force.
    today_last = reported(http, callers, level=3, valid_from=days(-30), valid_until=days(0))
    assert constraints(http, callers.caseworker, today_last["id"])["max_group_size"] == 4
    assert constraints(http, callers.caseworker, today_last["id"], as_of=days(1))[
        "measures"] == []


def test_a_scheduled_assessment_constrains_from_its_first_day(http, callers) -> None:
    person = reported(http, callers, level=3, valid_from=days(5), valid_until=days(100))
    assert constraints(http, callers.caseworker, person["id"])["measures"] == []
    assert constraints(http, callers.caseworker, person["id"], as_of=days(5))["measures"] == [
        "small_group", "two_staff"]
    assert officer_view(http, callers, person["assessment"])["status"] == "scheduled"


def test_a_newer_assessment_supersedes_from_its_valid_from(http, callers) -> None:
    person = reported(http, callers, level=4, valid_from=days(-30), valid_until=days(300))
    older = person["assessment"]
    newer = upload(http, callers.police, assessment(
        person["cpr"], level=1, valid_from=days(-5), valid_until=days(100),
        measures=["two_staff"]))
    assert constraints(http, callers.caseworker, person["id"])["measures"] == ["two_staff"]
    # Before the newer one began, the older one was in force.
    assert constraints(http, callers.caseworker, person["id"], as_of=days(-6))[
        "measures"] == ALL_FOUR
    old_view = officer_view(http, callers, older)
    assert (old_view["status"], old_view["superseded_by"], old_view["superseded_from"]) == (
        "superseded", newer, days(-5))
    new_view = officer_view(http, callers, newer)
    assert (new_view["status"], new_view["superseded_by"]) == ("in_force", None)
    # History is kept: both, oldest first, never edited.
    history = http.get("/v1/threat-assessments", headers=callers.security_officer,
                       params={"citizen_id": person["id"]}).json()
    assert [a["id"] for a in history["items"]] == [older, newer]
    assert [a["level"] for a in history["items"]] == [4, 1]


def test_a_future_assessment_takes_over_only_on_its_day(http, callers) -> None:
    person = reported(http, callers, level=3, valid_from=days(-30), valid_until=days(300))
    newer = upload(http, callers.police, assessment(
        person["cpr"], level=4, valid_from=days(10), valid_until=days(200)))
    assert constraints(http, callers.caseworker, person["id"])["max_group_size"] == 4
    assert constraints(http, callers.caseworker, person["id"], as_of=days(10))[
        "max_group_size"] == 1
    view = officer_view(http, callers, person["assessment"])
    assert (view["status"], view["superseded_by"], view["superseded_from"]) == (
        "in_force", newer, days(10))


def test_a_superseded_assessment_does_not_come_back_when_the_newer_expires(http,
                                                                           callers) -> None:
    person = reported(http, callers, level=4, valid_from=days(-100), valid_until=days(200))
    newer = upload(http, callers.police, assessment(
        person["cpr"], level=2, valid_from=days(-50), valid_until=days(-1)))
    assert constraints(http, callers.caseworker, person["id"])["measures"] == []
    assert officer_view(http, callers, person["assessment"])["status"] == "superseded"
    assert officer_view(http, callers, newer)["status"] == "expired"


def test_a_newer_upload_starting_earlier_replaces_the_older_entirely(http, callers) -> None:
    person = reported(http, callers, level=4, valid_from=days(5), valid_until=days(100))
    upload(http, callers.police, assessment(person["cpr"], level=0, valid_from=days(-5),
                                            valid_until=days(100)))
    assert constraints(http, callers.caseworker, person["id"], as_of=days(50))["measures"] == []
    view = officer_view(http, callers, person["assessment"])
    assert (view["status"], view["superseded_from"]) == ("superseded", days(5))


# The group check --------------------------------------------------------------------------
def test_pure_clearance_checks_the_contract_against_the_level_in_force(http, callers) -> None:
    person = reported(http, callers, level=3)
    check = lambda level: group_check(http, callers.service, person["id"],  # noqa: E731
                                      contract_max_threat_level=level)
    assert check(2) == {"allowed": False, "measure": "contract_not_cleared"}
    assert check(3) == {"allowed": True, "measure": None}
    assert check(None) == {"allowed": True, "measure": None}
    unknown = str(uuid.uuid4())
    assert group_check(http, callers.service, unknown, contract_max_threat_level=0) == {
        "allowed": True, "measure": None}
    # An expired assessment counts no more; the level in force on `on` does.
    expired = reported(http, callers, level=4, valid_from=days(-100), valid_until=days(-1))
    assert group_check(http, callers.service, expired["id"], contract_max_threat_level=0)[
        "allowed"]
    assert group_check(http, callers.service, expired["id"], contract_max_threat_level=0,
                       on=days(-2))["measure"] == "contract_not_cleared"


def test_individual_only_refuses_any_cohort(http, callers) -> None:
    person = reported(http, callers, level=4)
    assert group_check(http, callers.service, person["id"], cohort_max_size=2) == {
        "allowed": False, "measure": "individual_only"}
    assert group_check(http, callers.service, person["id"], contract_max_threat_level=4) == {
        "allowed": True, "measure": None}
    own = reported(http, callers, level=0, measures=["individual_only"])
    assert group_check(http, callers.service, own["id"], cohort_max_size=1)[
        "measure"] == "individual_only"


def test_the_group_limit_counts_the_cohorts_size_and_each_members_limit(http, callers) -> None:
    small = reported(http, callers, level=3)  # group limit 4
    others = [citizen(http, callers.caseworker)["id"] for _ in range(4)]
    check = lambda who, members, size: group_check(  # noqa: E731
        http, callers.service, who, members, cohort_max_size=size)
    assert check(small["id"], others[:2], 4)["allowed"]
    # The cohort may grow to 6: too large for a group limit of 4, however full it is now.
    assert check(small["id"], [], 6) == {"allowed": False, "measure": "small_group"}
    # Four members and the candidate make five, even in a cohort declared for four.
    assert check(small["id"], others, 4)["measure"] == "small_group"
    # A member's limit: joining may not make the group larger than it.
    newcomer = citizen(http, callers.caseworker)["id"]
    assert check(newcomer, [small["id"], *others[:2]], 10)["allowed"]
    assert check(newcomer, [small["id"], *others], 10) == {
        "allowed": False, "measure": "small_group"}
    # No cohort (the same place and time only): group limits do not apply.
    assert group_check(http, callers.service, newcomer, [small["id"], *others])["allowed"]


def test_affiliations_in_conflict_never_share_a_group_or_a_place(http, callers) -> None:
    a, b, c = code("A"), code("B"), code("C")
    candidate = reported(http, callers, level=1, affiliations=[a, c])
    rival = reported(http, callers, level=1, affiliations=[b])
    neutral = reported(http, callers, level=1, affiliations=[code("N")])
    nobody = citizen(http, callers.caseworker)["id"]
    members = [neutral["id"], nobody]
    assert group_check(http, callers.service, candidate["id"], [*members, rival["id"]],
                       cohort_max_size=8)["allowed"]
    conflict(http, callers.police, b.lower(), a)  # either order, any case
    refused = {"allowed": False, "measure": "no_shared_location_with_conflicts"}
    assert group_check(http, callers.service, candidate["id"], [*members, rival["id"]],
                       cohort_max_size=8) == refused
    assert group_check(http, callers.service, rival["id"], [candidate["id"]],
                       cohort_max_size=8) == refused
    # The same place and time without a cohort is refused too.
    assert group_check(http, callers.service, rival["id"], [candidate["id"]]) == refused
    assert group_check(http, callers.service, candidate["id"], members, cohort_max_size=8)[
        "allowed"]
    # The answer names the measure only: no affiliation, member or level.
    response = http.post("/v1/group-checks", headers=callers.service, json={
        "citizen_id": candidate["id"], "member_ids": [rival["id"]], "cohort_max_size": 8})
    for secret in (a, b, a.lower(), b.lower(), rival["id"], "level"):
        assert secret not in response.text


def test_the_place_is_asked_for_only_when_the_candidate_could_be_in_a_conflict(
        http, callers) -> None:
    a, b = code("A"), code("B")
    candidate = reported(http, callers, level=1, affiliations=[a])
    rival = reported(http, callers, level=1, affiliations=[b])
    neutral = reported(http, callers, level=1, affiliations=[code("N")])
    plain = citizen(http, callers.caseworker)["id"]
    conflict(http, callers.police, a, b)

    def ask(who: str, **fields: Any) -> dict[str, Any]:
        response = http.post("/v1/group-checks", headers=callers.service,
                             json={"citizen_id": who, **fields})
        assert response.status_code == 200, response.text
        return response.json()

    needed = {"allowed": False, "measure": None, "site_members_needed": True}
    assert ask(candidate["id"]) == needed
    assert ask(rival["id"], member_ids=[neutral["id"]]) == needed
    # Nobody else has an affiliation in a conflict: their answer is final at once.
    for who in (neutral["id"], plain):
        assert ask(who) == {"allowed": True, "measure": None, "site_members_needed": False}
    # With the place: the rival there refuses, naming the measure only.
    at_site = ask(candidate["id"], site_member_ids=[plain, rival["id"], neutral["id"]])
    assert at_site == {"allowed": False, "measure": "no_shared_location_with_conflicts",
                       "site_members_needed": False}
    assert ask(candidate["id"], site_member_ids=[plain, neutral["id"]])["allowed"] is True
    assert ask(candidate["id"], site_member_ids=[])["allowed"] is True


def test_only_conflicts_and_assessments_in_force_count(http, callers) -> None:
    a, b, x, y = code("A"), code("B"), code("X"), code("Y")
    one = reported(http, callers, level=0, affiliations=[a])
    two = reported(http, callers, level=0, affiliations=[b])
    conflict(http, callers.police, a, b, valid_from=days(-100), valid_until=days(-1))
    assert group_check(http, callers.service, one["id"], [two["id"]], cohort_max_size=5)[
        "allowed"]
    assert group_check(http, callers.service, one["id"], [two["id"]], cohort_max_size=5,
                       on=days(-1))["measure"] == "no_shared_location_with_conflicts"
    conflict(http, callers.police, a, b, valid_from=days(30), valid_until=days(60))
    assert group_check(http, callers.service, one["id"], [two["id"]], on=days(30))[
        "measure"] == "no_shared_location_with_conflicts"
    # A member whose assessment has expired brings no affiliations any more.
    three = reported(http, callers, level=0, affiliations=[x], valid_from=days(-100),
                     valid_until=days(-1))
    four = reported(http, callers, level=0, affiliations=[y])
    conflict(http, callers.police, x, y)
    assert group_check(http, callers.service, four["id"], [three["id"]])["allowed"]
    # ... and a superseding assessment without the affiliation ends the conflict for them.
    p, q = code("P"), code("Q")
    five = reported(http, callers, level=0, affiliations=[p])
    six = reported(http, callers, level=0, affiliations=[q])
    conflict(http, callers.police, p, q)
    upload(http, callers.police, assessment(six["cpr"], level=0, valid_from=days(0)))
    assert group_check(http, callers.service, five["id"], [six["id"]])["allowed"]
    assert group_check(http, callers.service, five["id"], [six["id"]], on=days(-1))[
        "measure"] == "no_shared_location_with_conflicts"


def test_the_candidate_listed_among_the_members_is_ignored(http, callers) -> None:
    a = code("SELF")
    person = reported(http, callers, level=0, affiliations=[a])
    conflict(http, callers.police, a, a)  # a split group: holders must not meet
    assert group_check(http, callers.service, person["id"], [person["id"]],
                       cohort_max_size=3)["allowed"]
    other = reported(http, callers, level=0, affiliations=[a])
    assert group_check(http, callers.service, person["id"], [person["id"], other["id"]],
                       cohort_max_size=3)["measure"] == "no_shared_location_with_conflicts"


@pytest.mark.parametrize("body", [
    {"member_ids": []},
    {"citizen_id": "not-a-uuid"},
    {"citizen_id": str(uuid.uuid4()), "cohort_max_size": 0},
    {"citizen_id": str(uuid.uuid4()), "contract_max_threat_level": 5},
    {"citizen_id": str(uuid.uuid4()), "on": "01-02-2026"},
    {"citizen_id": str(uuid.uuid4()), "member_ids": [str(uuid.uuid4())] * 501},
    {"citizen_id": str(uuid.uuid4()), "affiliations": ["X"]},
])
def test_group_check_validation(http, callers, body) -> None:
    assert_problem(http.post("/v1/group-checks", headers=callers.service, json=body), 422,
                   "validation_error")


def test_concurrent_group_checks_are_consistent_and_see_every_committed_conflict(
        system: System, http, callers) -> None:
    """Many checks at once, while the police register a conflict: every answer is the
    one the data called for, and every check that began after the conflict was accepted
    sees it."""
    a, b, d = code("A"), code("B"), code("D")
    one = reported(http, callers, level=1, affiliations=[a])
    rival = reported(http, callers, level=1, affiliations=[b])
    calm = reported(http, callers, level=1, affiliations=[code("Q")])
    late = reported(http, callers, level=1, affiliations=[d])
    conflict(http, callers.police, a, b)
    accepted_at: list[float] = []
    lock = threading.Lock()

    def attempt(i: int) -> tuple[str, float, dict]:
        kind = ("rival", "calm", "late")[i % 3]
        members = {"rival": [rival["id"]], "calm": [calm["id"]], "late": [late["id"]]}[kind]
        started = time.monotonic()
        with httpx.Client(base_url=system.url, timeout=60) as client:
            response = client.post("/v1/group-checks", headers=callers.service, json={
                "citizen_id": one["id"], "member_ids": members, "cohort_max_size": 6,
                "site_member_ids": []})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body.pop("site_members_needed") is False
        return kind, started, body

    def register_conflict() -> None:
        time.sleep(0.3)
        with httpx.Client(base_url=system.url, timeout=60) as client:
            conflict(client, callers.police, d, a)
        with lock:
            accepted_at.append(time.monotonic())

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        writer = pool.submit(register_conflict)
        results = list(pool.map(attempt, range(90)))
        writer.result()
    refused = {"allowed": False, "measure": "no_shared_location_with_conflicts"}
    for kind, started, answer in results:
        if kind == "rival":
            assert answer == refused
        elif kind == "calm":
            assert answer == {"allowed": True, "measure": None}
        elif started > accepted_at[0]:
            assert answer == refused
        else:
            assert answer in (refused, {"allowed": True, "measure": None})
    assert group_check(http, callers.service, one["id"], [late["id"]],
                       cohort_max_size=6) == refused
