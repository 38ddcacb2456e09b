"""Field types for what clients send: what the OpenAPI document allows, nothing looser.

Pydantic's lax mode converts more than the public contract (API.md) allows: a number of
seconds, or the text "0", becomes a date or a timestamp; "2024-01-05T00:00:00" a date;
"5" or 5.0 an integer; "true", "yes" or 1 a boolean; "37" a number. FastAPI validates a
JSON body after decoding it (pydantic's Python mode), so a whole model in strict mode
would refuse the ISO strings of dates, UUIDs and enums too. Instead each field names what
it takes, here, in one place; the schema each type puts in the document is the one of
its plain type (string/date, string/date-time, integer, number, boolean).

- `Day`: a date written `YYYY-MM-DD`, in a body and in a query string alike, in the
  years 1900 to 2999: the rules count weeks and months past any date they are given,
  and year 9999 has no week after it.
- `Timestamp`: an RFC 3339 timestamp with its offset (`Z` or `+01:00`).
- `CprNumber`: a CPR number (services/platform/cpr.py), given on as its ten digits; a
  refusal says what is wrong, never the number.
- `BodyInt`, `BodyNumber`, `BodyBool`: a JSON integer, number (an integer too: 37 hours
  is a number) and boolean, never a string or another type.
- `IntegerText`: for an integer in a query string. A query value arrives as text, so "5"
  is an integer there, but only its decimal digits are: not "5.0", " 5" or "5_000". Put
  it after the `Query(...)` that carries the bounds, `Annotated[int, Query(ge=1),
  IntegerText]`: placed before them, pydantic cannot fold the bounds into the integer's
  schema, and the document would show `ge`/`le` instead of `minimum`/`maximum`.

A refusal is a `RequestValidationError`: the 422 problem document with `code:
"validation_error"` (problems.py).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Strict, StringConstraints

from .clock import local_today
from .cpr import InvalidCpr, parse_cpr

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})")
_INTEGER = re.compile(r"-?[0-9]+")


def _day_text(value: object) -> object:
    """`YYYY-MM-DD` text; a `date` itself from Python callers (never from JSON)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DAY.fullmatch(value):
        return value
    raise ValueError("a date must be written YYYY-MM-DD")


def _timestamp_text(value: object) -> object:
    """RFC 3339 text with an offset; a `datetime` itself from Python callers."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _TIMESTAMP.fullmatch(value):
        return value
    raise ValueError("a timestamp must be RFC 3339 with its offset, e.g. "
                     "2026-11-23T09:30:00+01:00")


def _integer_text(value: object) -> object:
    """The decimal digits of an integer (query strings); an `int` from Python callers."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return value
    raise ValueError("an integer must be written in decimal digits")


FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)


def _day_in_range(value: date) -> date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"a date from {FIRST_DAY} to {LAST_DAY}")
    return value


Day = Annotated[date, BeforeValidator(_day_text), AfterValidator(_day_in_range)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_timestamp_text)]
BodyInt = Annotated[int, Strict()]
BodyNumber = Annotated[float, Strict()]
BodyBool = Annotated[bool, Strict()]
IntegerText = BeforeValidator(_integer_text)


def _valid_cpr(value: str) -> str:
    try:
        return parse_cpr(value, today=local_today()).digits
    except InvalidCpr as exc:
        raise ValueError(str(exc)) from None  # says what is wrong, never the number


CprNumber = Annotated[str, StringConstraints(max_length=11), AfterValidator(_valid_cpr)]
