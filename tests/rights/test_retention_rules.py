"""The retention rules as pure functions: when a placement's clock starts, and why a
deleted threat assessment never changes what is in force afterwards."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from services.activation.retention import Period, due, exit_of
from services.platform.clock import add_years
from services.security.retention import Upload, last_day_in_force
from services.security.retention import due as assessment_due

D = date.fromisoformat


def test_the_clock_starts_at_the_exit_of_the_period_the_placement_began_in() -> None:
    periods = [Period(D("2020-01-06"), D("2021-03-01")), Period(D("2022-05-02"), None)]
    assert exit_of(D("2020-02-03"), periods) == D("2021-03-01")
    assert exit_of(D("2022-06-01"), periods) is None  # the open period
    assert exit_of(D("2019-12-01"), periods) is None  # before any period: kept
    # Begun after the exit (the citizen left before it started): that exit still counts.
    assert exit_of(D("2021-06-01"), periods) == D("2021-03-01")


def test_five_years_to_the_day_including_29_february() -> None:
    periods = [Period(D("2020-01-06"), D("2024-02-29"))]
    assert not due(D("2020-02-03"), periods, D("2029-02-27"))
    assert due(D("2020-02-03"), periods, D("2029-02-28"))
    assert add_years(D("2024-02-29"), 5) == D("2029-02-28")
    assert not due(D("2020-02-03"), [Period(D("2020-01-06"), None)], D("2099-01-01"))


def upload(valid_from: date, valid_until: date, order: int) -> Upload:
    received = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(minutes=order)
    ident = uuid.UUID(int=order + 1)
    return Upload(ident, valid_from, valid_until, (received, ident))


def test_a_superseded_assessment_stopped_when_the_newer_one_began() -> None:
    long = upload(D("2026-01-01"), D("2026-12-31"), 0)
    short = upload(D("2026-03-01"), D("2026-04-30"), 1)
    assert last_day_in_force(long, [long, short]) == D("2026-02-28")
    assert last_day_in_force(short, [long, short]) == D("2026-04-30")
    assert assessment_due(long, [long, short], D("2027-03-01"))
    assert not assessment_due(long, [long, short], D("2027-02-28"))


def in_force(uploads: list[Upload], day: date) -> Upload | None:
    """The rule of force (services/security/logic.py): the latest upload begun by `day`,
    unless it has expired."""
    begun = [u for u in uploads if u.valid_from <= day]
    if not begun:
        return None
    latest = max(begun, key=lambda u: u.received)
    return latest if latest.valid_until >= day else None


START = date(2024, 1, 1)


@st.composite
def histories(draw: st.DrawFn) -> list[Upload]:
    uploads = []
    for order in range(draw(st.integers(1, 6))):
        begins = START + timedelta(days=draw(st.integers(0, 400)))
        length = draw(st.integers(1, 365))
        uploads.append(upload(begins, begins + timedelta(days=length), order))
    # Uploads arrive in any order relative to their validity.
    return draw(st.permutations(uploads))


# Counting from valid_until alone fails here: the older upload (received first, valid
# later) was superseded before it began; deleting the newer one would bring it back.
EARLIER_BUT_LATER = [upload(START + timedelta(days=200), START + timedelta(days=560), 0),
                     upload(START, START + timedelta(days=10), 1)]


@settings(max_examples=500, deadline=None)
@given(histories(), st.integers(0, 1200))
@example(EARLIER_BUT_LATER, 400)
def test_deleting_what_is_due_never_changes_what_is_in_force_from_then_on(
        uploads: list[Upload], offset: int) -> None:
    today = START + timedelta(days=offset)
    kept = [u for u in uploads if not assessment_due(u, uploads, today)]
    for day in (today + timedelta(days=n) for n in range(400)):
        assert in_force(kept, day) == in_force(uploads, day)
