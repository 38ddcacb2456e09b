"""A police upload names its person in ASCII digits, on SQLite and PostgreSQL.

Python's `\\d` and `int()` take the digits of every script, so a CPR number written in
fullwidth or Arabic-Indic digits used to pass as valid, resolve to no one (the citizens
service hashes the number as written) and become a referral for a person who is in fact
registered: their measures would never constrain them. It is a 422, like any invalid CPR
number (tests/security/test_uploads.py), and nothing is stored."""

from __future__ import annotations

import pytest

from ..support.builders import OTHER_ZEROS, spelt
from ..test_gateway import assert_problem
from .support import assessment, citizen, code, constraints, unknown_cpr


def all_assessments(http, callers) -> list[dict]:  # type: ignore[no-untyped-def]
    response = http.get("/v1/threat-assessments", headers=callers.security_officer,
                        params={"limit": 500})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def all_referrals(http, callers) -> list[dict]:  # type: ignore[no-untyped-def]
    response = http.get("/v1/referrals", headers=callers.security_officer,
                        params={"status": "all", "limit": 500})
    assert response.status_code == 200, response.text
    return response.json()["items"]


@pytest.mark.parametrize("script", ["fullwidth", "arabic_indic", "devanagari"])
def test_an_upload_with_other_digits_is_422_and_stores_nothing(http, callers,
                                                               script: str) -> None:
    person = citizen(http, callers.caseworker)
    stranger = unknown_cpr()
    zero = OTHER_ZEROS[script]
    assessments, referrals = all_assessments(http, callers), all_referrals(http, callers)
    for cpr in (person["cpr"], stranger):
        for form in (spelt(cpr, zero), spelt(f"{cpr[:6]}-{cpr[6:]}", zero),
                     cpr[:-1] + spelt(cpr[-1], zero)):
            body = assessment(form, level=4, affiliations=[code()])
            response = http.post("/v1/threat-assessments", headers=callers.police, json=body)
            problem = assert_problem(response, 422, "validation_error")
            assert problem["errors"][0]["loc"][:2] == ["body", "cpr"]
            assert form not in response.text and cpr not in response.text
    assert all_assessments(http, callers) == assessments
    assert all_referrals(http, callers) == referrals
    assert constraints(http, callers.caseworker, person["id"])["measures"] == []
