"""The activation bench's data set: contracts, hours caps, placements and cohorts planned in
memory from the citizens the citizens service really holds, loaded with COPY, and checked
in SQL against every rule a placement must pass.

Everything is a pure function of the seed and of the citizens read back from the citizens
database (built by `bench.citizens.run.build`, the citizens bench's own builder). Days are
handled as proleptic ordinals (`date.toordinal`) while planning: a million placements are
too many for `timedelta` arithmetic.

The rules the plan keeps (and `check_activation` verifies after the load):
- a placement lies inside one enrolment period of its citizen (from `enrolled_on` to the
  day before `exited_on`), after the citizen's hours cap was set;
- in every ISO week the placements a citizen has in it (each counted in full, as the
  service counts them) add up to no more than the cap: consecutive placements never share
  an ISO week, and a parallel placement lies inside another's weeks with hours that fit;
- `youth_education` only under 30 and `employment_course_30plus` only at 30 and over, at
  the start (`services.platform.clock.age_on`); `mentor_company` at most 28 days;
- the contract covers the offer type and the whole period; no day has more placements
  occupying a contract than its capacity, or a cohort than its `max_size`; a cohort's
  members share its contract and offer type; the contract's weekly price is copied.
"""

from __future__ import annotations

import heapq
import io
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from bench.citizens.run import NULL
from bench.gateway.run import BenchError
from services.activation.placements import MAX_START_PHASE_DAYS, YOUTH_AGE_LIMIT
from services.platform.clock import age_on
from services.platform.vocabulary import OfferType

# The shape of the data ------------------------------------------------------------------
CONTRACTS_PER_PROVIDER = 4
# Weighted offer types (youth_education and employment_course_30plus swap to fit the age).
OFFER_WEIGHTS = (
    (OfferType.special_employment, 24), (OfferType.utility_work, 20),
    (OfferType.company_internship, 14), (OfferType.wage_subsidy, 10),
    (OfferType.mentor_company, 12), (OfferType.youth_education, 10),
    (OfferType.employment_course_30plus, 10),
)
# Offer types that run in groups (a cohort); mentor places and wage subsidy are individual.
GROUP_OFFERS = frozenset({OfferType.special_employment.value, OfferType.utility_work.value,
                          OfferType.company_internship.value, OfferType.youth_education.value,
                          OfferType.employment_course_30plus.value})
# Caps in tenths of an hour, weighted: the unit aims at 37 hours, set person by person.
CAPS = ((370, 40), (300, 16), (250, 12), (200, 12), (150, 10), (100, 6), (50, 4))
HOURS = (370, 300, 250, 200, 150, 100, 80, 50)  # a placement's weekly hours, in tenths
ASSESSMENT_DAYS = 21  # the cap is set within three weeks of the first enrolment
PLAN_AHEAD_DAYS = 14  # open enrolments: placements already booked to start this soon
HORIZON_DAYS = 182  # ... and running at most this far ahead
PARALLEL_SHARE = 0.15  # a second placement inside another one's weeks, when the cap allows
EARLY_END_SHARE = 0.08  # ended before ends_on (a job, a move, a drop-out)
COHORT_SHARE = 0.12  # of placements of a group offer type
COHORTS_OPEN_PER_GROUP = 3  # cohorts taking members at once per contract and offer type
COHORT_LIFETIME = 8  # a cohort takes at most this many times max_size members over its life
NOTICE_SHARE = 0.9  # placements where the written absence notice is on record
OVERSHOOT = 1.04  # plan this much more than asked, then drop placements at random
END_REASONS = ("job", "education", "moved", "dropped_out", "sick_leave")
CASEWORKERS = 40
WEEK = 7

PLACEMENT_COLUMNS = ("id", "citizen_id", "contract_id", "provider_id", "cohort_id",
                     "offer_type", "starts_on", "ends_on", "ended_on", "end_reason",
                     "weekly_tenths", "weekly_price_ore", "absence_notice_given_on",
                     "created_by", "created_at")
COHORT_COLUMNS = ("id", "contract_id", "provider_id", "offer_type", "name", "max_size",
                  "location", "created_by", "created_at")
