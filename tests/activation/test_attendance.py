"""Attendance from providers: all-or-nothing batches, idempotency keys, corrections as
versions, and the sanction cases they open and withdraw. Through the gateway, on SQLite
and PostgreSQL."""

from __future__ import annotations

import concurrent.futures
import uuid
from datetime import date, timedelta

import httpx
import pytest

from services.platform.clock import local_today

from ..support.builders import enrolled_citizen, make_contract, make_provider, place
from ..support.system import System, bearer
from ..test_gateway import assert_problem

TODAY = local_today()


@pytest.fixture(scope="module")
def ctx(system: System) -> dict:
    admin = bearer(system.admin_token())
    caseworker = bearer(system.token_for("caseworker"))
    with system.http() as http:
        provider = make_provider(http, admin)
        other = make_provider(http, admin, "Other ApS")
        contract = make_contract(http, admin, provider["id"], starts_on="2025-01-01",
                                 ends_on=(TODAY + timedelta(days=400)).isoformat())
        other_contract = make_contract(http, admin, other["id"])
    return {"admin": admin, "caseworker": caseworker, "provider": provider,
            "contract": contract, "other_contract": other_contract,
            "provider_token": bearer(system.token_for("provider", provider_id=provider["id"])),
            "other_token": bearer(system.token_for("provider", provider_id=other["id"]))}


def new_placement(http, ctx, *, contract: str = "contract", starts: date | None = None,
                  ends: date | None = None) -> dict:
    citizen = enrolled_citizen(http, ctx["caseworker"], enrolled_on="2025-01-06")
    starts = starts or TODAY - timedelta(days=30)
    ends = ends or TODAY + timedelta(days=30)
    response = place(http, ctx["caseworker"], citizen["id"], ctx[contract]["id"],
                     starts_on=starts.isoformat(), ends_on=ends.isoformat(), weekly_hours=10)
    assert response.status_code == 201, response.text
    return response.json()


def record(placement: dict, day: date, status: str, hours: float | None = None) -> dict:
    body = {"placement_id": placement["id"], "date": day.isoformat(), "status": status}
    if hours is not None:
        body["hours"] = hours
    return body


def current(http, ctx, placement: dict) -> list[dict]:
    return http.get("/v1/attendance", params={"placement_id": placement["id"], "limit": 500},
                    headers=ctx["caseworker"]).json()["items"]


