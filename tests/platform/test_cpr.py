from datetime import date

import pytest

from services.platform.clock import age_on
from services.platform.cpr import InvalidCpr, century, parse_cpr

from ..support.builders import OTHER_ZEROS, spelt


@pytest.mark.parametrize(("seventh", "year", "expected"), [
    (0, 0, 1900), (3, 99, 1900), (1, 57, 1900),
    (4, 0, 2000), (4, 36, 2000), (4, 37, 1900), (4, 99, 1900),
    (9, 36, 2000), (9, 37, 1900),
    (5, 0, 2000), (5, 57, 2000), (5, 58, 1800), (8, 99, 1800), (6, 58, 1800), (7, 57, 2000),
])
def test_century_table(seventh: int, year: int, expected: int) -> None:
    assert century(seventh, year) == expected


@pytest.mark.parametrize(("text", "birth"), [
    ("0101901234", date(1990, 1, 1)),
    ("010190-1234", date(1990, 1, 1)),
    ("3112994123", date(1999, 12, 31)),
    ("2902004123", date(2000, 2, 29)),   # leap day, 2000s by the 4
    ("0101374123", date(1937, 1, 1)),    # 4 with year 37: 1900s
    ("1506579123", date(1957, 6, 15)),   # 9 with year 57: 1900s
    ("0101585123", date(1858, 1, 1)),    # 5 with year 58: 1800s
    ("1212121212", date(1912, 12, 12)),  # fails modulus-11: still valid
    (" 0101901234 ", date(1990, 1, 1)),
])
def test_valid_numbers_and_their_birth_dates(text: str, birth: date) -> None:
    cpr = parse_cpr(text)
    assert cpr.birth_date == birth
    assert len(cpr.digits) == 10 and "-" not in cpr.digits
    assert cpr.masked == f"{cpr.digits[:6]}-XXXX"


@pytest.mark.parametrize("text", [
    "", "123", "01019012345", "0101901-234", "010190_1234", "abcdefghij",
    "3202901234",  # 32 February... day 32
    "0013901234",  # month 13
    "2902011234",  # 29 February 1901: not a leap year
    "3002004123",  # 30 February
    "0000001234",
    "010190--1234",
])
def test_invalid_numbers(text: str) -> None:
    with pytest.raises(InvalidCpr) as caught:
        parse_cpr(text)
    assert text.strip() == "" or text.strip() not in str(caught.value)


@pytest.mark.parametrize("zero", OTHER_ZEROS.values(), ids=OTHER_ZEROS.keys())
@pytest.mark.parametrize("text", ["0101901234", "010190-1234"])
def test_only_ascii_digits_make_a_number(text: str, zero: int) -> None:
    """Another script's digits are not another spelling of the number: they would hash
    apart from it (a second citizen for one person, a lookup that misses)."""
    whole = spelt(text, zero)
    one_digit = text[:-1] + spelt(text[-1], zero)
    assert whole != text and int(whole.replace("-", "")) == int(text.replace("-", ""))
    for other in (whole, one_digit, f" {whole} "):
        with pytest.raises(InvalidCpr):
            parse_cpr(other)


def test_a_birth_date_in_the_future_is_invalid() -> None:
    with pytest.raises(InvalidCpr):
        parse_cpr("0101505123", today=date(2026, 11, 28))  # 2050
    assert parse_cpr("0101265123", today=date(2026, 11, 28)).birth_date == date(2026, 1, 1)


def test_the_number_never_shows_in_repr() -> None:
    cpr = parse_cpr("0101901234")
    assert "1234" not in repr(cpr) and "1234" not in str(cpr)


@pytest.mark.parametrize(("birth", "day", "age"), [
    (date(1990, 5, 17), date(2020, 5, 16), 29),
    (date(1990, 5, 17), date(2020, 5, 17), 30),
    (date(2000, 2, 29), date(2021, 2, 28), 20),
    (date(2000, 2, 29), date(2021, 3, 1), 21),
])
def test_age(birth: date, day: date, age: int) -> None:
    assert age_on(birth, day) == age