CAP_COLUMNS = ("citizen_id", "weekly_tenths", "reason", "set_by", "set_at")
CAP_CHANGE_COLUMNS = ("id", "citizen_id", "weekly_tenths", "previous_tenths", "reason",
                      "set_by", "set_at")


# Days as ordinals ----------------------------------------------------------------------
def monday(day: int) -> int:
    """The Monday of the ISO week of ordinal `day` (ordinal 1, 1 January 0001, is a Monday)."""
    return day - (day - 1) % 7


def weekday(day: int) -> int:
    return (day - 1) % 7


_ISO: dict[int, str] = {}


def iso(day: int) -> str:
    text = _ISO.get(day)
    if text is None:
        text = _ISO[day] = date.fromordinal(day).isoformat()
    return text


def stamp(day: int, rng: random.Random) -> str:
    """A timestamp in office hours (UTC, so the same day in Copenhagen), COPY's format."""
    micros = rng.randrange(7 * 3600 * 1_000_000)
    seconds, micro = divmod(micros, 1_000_000)
    return (f"{iso(day)} {8 + seconds // 3600:02d}:{seconds // 60 % 60:02d}:"
            f"{seconds % 60:02d}.{micro:06d}+00")


def new_id(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _weighted(rng: random.Random, choices: tuple[tuple[Any, int], ...]) -> Any:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


# What is planned ---------------------------------------------------------------------------
@dataclass
class Citizen:
    id: uuid.UUID
    birth: date
    periods: list[tuple[int, int | None]]  # (enrolled_on, exited_on or None), oldest first
    thirty: int = 0  # the first day the citizen is 30 (age_on's rule)
    cap: int = 0  # tenths; 0: no cap (never enrolled)
    cap_set_on: int = 0
    placements: list[Placement] = field(default_factory=list)

    @property
    def open_since(self) -> int | None:
        if self.periods and self.periods[-1][1] is None:
            return self.periods[-1][0]
        return None


class Placement:
    """One planned placement. `ended` is the first day no longer occupied, as the service
    stores it; `last` the last day occupied."""

    __slots__ = ("citizen", "first", "end", "ended", "tenths", "offer", "contract", "cohort",
                 "id")

    def __init__(self, citizen: int, first: int, end: int, tenths: int, offer: str) -> None:
        self.citizen = citizen
        self.first = first
        self.end = end
        self.ended: int | None = None
        self.tenths = tenths
        self.offer = offer
        self.contract = -1
        self.cohort = -1
        self.id = ""

    @property
    def last(self) -> int:
        return self.ended - 1 if self.ended is not None else self.end


@dataclass
class Contract:
    index: int
    provider: int
    kind: str
    offer_types: list[str]
    first: int
    last: int
    weekly_price_ore: int
    max_threat_level: int
    long: bool  # a framework agreement covering the whole programme and beyond
    capacity: int = 0
    peak: int = 0  # the most placements occupying it on one day, in the plan
    placements: int = 0
    id: str = ""
    provider_id: str = ""

    def covers(self, offer: str, first: int, last: int) -> bool:
        return offer in self.offer_types and self.first <= first and last <= self.last

    @property
    def headroom(self) -> int:
        return self.capacity - self.peak

    def body(self) -> dict[str, Any]:
        """What POST /v1/contracts is sent."""
        return {"provider_id": self.provider_id, "kind": self.kind,
                "offer_types": self.offer_types, "starts_on": iso(self.first),
                "ends_on": iso(self.last), "capacity": self.capacity,
                "weekly_price_ore": self.weekly_price_ore,
                "max_threat_level": self.max_threat_level}


@dataclass
class Cohort:
    index: int
    contract: int
    offer: str
    max_size: int
    created_on: int
    members: list[Placement] = field(default_factory=list)
    id: str = ""


@dataclass
class Plan:
    citizens: list[Citizen]
    contracts: list[Contract]
    placements: list[Placement]
    cohorts: list[Cohort]
    providers: int
    today: int
    mean_weeks: float

    def of_provider(self, provider: int) -> list[Placement]:
        return [p for p in self.placements if self.contracts[p.contract].provider == provider]


# Contracts ---------------------------------------------------------------------------------
def plan_contracts(rng: random.Random, providers: int, programme_start: int,
                   today: int) -> list[Contract]:
    """Each provider has one long framework agreement (from before the programme to one to
    three years ahead) and a few special agreements of two to five years that start some
    time in the programme; some of those have already ended. Every offer type is covered
    by at least one framework agreement, so every placement finds a contract."""
    types = [t.value for t in OfferType]
    contracts: list[Contract] = []
    for provider in range(providers):
        for k in range(CONTRACTS_PER_PROVIDER):
            long = k == 0
            if long:
                first = programme_start - rng.randrange(400)
                last = today + 400 + rng.randrange(700)
            else:
                first = programme_start + rng.randrange(max(1, today - 120 - programme_start))
                last = first + 730 + rng.randrange(1095)
            offered = rng.sample(types, rng.randint(2, 4))
            contracts.append(Contract(
                index=len(contracts), provider=provider,
                kind="framework" if long else "special",
                offer_types=[t for t in types if t in offered], first=first, last=last,
                weekly_price_ore=150_000 + 5_000 * rng.randrange(61),
                max_threat_level=rng.choice((2, 3, 4, 4)), long=long))
    longs = [c for c in contracts if c.long]
    for offer in types:
        if not any(offer in c.offer_types for c in longs):
            fewest = min(longs, key=lambda c: len(c.offer_types))
            fewest.offer_types = [t for t in types if t in {*fewest.offer_types, offer}]
    return contracts


# Placements ---------------------------------------------------------------------------------
def thirtieth(birth: date) -> int:
    """The first day `age_on(birth, day) >= 30`."""
    try:
        day = birth.replace(year=birth.year + YOUTH_AGE_LIMIT)
    except ValueError:  # 29 February: 30 on 1 March
        day = date(birth.year + YOUTH_AGE_LIMIT, 3, 1)
    assert age_on(birth, day) == YOUTH_AGE_LIMIT > age_on(birth, day - timedelta(days=1))
    return day.toordinal()


def pick_offer(rng: random.Random, first: int, thirty: int) -> str:
    offer = _weighted(rng, OFFER_WEIGHTS)
    if offer is OfferType.youth_education and first >= thirty:
        offer = OfferType.employment_course_30plus
    elif offer is OfferType.employment_course_30plus and first < thirty:
        offer = OfferType.youth_education
    return offer.value


def _length(rng: random.Random, offer: str, first: int, mean_weeks: float) -> int:
    """Days: a mentor start phase of two to four weeks, else whole weeks (mean
    `mean_weeks`) from the start's weekday, ending Friday to Sunday."""
    if offer == OfferType.mentor_company.value:
        return rng.randint(14, MAX_START_PHASE_DAYS)
    weeks = min(52, 2 + round(rng.expovariate(1 / max(0.5, mean_weeks - 2))))
    return weeks * WEEK - weekday(first) - rng.randrange(3)


def _hours(rng: random.Random, room: int, top: int) -> int:
    return rng.choice([h for h in HOURS if h <= room][:top])


def _end_early(rng: random.Random, placement: Placement, today: int) -> None:
    if placement.end < today and placement.end > placement.first and (
            rng.random() < EARLY_END_SHARE):
        placement.ended = rng.randint(placement.first + 1, placement.end)


def schedule(rng: random.Random, index: int, citizen: Citizen, today: int,
             mean_weeks: float, out: list[Placement]) -> None:
    """The citizen's cap and placements through every enrolment period, appended to `out`."""
    if not citizen.periods:
        return
    citizen.thirty = thirtieth(citizen.birth)
    citizen.cap = cap = _weighted(rng, CAPS)
    citizen.cap_set_on = assessed = citizen.periods[0][0] + rng.randrange(ASSESSMENT_DAYS)
    for enrolled, exited in citizen.periods:
        limit = exited - 1 if exited is not None else today + HORIZON_DAYS
        cursor = monday(max(enrolled, assessed) + 6)  # the first Monday on or after
        while True:
            first = cursor + (0 if rng.random() < 0.7 else rng.randint(1, 2))
            if first + 6 > limit or (exited is None and first > today + PLAN_AHEAD_DAYS):
                break
            offer = pick_offer(rng, first, citizen.thirty)
            end = min(first + _length(rng, offer, first, mean_weeks) - 1, limit)
            hours = _hours(rng, cap, 4)
            main = Placement(index, first, end, hours, offer)
            out.append(main)
            _end_early(rng, main, today)
            if cap - hours >= HOURS[-1] and end - first >= 13 and (
                    rng.random() < PARALLEL_SHARE):
                # A second offer inside the first one's weeks (a mentor beside a course):
                # in each of those weeks the two add up to no more than the cap.
                first2 = first + WEEK * rng.randrange((end - first) // 14 + 1)
                offer2 = pick_offer(rng, first2, citizen.thirty)
                span = min(end - first2 + 1, _length(rng, offer2, first2, mean_weeks / 2))
                if span >= WEEK:
                    extra = Placement(index, first2, first2 + span - 1,
                                      _hours(rng, cap - hours, 3), offer2)
                    out.append(extra)
                    _end_early(rng, extra, today)
            gap = 0 if rng.random() < 0.5 else (1 if rng.random() < 0.6 else rng.randint(2, 4))
            cursor = monday(end) + WEEK * (1 + gap)


def plan_placements(rng: random.Random, citizens: list[Citizen], wanted: int, today: int,
                    say: Callable[[str], None]) -> tuple[list[Placement], float]:
    """Exactly `wanted` placements. The mean length is calibrated on a sample so that the
    schedules give a few percent more than wanted; the surplus is dropped at random (as if
    cancelled), which can only lower any week's hours or any day's occupancy."""
    enrolled = [c for c in citizens if c.periods]
    if not enrolled:
        raise BenchError("no enrolled citizens to place")
    sample = enrolled[:: max(1, len(enrolled) // 4000)]
    mean_weeks = 8.0
    for _ in range(6):  # the count falls as the mean length grows: a few secant steps
        trial: list[Placement] = []
        trial_rng = random.Random(rng.random())
        for c in sample:
            schedule(trial_rng, 0, Citizen(c.id, c.birth, c.periods), today, mean_weeks, trial)
        per_citizen = len(trial) / len(sample)
        goal = wanted * OVERSHOOT / len(enrolled)
        if abs(per_citizen / goal - 1) < 0.01:
            break
        # Placements per citizen go roughly with 1 / (mean length + the gaps between).
        mean_weeks = max(2.5, (mean_weeks + 1.8) * per_citizen / goal - 1.8)
    for attempt in range(4):
        placements: list[Placement] = []
        for index, citizen in enumerate(citizens):
            schedule(rng, index, citizen, today, mean_weeks, placements)
        if len(placements) >= wanted:
            break
        say(f"  {len(placements):,} placements with a mean of {mean_weeks:.1f} weeks; "
            "planning again with shorter ones")
        mean_weeks = max(2.5, mean_weeks * len(placements) / (wanted * OVERSHOOT))
        if attempt == 3:
            raise BenchError(f"the citizens' enrolment periods hold only {len(placements):,} "
                             f"placements; ask for fewer (--placements)")
    surplus = len(placements) - wanted
    if surplus:
        dropped = set(rng.sample(range(len(placements)), surplus))
        placements = [p for k, p in enumerate(placements) if k not in dropped]
    for p in placements:
        citizens[p.citizen].placements.append(p)
    return placements, mean_weeks


def _month(day: int) -> int:
    d = date.fromordinal(day)
    return d.year * 12 + d.month - 1


def _month_bounds(month: int) -> tuple[int, int]:
    year, m = divmod(month, 12)
    first = date(year, m + 1, 1).toordinal()
    following = date(year + (m + 1) // 12, (m + 1) % 12 + 1, 1).toordinal()
    return first, following - 1


def assign_contracts(rng: random.Random, placements: list[Placement],
                     contracts: list[Contract]) -> None:
    """Each placement goes to a contract that covers its offer type and whole period,
    chosen at random among those running through the month it starts in (framework
    agreements always do)."""
    months = {_month(p.first) for p in placements}
    buckets: dict[tuple[str, int], list[int]] = {}
    for month in months:
        first, last = _month_bounds(month)
        for c in contracts:
            if c.first <= first and c.last >= last:
                for offer in c.offer_types:
                    buckets.setdefault((offer, month), []).append(c.index)
    longs: dict[str, list[int]] = {}
    for c in contracts:
        if c.long:
            for offer in c.offer_types:
                longs.setdefault(offer, []).append(c.index)
    month_of: dict[int, int] = {}
    for p in placements:
        month = month_of.get(p.first)
        if month is None:
            month = month_of[p.first] = _month(p.first)
        chosen = -1
        candidates = buckets.get((p.offer, month))
        if candidates:
            for _ in range(3):
                c = candidates[rng.randrange(len(candidates))]
                if contracts[c].last >= p.end:
                    chosen = c
                    break
        if chosen < 0:
            chosen = rng.choice(longs[p.offer])
        assert contracts[chosen].covers(p.offer, p.first, p.end)
        p.contract = chosen
        contracts[chosen].placements += 1


def assign_cohorts(rng: random.Random, placements: list[Placement], contracts: list[Contract],
                   cohorts: list[Cohort]) -> None:
    """Some placements of group offer types join a cohort of their contract and offer type:
    taken in order of start, each joins an open cohort with room on its first day (the
    busiest day it will see: every member already there started earlier), else a new one."""
    groups: dict[tuple[int, str], list[Placement]] = {}
    for p in placements:
        if p.offer in GROUP_OFFERS and rng.random() < COHORT_SHARE:
            groups.setdefault((p.contract, p.offer), []).append(p)
    for (contract, offer), members in sorted(groups.items()):
        members.sort(key=lambda p: p.first)
        open_ones: list[tuple[Cohort, list[int]]] = []  # (cohort, heap of members' last days)
        for p in members:
            home = None
            for cohort, lasts in open_ones:
                while lasts and lasts[0] < p.first:
                    heapq.heappop(lasts)
                if len(lasts) < cohort.max_size:
                    home = (cohort, lasts)
                    break
            if home is None:
                if len(open_ones) >= COHORTS_OPEN_PER_GROUP:
                    continue  # no room anywhere: the placement stays individual
                cohort = Cohort(index=len(cohorts), contract=contract, offer=offer,
                                max_size=rng.randint(6, 15),
                                created_on=p.first - rng.randint(1, 14))
                cohorts.append(cohort)
                home = (cohort, [])
                open_ones.append(home)
            cohort, lasts = home
            heapq.heappush(lasts, p.last)
            cohort.members.append(p)
            p.cohort = cohort.index
            if len(cohort.members) >= COHORT_LIFETIME * cohort.max_size:
                open_ones.remove(home)  # full course: it takes no one new


def peak_occupancy(placements: Iterable[Placement]) -> int:
    """The most placements occupying one day (a day is free from `ended` on)."""
    events = []
    for p in placements:
        if p.last >= p.first:
            events.append((p.first, 1))
            events.append((p.last + 1, -1))
    events.sort()  # on one day, departures (-1) before arrivals
    running = best = 0
    for _, delta in events:
        running += delta
        best = max(best, running)
    return best


def set_capacities(placements: list[Placement], contracts: list[Contract]) -> None:
    """Capacity: the plan's busiest day plus room for the placements the bench makes."""
    by_contract: dict[int, list[Placement]] = {}
    for p in placements:
        by_contract.setdefault(p.contract, []).append(p)
    for c in contracts:
        c.peak = peak_occupancy(by_contract.get(c.index, []))
        c.capacity = c.peak + max(25, c.peak // 10)


def make_plan(seed: int, citizens: list[Citizen], wanted: int, providers: int,
              programme_start: date, today: date, say: Callable[[str], None]) -> Plan:
    rng = random.Random(seed * 7_000_003 + 11)
    today_o = today.toordinal()
    contracts = plan_contracts(rng, providers, programme_start.toordinal(), today_o)
    placements, mean_weeks = plan_placements(rng, citizens, wanted, today_o, say)
    assign_contracts(rng, placements, contracts)
    cohorts: list[Cohort] = []
    assign_cohorts(rng, placements, contracts, cohorts)
    set_capacities(placements, contracts)
    for p in placements:
        p.id = str(new_id(rng))
    for cohort in cohorts:
        cohort.id = str(new_id(rng))
    return Plan(citizens, contracts, placements, cohorts, providers, today_o, mean_weeks)


# Reading the citizens back ------------------------------------------------------------------
def read_citizens(dsn: str) -> list[Citizen]:
    """Every citizen's id, birth date and enrolment periods, as the citizens service has
    them (ordered by id, so the plan is the same for the same seed)."""
    import psycopg

    citizens: list[Citizen] = []
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT c.id, c.birth_date, e.enrolled_on, e.exited_on FROM citizen c "
            "LEFT JOIN enrolment e ON e.citizen_id = c.id ORDER BY c.id, e.enrolled_on")
        current: Citizen | None = None
        for citizen_id, birth, enrolled_on, exited_on in rows:
            if current is None or current.id != citizen_id:
                current = Citizen(citizen_id, birth, [])
                citizens.append(current)
            if enrolled_on is not None:
                current.periods.append((enrolled_on.toordinal(),
                                        exited_on.toordinal() if exited_on else None))
    return citizens


# COPY ----------------------------------------------------------------------------------------
def _chunks(lines: Iterator[str], size: int) -> Iterator[str]:
    buffer = io.StringIO()
    count = 0
    for line in lines:
        buffer.write(line)
        count += 1
        if count == size:
            yield buffer.getvalue()
            buffer = io.StringIO()
            count = 0
    if count:
        yield buffer.getvalue()


def _caseworker(rng: random.Random) -> str:
    return f"bench-caseworker-{rng.randrange(CASEWORKERS):02d}"


def cohort_lines(plan: Plan, rng: random.Random) -> Iterator[str]:
    for cohort in plan.cohorts:
        contract = plan.contracts[cohort.contract]
        yield "\t".join((
            cohort.id, contract.id, contract.provider_id, cohort.offer,
            f"Hold {cohort.index + 1} ({cohort.offer})", str(cohort.max_size),
            f"Lokation {cohort.index % 23 + 1}", _caseworker(rng),
            stamp(cohort.created_on, rng))) + "\n"


def cap_lines(plan: Plan, rng: random.Random) -> tuple[list[str], list[str]]:
    caps, changes = [], []
    for citizen in plan.citizens:
        if not citizen.cap:
            continue
        who, at = _caseworker(rng), stamp(citizen.cap_set_on, rng)
        caps.append("\t".join((str(citizen.id), str(citizen.cap), "Vurdering ved opstart",
                               who, at)) + "\n")
        changes.append("\t".join((str(new_id(rng)), str(citizen.id), str(citizen.cap), NULL,
                                  "Vurdering ved opstart", who, at)) + "\n")
    return caps, changes


def placement_lines(plan: Plan, rng: random.Random) -> Iterator[str]:
    citizen_ids = [str(c.id) for c in plan.citizens]
    cohort_ids = [c.id for c in plan.cohorts]
    for p in plan.placements:
        contract = plan.contracts[p.contract]
        citizen = plan.citizens[p.citizen]
        made = max(citizen.cap_set_on, p.first - rng.randrange(15))
        yield "\t".join((
            p.id, citizen_ids[p.citizen], contract.id, contract.provider_id,
            cohort_ids[p.cohort] if p.cohort >= 0 else NULL, p.offer, iso(p.first),
            iso(p.end), iso(p.ended) if p.ended is not None else NULL,
            rng.choice(END_REASONS) if p.ended is not None else NULL, str(p.tenths),
            str(contract.weekly_price_ore),
            iso(max(p.first - rng.randrange(3), made)) if rng.random() < NOTICE_SHARE
            else NULL,
            _caseworker(rng), stamp(made, rng))) + "\n"


def load_activation(dsn: str, plan: Plan, seed: int, say: Callable[[str], None]) -> float:
    """COPY the plan into the activation database; returns the seconds it took."""
    import psycopg

    rng = random.Random(seed * 31 + 7)
    began = time.perf_counter()
    with psycopg.connect(dsn) as connection:
        caps, changes = cap_lines(plan, rng)
        seats = [f"{c.id}\t{c.capacity}\n" for c in plan.contracts if c.placements]
        with connection.transaction(), connection.cursor() as cursor:
            for table, columns, lines in (
                    ("cohort", COHORT_COLUMNS, list(cohort_lines(plan, rng))),
                    ("hours_cap", CAP_COLUMNS, caps),
                    ("hours_cap_change", CAP_CHANGE_COLUMNS, changes),
                    ("contract_seats", ("contract_id", "capacity"), seats)):
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for chunk in _chunks(iter(lines), 20_000):
                        copy.write(chunk)
        done = 0
        last_note = time.monotonic()
        for chunk in _chunks(placement_lines(plan, rng), 50_000):
            with connection.transaction(), connection.cursor() as cursor, cursor.copy(
                    f"COPY placement ({', '.join(PLACEMENT_COLUMNS)}) FROM STDIN") as copy:
                copy.write(chunk)
            done += chunk.count("\n")
            if time.monotonic() - last_note > 15 or done == len(plan.placements):
                last_note = time.monotonic()
                say(f"  {done:>9,} placements loaded")
    return time.perf_counter() - began


# Checks ------------------------------------------------------------------------------------
CHECKS = (
    ("placements outside every enrolment period of their citizen", """
        SELECT count(*) FROM placement p WHERE NOT EXISTS (
            SELECT 1 FROM bench_enrolment e WHERE e.citizen_id = p.citizen_id
            AND e.enrolled_on <= p.starts_on
            AND (e.exited_on IS NULL OR e.exited_on > p.ends_on))"""),
    ("placements before the citizen's cap was set, or without a cap", """
        SELECT count(*) FROM placement p LEFT JOIN hours_cap c USING (citizen_id)
        WHERE c.citizen_id IS NULL OR p.starts_on < (c.set_at AT TIME ZONE 'UTC')::date"""),
    ("placements breaking the age rules at their start", """
        SELECT count(*) FROM placement p JOIN bench_citizen c ON c.id = p.citizen_id
        WHERE (p.offer_type = 'youth_education'
               AND extract(year FROM age(p.starts_on, c.birth_date)) >= 30)
           OR (p.offer_type = 'employment_course_30plus'
               AND extract(year FROM age(p.starts_on, c.birth_date)) < 30)"""),
    ("mentor_company placements longer than 28 days", """
        SELECT count(*) FROM placement
        WHERE offer_type = 'mentor_company' AND ends_on - starts_on + 1 > 28"""),
    ("placements ended outside their period", """
        SELECT count(*) FROM placement
        WHERE ended_on IS NOT NULL AND NOT (ended_on > starts_on AND ended_on <= ends_on + 1)"""),
    ("placements their contract does not cover (type, period, provider, price)", """
        SELECT count(*) FROM placement p JOIN bench_contract k ON k.id = p.contract_id
        WHERE NOT (p.offer_type = ANY (k.offer_types)) OR p.starts_on < k.starts_on
           OR p.ends_on > k.ends_on OR p.provider_id <> k.provider_id
           OR p.weekly_price_ore <> k.weekly_price_ore"""),
    ("contracts over capacity on some day", """
        WITH ev AS (
            SELECT contract_id AS k, starts_on AS d, 1 AS delta FROM placement
            WHERE coalesce(ended_on, ends_on + 1) > starts_on
            UNION ALL
            SELECT contract_id, coalesce(ended_on, ends_on + 1), -1 FROM placement
            WHERE coalesce(ended_on, ends_on + 1) > starts_on),
        run AS (SELECT k, sum(delta) OVER (PARTITION BY k ORDER BY d, delta
                                           ROWS UNBOUNDED PRECEDING) AS n FROM ev)
        SELECT count(*) FROM (SELECT k, max(n) AS peak FROM run GROUP BY k) AS r
        JOIN bench_contract c ON c.id = r.k WHERE r.peak > c.capacity"""),
    ("cohorts over max_size on some day, or with members of another contract or type", """
        WITH ev AS (
            SELECT cohort_id AS k, starts_on AS d, 1 AS delta FROM placement
            WHERE cohort_id IS NOT NULL AND coalesce(ended_on, ends_on + 1) > starts_on
            UNION ALL
            SELECT cohort_id, coalesce(ended_on, ends_on + 1), -1 FROM placement
            WHERE cohort_id IS NOT NULL AND coalesce(ended_on, ends_on + 1) > starts_on),
        run AS (SELECT k, sum(delta) OVER (PARTITION BY k ORDER BY d, delta
                                           ROWS UNBOUNDED PRECEDING) AS n FROM ev)
        SELECT (SELECT count(*) FROM (SELECT k, max(n) AS peak FROM run GROUP BY k) AS r
                JOIN cohort c ON c.id = r.k WHERE r.peak > c.max_size)
             + (SELECT count(*) FROM placement p JOIN cohort c ON c.id = p.cohort_id
                WHERE p.contract_id <> c.contract_id OR p.offer_type <> c.offer_type)"""),
    ("citizen-weeks over the cap (each placement counted in full in every ISO week it "
     "touches)", """
        WITH weeks AS (
            SELECT p.citizen_id, w, sum(p.weekly_tenths) AS tenths
            FROM placement p, generate_series(
                date_trunc('week', p.starts_on)::date,
                coalesce(p.ended_on - 1, p.ends_on), interval '1 week') AS w
            WHERE coalesce(p.ended_on - 1, p.ends_on) >= p.starts_on
            GROUP BY 1, 2)
        SELECT count(*) FROM weeks JOIN hours_cap c USING (citizen_id)
        WHERE weeks.tenths > c.weekly_tenths"""),
)


def check_activation(activation_dsn: str, citizens_dsn: str,
                     contracts: list[dict[str, Any]]) -> list[str]:
    """Every rule, in SQL, on what was loaded. The citizens' birth dates and enrolment
    periods are copied from the citizens database, and the contracts as the providers
    service answered them, into temporary tables. Returns one line per check."""
    import psycopg

    lines = []
    with psycopg.connect(citizens_dsn) as source, psycopg.connect(activation_dsn) as target:
        target.execute("CREATE TEMP TABLE bench_citizen (id uuid PRIMARY KEY, "
                       "birth_date date NOT NULL)")
        target.execute("CREATE TEMP TABLE bench_enrolment (citizen_id uuid NOT NULL, "
                       "enrolled_on date NOT NULL, exited_on date)")
        target.execute("CREATE TEMP TABLE bench_contract (id uuid PRIMARY KEY, "
                       "provider_id uuid, offer_types text[], starts_on date, ends_on date, "
                       "capacity int, weekly_price_ore int)")
        for query, table in (
                ("COPY citizen (id, birth_date) TO STDOUT", "bench_citizen (id, birth_date)"),
                ("COPY enrolment (citizen_id, enrolled_on, exited_on) TO STDOUT",
                 "bench_enrolment (citizen_id, enrolled_on, exited_on)")):
            with source.cursor().copy(query) as out, \
                    target.cursor().copy(f"COPY {table} FROM STDIN") as into:
                for data in out:
                    into.write(data)
        target.execute("CREATE INDEX ON bench_enrolment (citizen_id)")
        with target.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO bench_contract VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [(c["id"], c["provider_id"], c["offer_types"], c["starts_on"], c["ends_on"],
                  c["capacity"], c["weekly_price_ore"]) for c in contracts])
        target.execute("ANALYZE bench_citizen")
        target.execute("ANALYZE bench_enrolment")
        failures = []
        for name, sql in CHECKS:
            began = time.perf_counter()
            found = target.execute(sql).fetchone()[0]
            lines.append(f"{found:>6} {name} ({time.perf_counter() - began:.1f} s)")
            if found:
                failures.append(f"{found} {name}")
        target.rollback()
    if failures:
        raise BenchError("the loaded data breaks the rules: " + "; ".join(failures))
    return lines