def test_a_batch_is_stored_with_late_reports_marked(http, ctx) -> None:
    placement = new_placement(http, ctx)
    response = http.post("/v1/attendance", headers=ctx["provider_token"], json={"records": [
        record(placement, TODAY, "present", 7.5),
        record(placement, TODAY - timedelta(days=1), "late", 6),
        record(placement, TODAY - timedelta(days=2), "absent_excused"),
    ]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 3
    assert [r["late_report"] for r in body["records"]] == [False, True, True]
    assert {r["status"] for r in body["records"]} == {"present", "late", "absent_excused"}
    assert len(current(http, ctx, placement)) == 3


@pytest.mark.parametrize(("make", "code"), [
    (lambda p: record(p, TODAY + timedelta(days=1), "present", 7), "attendance_date_in_future"),
    (lambda p: record(p, TODAY - timedelta(days=31), "present", 7),
     "attendance_outside_placement"),
    (lambda p: record(p, TODAY - timedelta(days=3), "present"), "validation_error"),
    (lambda p: record(p, TODAY - timedelta(days=3), "absent_unexcused", 3), "validation_error"),
    (lambda p: record(p, TODAY - timedelta(days=3), "asleep"), "validation_error"),
])
def test_one_bad_record_refuses_the_whole_batch(http, ctx, make, code) -> None:
    placement = new_placement(http, ctx)
    good = record(placement, TODAY - timedelta(days=4), "present", 7)
    response = http.post("/v1/attendance", headers=ctx["provider_token"],
                         json={"records": [good, make(placement)]})
    assert_problem(response, 422, code)
    assert current(http, ctx, placement) == []


def test_another_providers_placement_makes_the_batch_404(http, ctx) -> None:
    mine = new_placement(http, ctx)
    theirs = new_placement(http, ctx, contract="other_contract",
                           starts=TODAY - timedelta(days=30), ends=TODAY + timedelta(days=30))
    response = http.post("/v1/attendance", headers=ctx["provider_token"], json={"records": [
        record(mine, TODAY, "present", 7), record(theirs, TODAY, "present", 7)]})
    assert_problem(response, 404, "not_found")
    unknown = http.post("/v1/attendance", headers=ctx["provider_token"], json={"records": [
        {"placement_id": str(uuid.uuid4()), "date": TODAY.isoformat(), "status": "present",
         "hours": 1}]})
    assert_problem(unknown, 404, "not_found")
    assert current(http, ctx, mine) == [] and current(http, ctx, theirs) == []


def test_batch_limits(http, ctx) -> None:
    placement = new_placement(http, ctx)
    too_many = [record(placement, TODAY, "present", 1)] * 1001
    assert_problem(http.post("/v1/attendance", headers=ctx["provider_token"],
                             json={"records": too_many}), 422, "validation_error")
    twice = [record(placement, TODAY, "present", 1), record(placement, TODAY, "late", 1)]
    assert_problem(http.post("/v1/attendance", headers=ctx["provider_token"],
                             json={"records": twice}), 422, "validation_error")
    assert_problem(http.post("/v1/attendance", headers=ctx["provider_token"],
                             json={"records": []}), 422, "validation_error")


def test_only_providers_report(system: System, http, ctx) -> None:
    placement = new_placement(http, ctx)
    batch = {"records": [record(placement, TODAY, "present", 7)]}
    assert_problem(http.post("/v1/attendance", headers=ctx["caseworker"], json=batch),
                   403, "insufficient_scope")
    assert_problem(http.post("/v1/attendance", json=batch), 401, "unauthorized")


def test_idempotent_replay_and_key_reuse(http, ctx) -> None:
    placement = new_placement(http, ctx)
    batch = {"records": [record(placement, TODAY - timedelta(days=1), "present", 7)]}
    key = {"Idempotency-Key": f"batch-{uuid.uuid4()}"}
    first = http.post("/v1/attendance", headers={**ctx["provider_token"], **key}, json=batch)
    again = http.post("/v1/attendance", headers={**ctx["provider_token"], **key}, json=batch)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    other = {"records": [record(placement, TODAY - timedelta(days=1), "absent_excused")]}
    assert_problem(http.post("/v1/attendance", headers={**ctx["provider_token"], **key},
                             json=other), 409, "idempotency_key_reused")
    history = http.get(f"/v1/attendance/{first.json()['records'][0]['id']}/history",
                       headers=ctx["caseworker"]).json()
    assert len(history) == 1 and history[0]["status"] == "present"
    # Keys belong to a client: another provider's same key is its own.
    assert_problem(http.post("/v1/attendance", headers={**ctx["other_token"], **key},
                             json=batch), 404, "not_found")


def test_a_correction_is_a_new_version_with_history(http, ctx) -> None:
    placement = new_placement(http, ctx)
    day = TODAY - timedelta(days=2)
    first = http.post("/v1/attendance", headers=ctx["provider_token"],
                      json={"records": [record(placement, day, "present", 7)]}).json()
    same = http.post("/v1/attendance", headers=ctx["provider_token"],
                     json={"records": [record(placement, day, "present", 7)]}).json()
    assert same["records"][0]["id"] == first["records"][0]["id"]  # nothing new
    corrected = http.post("/v1/attendance", headers=ctx["provider_token"],
                          json={"records": [record(placement, day, "late", 5)]}).json()
    new_id = corrected["records"][0]["id"]
    assert new_id != first["records"][0]["id"]
    history = http.get(f"/v1/attendance/{new_id}/history", headers=ctx["caseworker"]).json()
    assert [(h["version"], h["status"], h["current"]) for h in history] == [
        (1, "present", False), (2, "late", True)]
    assert [r["status"] for r in current(http, ctx, placement)] == ["late"]


def _cases(http, ctx, placement) -> list[dict]:
    return http.get("/v1/sanction-cases", params={"citizen_id": placement["citizen_id"]},
                    headers=ctx["caseworker"]).json()["items"]


def test_unexcused_absence_opens_a_case_and_a_correction_withdraws_it(http, ctx) -> None:
    placement = new_placement(http, ctx)
    day = TODAY - timedelta(days=3)

    def report(status: str) -> None:
        response = http.post("/v1/attendance", headers=ctx["provider_token"],
                             json={"records": [record(placement, day, status)]})
        assert response.status_code == 200, response.text

    report("absent_unexcused")
    cases = _cases(http, ctx, placement)
    assert [(c["kind"], c["status"], c["occurred_on"]) for c in cases] == [
        ("activation_absence", "open", day.isoformat())]
    report("absent_unexcused")  # the same again: still one case
    assert len(_cases(http, ctx, placement)) == 1
    report("absent_excused")
    assert [c["status"] for c in _cases(http, ctx, placement)] == ["withdrawn"]
    report("absent_unexcused")
    assert sorted(c["status"] for c in _cases(http, ctx, placement)) == ["open", "withdrawn"]


def test_providers_read_only_their_own_attendance(http, ctx) -> None:
    mine = new_placement(http, ctx)
    theirs = new_placement(http, ctx, contract="other_contract")
    for placement, token in ((mine, "provider_token"), (theirs, "other_token")):
        response = http.post("/v1/attendance", headers=ctx[token],
                             json={"records": [record(placement, TODAY, "present", 3)]})
        assert response.status_code == 200, response.text
    listed = http.get("/v1/attendance", params={"limit": 500},
                      headers=ctx["provider_token"]).json()["items"]
    assert {r["placement_id"] for r in listed} >= {mine["id"]}
    assert theirs["id"] not in {r["placement_id"] for r in listed}
    their_record = current(http, ctx, theirs)[0]["id"]
    assert_problem(http.get(f"/v1/attendance/{their_record}/history",
                            headers=ctx["provider_token"]), 404, "not_found")


def test_concurrent_reports_for_one_day_keep_one_current_version(system: System, http,
                                                                 ctx) -> None:
    placement = new_placement(http, ctx)
    day = TODAY - timedelta(days=1)
    statuses = ["present", "late", "absent_excused", "absent_unexcused"] * 3

    def report(status: str) -> int:
        with httpx.Client(base_url=system.url, timeout=120) as client:
            hours = 4 if status in ("present", "late") else None
            return client.post("/v1/attendance", headers=ctx["provider_token"],
                               json={"records": [record(placement, day, status, hours)]}
                               ).status_code

    with concurrent.futures.ThreadPoolExecutor(len(statuses)) as pool:
        assert set(pool.map(report, statuses)) == {200}
    rows = current(http, ctx, placement)
    assert len(rows) == 1
    history = http.get(f"/v1/attendance/{rows[0]['id']}/history",
                       headers=ctx["caseworker"]).json()
    assert [h["version"] for h in history] == list(range(1, len(history) + 1))
    assert sum(h["current"] for h in history) == 1
    # However the race went, at most one case is not withdrawn, and only if the last
    # version is an unexcused absence.
    live = [c for c in _cases(http, ctx, placement) if c["status"] != "withdrawn"]
    assert len(live) == (1 if rows[0]["status"] == "absent_unexcused" else 0)
