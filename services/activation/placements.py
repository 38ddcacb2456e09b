"""Cohorts and placements: every rule a placement must pass, in one transaction.

Order: what needs no one else (the start phase), then what other services say (the
citizen is enrolled and old enough, the contract covers type and period), then, under
row locks taken in a fixed order (citizen's cap, contract, cohort), what concurrent
requests could otherwise break: the cap in every week, the contract's seats, the
cohort's room, and the safety measures (asked of the security service while the locks
are held, so two rivals placed at once cannot both get in).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session, select

from services.platform.clock import age_on
from services.platform.pagination import paginate
from services.platform.problems import Conflict, NotFound, Unprocessable
from services.platform.scopes import Role
from services.platform.tokens import Principal
from services.platform.vocabulary import OfferType

from .audit import audit_citizen
from .caps import citizen_placements, lock_cap
from .clients import ContractTerms, GroupDecision, Neighbours
from .locks import insert_if_absent, lock_row, lock_site
from .models import Cohort, ContractSeats, HoursCap, Placement
from .schedule import first_week_over, last_day, most_concurrent, occupies
from .schemas import CohortCreate, PlacementCreate, PlacementEnd, to_tenths
from .weeks import monday_of

MAX_START_PHASE_DAYS = 28  # mentor_company: a clarification start phase of four weeks
YOUTH_AGE_LIMIT = 30


class NotEnrolled(Conflict):
    code, title = "not_enrolled", "The citizen is not enrolled"


class HoursCapNotSet(Conflict):
    code, title = "hours_cap_not_set", "No individual hours cap yet: the assessment comes first"


class HoursCapExceeded(Conflict):
    code, title = "hours_cap_exceeded", "The placement would exceed the citizen's hours cap"


class ContractNotCovering(Unprocessable):
    code, title = "contract_not_covering", "The contract does not cover this placement"


class ContractFull(Conflict):
    code, title = "contract_full", "The contract has no free seat in the period"


class AgeIneligible(Unprocessable):
    code, title = "age_ineligible", "The offer is not for the citizen's age"


class StartPhaseTooLong(Unprocessable):
    code, title = "start_phase_too_long", "A mentor_company start phase is at most 28 days"


class CohortMismatch(Unprocessable):
    code, title = "cohort_mismatch", "The cohort belongs to another contract or offer type"


class CohortFull(Conflict):
    code, title = "cohort_full", "The cohort has no room in the period"


class SecurityMeasures(Conflict):
    code, title = "security_measures", "A safety measure forbids this placement"


class PlacementAlreadyEnded(Conflict):
    code, title = "placement_already_ended", "The placement has already ended"


class InvalidEnd(Unprocessable):
    code, title = "invalid_end_date", "The end date must lie within the placement"


# Visibility -----------------------------------------------------------------------------
def own_provider(principal: Principal) -> uuid.UUID | None:
    """A provider client sees only its own provider's objects; None: sees all."""
    if principal.role is Role.provider:
        return uuid.UUID(principal.provider_id) if principal.provider_id else uuid.UUID(int=0)
    return None


def visible_placement(session: Session, principal: Principal,
                      placement_id: uuid.UUID, *, for_update: bool = False) -> Placement:
    placement = (lock_row(session, Placement, id=placement_id) if for_update
                 else session.get(Placement, placement_id))
    provider = own_provider(principal)
    if placement is None or (provider is not None and placement.provider_id != provider):
        raise NotFound("No such placement.")
    return placement


# Cohorts ----------------------------------------------------------------------------------
def create_cohort(session: Session, principal: Principal, data: CohortCreate,
                  neighbours: Neighbours) -> Cohort:
    terms = known_terms(neighbours.contract_terms(data.contract_id))
    if data.offer_type.value not in terms.offer_types:
        raise ContractNotCovering("The contract does not cover this offer type.")
    cohort = Cohort(contract_id=terms.id, provider_id=terms.provider_id,
                    offer_type=data.offer_type.value, name=data.name, max_size=data.max_size,
                    location=data.location, created_by=principal.client_id,
                    created_at=datetime.now(UTC))
    session.add(cohort)
    session.flush()
    return cohort


def visible_cohort(session: Session, principal: Principal, cohort_id: uuid.UUID) -> Cohort:
    cohort = session.get(Cohort, cohort_id)
    provider = own_provider(principal)
    if cohort is None or (provider is not None and cohort.provider_id != provider):
        raise NotFound("No such cohort.")
    return cohort


