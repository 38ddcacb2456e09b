"""Builders for test data: valid, unique CPR numbers and citizens through the API."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

import httpx

_serial = itertools.count(1)


def make_cpr(birth: date, *, dash: bool = False) -> str:
    """A valid CPR number for `birth`, unique within the test run."""
    year = birth.year % 100
    if 1900 <= birth.year <= 1999:
        seventh = next(_serial) % 4  # 0-3: the 1900s
    elif 2000 <= birth.year <= 2036:
        seventh = 4
    else:
        raise ValueError("test births are 1900-2036")
    rest = f"{next(_serial) % 1000:03d}"
    # Unique across the run: vary the serial digits and, when they wrap, the seventh digit.
    digits = f"{birth:%d%m}{year:02d}{seventh}{rest}"
    return f"{digits[:6]}-{digits[6:]}" if dash else digits


# The zero of scripts whose digits Python's `\d` and `int()` take as well as ASCII ones;
# a CPR number is written in ASCII digits only.
OTHER_ZEROS = {"fullwidth": 0xFF10, "arabic_indic": 0x0660, "extended_arabic_indic": 0x06F0,
               "devanagari": 0x0966, "bengali": 0x09E6, "mathematical_bold": 0x1D7CE}


def spelt(text: str, zero: int) -> str:
    """`text` with its ASCII digits written in the script whose zero is `zero`."""
    return text.translate({ord("0") + d: chr(zero + d) for d in range(10)})


def register(http: httpx.Client, headers: dict[str, str], *, birth: date = date(1990, 5, 17),
             cpr: str | None = None, **fields: Any) -> dict[str, Any]:
    body = {"cpr": cpr or make_cpr(birth), "name": "Test Person", "benefit": "kontanthjaelp",
            "readiness": "jobparat", **fields}
    response = http.post("/v1/citizens", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return {**response.json(), "cpr": body["cpr"]}


def make_provider(http: httpx.Client, admin: dict[str, str], name: str = "Provider ApS"
                  ) -> dict[str, Any]:
    for _ in range(20):
        cvr = f"{next(_serial) % 90_000_000 + 10_000_000}"
        response = http.post("/v1/providers", json={"name": name, "cvr": cvr}, headers=admin)
        if response.status_code == 201:
            return response.json()
        assert response.status_code == 409, response.text
    raise AssertionError("no free CVR number")


def make_contract(http: httpx.Client, admin: dict[str, str], provider_id: str,
                  **fields: Any) -> dict[str, Any]:
    body = {"provider_id": provider_id, "kind": "special",
            "offer_types": ["special_employment", "utility_work", "mentor_company",
                            "youth_education", "employment_course_30plus"],
            "starts_on": "2025-01-01", "ends_on": "2027-12-31", "capacity": 50,
            "weekly_price_ore": 250_000, "max_threat_level": 4, **fields}
    response = http.post("/v1/contracts", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


def enrolled_citizen(http: httpx.Client, caseworker: dict[str, str], *,
                     birth: date = date(1990, 5, 17), enrolled_on: str = "2025-01-06",
                     cap: float | None = 37, **fields: Any) -> dict[str, Any]:
    citizen = register(http, caseworker, birth=birth, **fields)
    response = http.post(f"/v1/citizens/{citizen['id']}/enrolments", headers=caseworker,
                         json={"enrolled_on": enrolled_on, "referral_source": "police"})
    assert response.status_code == 201, response.text
    if cap is not None:
        response = http.put(f"/v1/hours-caps/{citizen['id']}", headers=caseworker,
                            json={"weekly_hours": cap, "reason": "assessed"})
        assert response.status_code == 200, response.text
    return citizen


def place(http: httpx.Client, caseworker: dict[str, str], citizen_id: str, contract_id: str,
          **fields: Any) -> httpx.Response:
    body = {"citizen_id": citizen_id, "contract_id": contract_id,
            "offer_type": "special_employment", "starts_on": "2025-03-03",
            "ends_on": "2025-06-29", "weekly_hours": 20, **fields}
    return http.post("/v1/placements", json=body, headers=caseworker)
