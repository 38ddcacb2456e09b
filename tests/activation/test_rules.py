"""The activation rules without HTTP: dates, weeks, and the cap under any sequence of
placements, ends and cap changes (hypothesis), against a real migrated database.

The other services are stood in for by a fixed `Neighbours` (enrolled, any contract
terms, measures allow): these tests are about the hours rule itself; the cross-service
behaviour is tested through the gateway in test_placements.py."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.activation import caps, placements
from services.activation.clients import ContractTerms, Eligibility, GroupDecision
from services.activation.models import Placement
from services.activation.reports import month_bounds
from services.activation.sanctions import add_months, decide_by, guidance_valid_until
from services.activation.schedule import weekly_tenths
from services.activation.schemas import HoursCapSet, PlacementCreate, PlacementEnd
from services.activation.weeks import mondays, parse_week, week_label
from services.platform.db import make_engine, new_session
from services.platform.migrate import upgrade
from services.platform.problems import DomainError
from services.platform.scopes import Role, Scope
from services.platform.settings import ServiceName
from services.platform.tokens import Principal


@pytest.mark.parametrize(("event", "deadline"), [
    (date(2026, 1, 15), date(2026, 4, 30)),
    (date(2026, 1, 31), date(2026, 4, 30)),
    (date(2026, 1, 1), date(2026, 4, 30)),
    (date(2026, 10, 1), date(2027, 1, 31)),
    (date(2026, 11, 28), date(2027, 2, 28)),
    (date(2027, 11, 30), date(2028, 2, 29)),  # leap year
    (date(2026, 12, 31), date(2027, 3, 31)),
])
def test_decide_by_is_the_end_of_the_third_full_month_after(event, deadline) -> None:
    assert decide_by(event) == deadline


@pytest.mark.parametrize(("given", "until"), [
    (date(2026, 1, 15), date(2026, 7, 14)),
    (date(2026, 8, 31), date(2027, 2, 27)),  # 28 Feb is six months on: valid the day before
    (date(2026, 12, 1), date(2027, 5, 31)),
])
def test_guidance_is_valid_for_six_months(given, until) -> None:
    assert guidance_valid_until(given) == until
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)


def test_iso_weeks() -> None:
    assert week_label(date(2026, 11, 28)) == "2026-W48"
    assert week_label(date(2027, 1, 1)) == "2026-W53"
    assert parse_week("2026-W48") == date(2026, 11, 23)
    assert list(mondays(date(2026, 12, 31), date(2027, 1, 4))) == [date(2026, 12, 28),
                                                                   date(2027, 1, 4)]
    assert parse_week("2999-W52") == date(2999, 12, 23)
    assert parse_week("1900-W01") == date(1900, 1, 1)
    # ASCII digits, as the document's pattern means them; no trailing newline; only weeks
    # whose days every service takes (1900 to 2999).
    for bad in ("2026-48", "2026-W54", "2025-W53", "٢٠٢٦-W٤٨", "2026-W48\n", "9999-W52",
                "0123-W45", "1899-W52", "3000-W01"):
        with pytest.raises(ValueError):
            parse_week(bad)


def test_months() -> None:
    assert month_bounds("2028-02") == (date(2028, 2, 1), date(2028, 2, 29))
    assert month_bounds("1900-02") == (date(1900, 2, 1), date(1900, 2, 28))
    # Only months whose days every service takes (1900 to 2999).
    for bad in ("2026-13", "0000-01", "2026-1", "٢٠٢٦-11", "2026-11\n", "0001-01",
                "0001-02", "9999-12", "1899-12", "3000-01"):
        with pytest.raises(ValueError):
            month_bounds(bad)


class FixedNeighbours:
    """Enrolled since 2020, born 1990, any contract covering 2024-2028, measures allow."""

    def __init__(self) -> None:
        self.contract = ContractTerms(
            id=uuid.uuid4(), provider_id=uuid.uuid4(),
            offer_types=frozenset({"special_employment", "utility_work"}),
            starts_on=date(2024, 1, 1), ends_on=date(2028, 12, 31), capacity=10_000,
            weekly_price_ore=100_000, max_threat_level=4)

    def eligibility(self, citizen_id):
        return Eligibility(status="enrolled", birth_date=date(1990, 1, 1),
                           readiness="jobparat", open_since=date(2020, 1, 1))

    def contract_terms(self, contract_id):
        return self.contract

    def eligibility_and_terms(self, citizen_id, contract_id):
        return self.eligibility(citizen_id), self.contract_terms(contract_id)

    def group_check(self, *args, **kwargs):
        return GroupDecision(allowed=True, measure=None)


CASEWORKER = Principal(client_id="c-rules", role=Role.caseworker,
                       scopes=frozenset({Scope.activation_write}), provider_id=None,
                       token_id="t", expires_at=2**31)
BASE = date(2026, 3, 2)  # a Monday
APPLIED = {"place": 0, "end": 0, "cap": 0}  # what the examples really did, see below

operation = st.one_of(
    st.tuples(st.just("place"), st.integers(0, 60), st.integers(0, 40),
              st.sampled_from([0.5, 4, 7.5, 10, 15, 20, 37])),
    st.tuples(st.just("end"), st.integers(0, 10), st.integers(0, 60)),
    st.tuples(st.just("cap"), st.sampled_from([0, 5, 10, 20, 25, 30, 37])),
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('rules') / 'activation.db'}"
    upgrade(ServiceName.activation, url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=1, max_size=25))
def test_no_sequence_leaves_a_week_over_its_cap(engine, ops) -> None:
    citizen = uuid.uuid4()
    neighbours = FixedNeighbours()
    with new_session(engine) as session:
        caps.set_cap(session, CASEWORKER, citizen,
                     HoursCapSet(weekly_hours=20, reason="start"), BASE)
        session.commit()
    for op in ops:
        with new_session(engine) as session:
            try:
                if op[0] == "place":
                    _, start, length, hours = op
                    placements.create_placement(session, CASEWORKER, PlacementCreate(
                        citizen_id=citizen, contract_id=neighbours.contract.id,
                        offer_type="special_employment",
                        starts_on=BASE + timedelta(days=start),
                        ends_on=BASE + timedelta(days=start + length), weekly_hours=hours),
                        neighbours)
                elif op[0] == "end":
                    existing = caps.citizen_placements(session, citizen)
                    if not existing:
                        continue
                    target = existing[op[1] % len(existing)]
                    placements.end_placement(session, CASEWORKER, target.id, PlacementEnd(
                        ended_on=target.starts_on + timedelta(days=op[2]), reason="end"))
                else:
                    caps.set_cap(session, CASEWORKER, citizen,
                                 HoursCapSet(weekly_hours=op[1], reason="change"), BASE)
                session.commit()
                APPLIED[op[0]] += 1
            except DomainError:
                session.rollback()
        with new_session(engine) as session:
            cap = session.get(caps.HoursCap, citizen).weekly_tenths
            scheduled: list[Placement] = caps.citizen_placements(session, citizen)
            for monday in mondays(BASE, BASE + timedelta(days=120)):
                assert weekly_tenths(scheduled, monday) <= cap, (week_label(monday), ops)


def test_the_sequences_really_exercised_the_rules() -> None:
    """Runs after the property: most kinds of step succeeded at least sometimes, so the
    invariant was not checked on refusals alone."""
    assert APPLIED["place"] > 20 and APPLIED["end"] > 0 and APPLIED["cap"] > 5, APPLIED


class _Period:
    def __init__(self, starts_on: date, ends_on: date, ended_on: date | None) -> None:
        self.starts_on, self.ends_on, self.ended_on = starts_on, ends_on, ended_on


period = st.builds(
    lambda start, length, end: _Period(BASE + timedelta(start),
                                       BASE + timedelta(start + length),
                                       None if end is None else BASE + timedelta(start + end)),
    st.integers(0, 40), st.integers(0, 30), st.one_of(st.none(), st.integers(0, 32)))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(periods=st.lists(period, max_size=12), first=st.integers(0, 50),
       length=st.integers(0, 30))
def test_most_concurrent_counts_the_busiest_day(periods, first, length) -> None:
    """The sweep agrees with counting every day of the window one by one."""
    from services.activation.schedule import most_concurrent, occupies

    start = BASE + timedelta(first)
    days = [start + timedelta(d) for d in range(length + 1)]
    by_hand = max(sum(occupies(p, day, day) for p in periods) for day in days)
    assert most_concurrent(periods, days[0], days[-1]) == by_hand
