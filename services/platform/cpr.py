"""CPR numbers: validation, birth date, masking. Pure functions, no I/O.

The 7th digit with the two-digit year gives the century (CPR-kontoret's table):
0-3 -> 1900s; 4 and 9 -> 2000-2036 for years 00-36, else 1937-1999;
5-8 -> 2000-2057 for years 00-57, else 1858-1899. Modulus-11 is NOT checked: numbers
without it have been issued since 2007.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

# ASCII digits only: Python's `\d` also takes the digits of every other script (fullwidth
# U+FF10-FF19, Arabic-Indic U+0660-0669, ...) and `int()` reads them, so a number spelt in
# them would pass as another spelling of an ASCII one, be hashed apart from it, and
# register the same person twice.
_CPR = re.compile(r"([0-9]{2})([0-9]{2})([0-9]{2})-?([0-9])([0-9]{3})")


class InvalidCpr(ValueError):
    """Says what is wrong, never the number itself."""


@dataclass(frozen=True)
class Cpr:
    digits: str  # ten digits, no dash: the only form stored (encrypted) or hashed
    birth_date: date

    def __repr__(self) -> str:  # never print the number by accident
        return f"Cpr(birth_date={self.birth_date.isoformat()}, masked)"

    __str__ = __repr__

    @property
    def masked(self) -> str:
        return mask_cpr(self.digits)


def mask_cpr(digits: str) -> str:
    """The form answers may carry: the birth date, never the serial (`DDMMYY-XXXX`)."""
    return f"{digits[:6]}-XXXX"


def century(seventh_digit: int, two_digit_year: int) -> int:
    if seventh_digit <= 3:
        return 1900
    if seventh_digit in (4, 9):
        return 2000 if two_digit_year <= 36 else 1900
    return 2000 if two_digit_year <= 57 else 1800


def parse_cpr(text: str, *, today: date | None = None) -> Cpr:
    """The CPR number in `text`, or InvalidCpr. With `today`, a birth date after it is
    invalid too (no one is born in the future)."""
    match = _CPR.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise InvalidCpr("a CPR number is 10 digits, DDMMYYSSSS or DDMMYY-SSSS")
    day, month, year, seventh, _rest = match.groups()
    full_year = century(int(seventh), int(year)) + int(year)
    try:
        birth = date(full_year, int(month), int(day))
    except ValueError:
        raise InvalidCpr("the first six digits are not a valid date") from None
    if today is not None and birth > today:
        raise InvalidCpr("the birth date lies in the future")
    return Cpr(digits=match.group(0).replace("-", ""), birth_date=birth)