def list_cohorts(session: Session, principal: Principal, *, contract_id: uuid.UUID | None,
                 limit: int, cursor: str | None) -> tuple[list[Cohort], str | None]:
    statement = select(Cohort)
    provider = own_provider(principal)
    if provider is not None:
        statement = statement.where(Cohort.provider_id == provider)
    if contract_id is not None:
        statement = statement.where(Cohort.contract_id == contract_id)
    return paginate(session, statement, order_by=(Cohort.created_at, Cohort.id),
                    limit=limit, cursor=cursor)


# Placements --------------------------------------------------------------------------------
def known_terms(terms: ContractTerms | None) -> ContractTerms:
    """The providers service's answer: no contract, no placement or cohort under it."""
    if terms is None:
        raise ContractNotCovering("No such contract.")
    return terms


def check_start_phase(data: PlacementCreate) -> None:
    if data.offer_type is OfferType.mentor_company and (
        (data.ends_on - data.starts_on).days + 1 > MAX_START_PHASE_DAYS
    ):
        raise StartPhaseTooLong()


def check_age(offer_type: OfferType, birth_date: date, starts_on: date) -> None:
    age = age_on(birth_date, starts_on)
    if offer_type is OfferType.youth_education and age >= YOUTH_AGE_LIMIT:
        raise AgeIneligible("youth_education is for citizens under 30 at the start.")
    if offer_type is OfferType.employment_course_30plus and age < YOUTH_AGE_LIMIT:
        raise AgeIneligible("employment_course_30plus is for citizens 30 and over at the start.")


def check_contract_covers(terms: ContractTerms, data: PlacementCreate) -> None:
    if data.offer_type.value not in terms.offer_types:
        raise ContractNotCovering("The contract does not cover this offer type.",
                                  reason="offer_type")
    if data.starts_on < terms.starts_on or data.ends_on > terms.ends_on:
        raise ContractNotCovering("The contract does not cover the whole period.",
                                  reason="period")


def create_placement(session: Session, principal: Principal, data: PlacementCreate,
                     neighbours: Neighbours) -> Placement:
    audit_citizen(session, principal, "placement.create", data.citizen_id)
    check_start_phase(data)
    citizen, found_terms = neighbours.eligibility_and_terms(data.citizen_id, data.contract_id)
    if citizen is None or citizen.open_since is None or citizen.open_since > data.starts_on:
        raise NotEnrolled("The citizen must be enrolled when the placement starts.")
    check_age(data.offer_type, citizen.birth_date, data.starts_on)
    terms = known_terms(found_terms)
    check_contract_covers(terms, data)
    first, last = data.starts_on, data.ends_on

    # Locks, in the fixed order: the citizen's cap, the contract, the cohort.
    cap: HoursCap | None = lock_cap(session, data.citizen_id)
    if cap is None:
        raise HoursCapNotSet()
    insert_if_absent(session, ContractSeats,
                     {"contract_id": terms.id, "capacity": terms.capacity}, ["contract_id"])
    seats: ContractSeats = lock_row(session, ContractSeats, contract_id=terms.id)
    cohort = lock_row(session, Cohort, id=data.cohort_id) if data.cohort_id else None
    if data.cohort_id and cohort is None:
        raise NotFound("No such cohort.")

    if cohort is not None:
        if cohort.contract_id != terms.id or cohort.offer_type != data.offer_type.value:
            raise CohortMismatch()
        members = list(session.exec(select(Placement).where(
            Placement.cohort_id == cohort.id, Placement.starts_on <= last,
            Placement.ends_on >= first)))
        if most_concurrent(members, first, last) >= cohort.max_size:
            raise CohortFull()
    seats.capacity = terms.capacity  # the contract's current capacity
    session.add(seats)
    # Only placements whose period meets this one's (ix_placement_contract_ends): a
    # contract's whole history would cost seconds at a million placements.
    # Only the three dates the count needs: full ORM objects for a busy contract's
    # thousand rows cost more than everything else the placement does.
    at_contract = session.execute(select(
        Placement.starts_on, Placement.ends_on, Placement.ended_on).where(
        Placement.contract_id == terms.id, Placement.starts_on <= last,
        Placement.ends_on >= first)).all()
    if most_concurrent(at_contract, first, last) >= terms.capacity:
        raise ContractFull()

    weekly = to_tenths(data.weekly_hours)
    # Every placement in the ISO weeks this one touches counts, also on other days.
    touching = citizen_placements(session, data.citizen_id, monday_of(first),
                                  monday_of(last) + timedelta(days=6))
    week = first_week_over(touching, first, last, weekly, cap.weekly_tenths)
    if week is not None:
        raise HoursCapExceeded(f"The citizen's hours would exceed the cap in {week}.",
                               week=week)

    member_ids = sorted({p.citizen_id for p in members if occupies(p, first, last)}
                        - {data.citizen_id}) if cohort is not None else []

    def group_check(site_member_ids: list[uuid.UUID] | None) -> GroupDecision:
        return neighbours.group_check(
            data.citizen_id, member_ids=member_ids,
            cohort_max_size=cohort.max_size if cohort is not None else None,
            contract_max_threat_level=terms.max_threat_level, on=first,
            site_member_ids=site_member_ids)

    decision = group_check(None)
    if decision.site_members_needed:
        # The candidate could be in a conflict: rivals are never at the same place (the
        # provider) at the same time either, whatever the contract or cohort.
        lock_site(session, terms.provider_id)
        decision = group_check(citizens_at_site(session, terms.provider_id, first, last,
                                                data.citizen_id))
    if not decision.allowed:
        raise SecurityMeasures(f"The measure {decision.measure} forbids this placement.",
                               measure=decision.measure)

    placement = Placement(
        citizen_id=data.citizen_id, contract_id=terms.id, provider_id=terms.provider_id,
        cohort_id=data.cohort_id, offer_type=data.offer_type.value, starts_on=first,
        ends_on=last, weekly_tenths=weekly, weekly_price_ore=terms.weekly_price_ore,
        absence_notice_given_on=data.absence_notice_given_on,
        created_by=principal.client_id, created_at=datetime.now(UTC))
    session.add(placement)
    session.flush()
    return placement


