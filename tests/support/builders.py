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


def register(http: httpx.Client, headers: dict[str, str], *, birth: date = date(1990, 5, 17),
             cpr: str | None = None, **fields: Any) -> dict[str, Any]:
    body = {"cpr": cpr or make_cpr(birth), "name": "Test Person", "benefit": "kontanthjaelp",
            "readiness": "jobparat", **fields}
    response = http.post("/v1/citizens", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return {**response.json(), "cpr": body["cpr"]}