def citizens_at_site(session: Session, provider_id: uuid.UUID, first: date, last: date,
                     candidate: uuid.UUID) -> list[uuid.UUID]:
    """Everyone placed at the provider on some day of [first, last], the candidate aside."""
    rows = session.exec(select(Placement).where(
        Placement.provider_id == provider_id, Placement.starts_on <= last,
        Placement.ends_on >= first, Placement.citizen_id != candidate))
    return sorted({p.citizen_id for p in rows if occupies(p, first, last)})


def end_placement(session: Session, principal: Principal, placement_id: uuid.UUID,
                  data: PlacementEnd) -> Placement:
    placement = visible_placement(session, principal, placement_id)
    audit_citizen(session, principal, "placement.end", placement.citizen_id)
    lock_cap(session, placement.citizen_id)  # the same lock order as creating
    placement = visible_placement(session, principal, placement_id, for_update=True)
    if placement.ended_on is not None:
        raise PlacementAlreadyEnded()
    if not placement.starts_on <= data.ended_on <= placement.ends_on + timedelta(days=1):
        raise InvalidEnd()
    placement.ended_on = data.ended_on
    placement.end_reason = data.reason
    session.add(placement)
    session.flush()
    return placement


def record_notice(session: Session, principal: Principal, placement_id: uuid.UUID,
                  given_on: date) -> Placement:
    placement = visible_placement(session, principal, placement_id, for_update=True)
    audit_citizen(session, principal, "placement.notice", placement.citizen_id)
    placement.absence_notice_given_on = given_on
    session.add(placement)
    session.flush()
    return placement


def get_placement(session: Session, principal: Principal, placement_id: uuid.UUID) -> Placement:
    placement = visible_placement(session, principal, placement_id)
    audit_citizen(session, principal, "placement.read", placement.citizen_id)
    return placement


def list_placements(session: Session, principal: Principal, *, citizen_id: uuid.UUID | None,
                    contract_id: uuid.UUID | None, limit: int, cursor: str | None
                    ) -> tuple[list[Placement], str | None]:
    statement = select(Placement)
    provider = own_provider(principal)
    if provider is not None:
        statement = statement.where(Placement.provider_id == provider)
    if citizen_id is not None:
        statement = statement.where(Placement.citizen_id == citizen_id)
    if contract_id is not None:
        statement = statement.where(Placement.contract_id == contract_id)
    placements, next_cursor = paginate(session, statement,
                                       order_by=(Placement.created_at, Placement.id),
                                       limit=limit, cursor=cursor)
    for placement in placements:
        audit_citizen(session, principal, "placement.list", placement.citizen_id)
    return placements, next_cursor


def placement_status(placement: Placement, today: date) -> str:
    """`ended` once a caseworker has ended it or its last day has passed; `active` until
    then (also before it starts: it is in force and holds hours and a seat)."""
    last = last_day(placement)
    return "ended" if last is None or last < today else "active"
