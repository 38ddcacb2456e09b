"""The citizens service's rules: registration, lookup, changes, enrolment and exit.

Every read and write of a citizen is audited here, with the citizen's id. The CPR number
lives only in the request body, encrypted in the row, and as a keyed hash; it appears in
no answer (only `cpr_masked`), no log line, no audit entry and no error.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import and_, exists, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from services.platform.audit import record_access
from services.platform.clock import age_on
from services.platform.cpr import parse_cpr
from services.platform.crypto import FieldCipher, KeyedHasher
from services.platform.pagination import paginate
from services.platform.problems import (
    Conflict,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unprocessable,
)
from services.platform.scopes import Role
from services.platform.tokens import Principal

from .models import Citizen, CitizenChange, Enrolment
from .schemas import (
    CitizenCreate,
    CitizenOut,
    CitizenPatch,
    CitizenStatus,
    EnrolmentCreate,
    ExitCreate,
)

CPR_CONTEXT = "citizen.cpr"
CPR_HASH_PURPOSE = "cpr"


class CitizenExists(Conflict):
    code, title = "citizen_exists", "A citizen with this CPR number is registered"


class AlreadyEnrolled(Conflict):
    code, title = "already_enrolled", "The citizen is already enrolled"


class NotEnrolled(Conflict):
    code, title = "not_enrolled", "The citizen is not enrolled"


class ExitBeforeEnrolment(Unprocessable):
    code, title = "exit_before_enrolment", "The exit date is before the enrolment date"


class EnrolmentOverlaps(Unprocessable):
    code, title = "enrolment_overlaps", "The enrolment would overlap an earlier period"


class DateInFuture(Unprocessable):
    code, title = "date_in_future", "The date lies in the future"


@dataclass(frozen=True)
class CprKeys:
    cipher: FieldCipher
    hasher: KeyedHasher

    def hash(self, digits: str) -> str:
        return self.hasher.hash(digits, purpose=CPR_HASH_PURPOSE)


def purpose_of(principal: Principal) -> str:
    return "service_check" if principal.role is Role.service else "case_handling"


def _audit(session: Session, principal: Principal, action: str,
           citizen_id: uuid.UUID) -> None:
    record_access(session, principal, action=action, resource=f"citizen/{citizen_id}",
                  purpose=purpose_of(principal), citizen_id=citizen_id)


# Status -----------------------------------------------------------------------------
def statuses(session: Session, citizen_ids: list[uuid.UUID]) -> dict[uuid.UUID, CitizenStatus]:
    """Each citizen's status from the enrolment records, in one query."""
    if not citizen_ids:
        return {}
    rows = session.exec(
        select(Enrolment.citizen_id, func.count(), func.count(Enrolment.exited_on))
        .where(Enrolment.citizen_id.in_(citizen_ids))  # type: ignore[attr-defined]
        .group_by(Enrolment.citizen_id)
    ).all()
    result = dict.fromkeys(citizen_ids, CitizenStatus.not_enrolled)
    for citizen_id, periods, closed in rows:
        result[citizen_id] = CitizenStatus.enrolled if closed < periods else CitizenStatus.exited
    return result


def citizen_out(citizen: Citizen, status: CitizenStatus, today: date) -> CitizenOut:
    return CitizenOut(
        id=citizen.id, name=citizen.name, cpr_masked=f"{citizen.birth_date:%d%m%y}-XXXX",
        birth_date=citizen.birth_date, age=age_on(citizen.birth_date, today),
        benefit=citizen.benefit, readiness=citizen.readiness, status=status,
    )


def etag(citizen: Citizen) -> str:
    return f'"{citizen.version}"'


# Citizens -----------------------------------------------------------------------------
def register_citizen(session: Session, principal: Principal, data: CitizenCreate,
                     keys: CprKeys) -> Citizen:
    cpr = parse_cpr(data.cpr)
    cpr_hash = keys.hash(cpr.digits)
    existing = session.exec(select(Citizen.id).where(Citizen.cpr_hash == cpr_hash)).first()
    if existing is not None:
        raise CitizenExists(id=str(existing))
    now = datetime.now(UTC)
    citizen = Citizen(
        cpr_encrypted="", cpr_hash=cpr_hash, birth_date=cpr.birth_date, name=data.name,
        benefit=data.benefit.value, readiness=data.readiness.value, created_at=now,
        updated_at=now,
    )
    # The row id is part of the associated data: a ciphertext cannot be moved to another row.
    citizen.cpr_encrypted = keys.cipher.encrypt(cpr.digits, context=f"{CPR_CONTEXT}:{citizen.id}")
    try:
        with session.begin_nested():
            session.add(citizen)
    except IntegrityError:  # registered by a concurrent request a moment ago
        existing = session.exec(select(Citizen.id).where(Citizen.cpr_hash == cpr_hash)).one()
        raise CitizenExists(id=str(existing)) from None
    _audit(session, principal, "citizen.create", citizen.id)
    return citizen


def lookup_citizen(session: Session, principal: Principal, cpr_digits: str,
                   keys: CprKeys) -> uuid.UUID:
    citizen_id = session.exec(
        select(Citizen.id).where(Citizen.cpr_hash == keys.hash(cpr_digits))).first()
    if citizen_id is None:
        raise NotFound("No citizen with this CPR number.")
    _audit(session, principal, "citizen.lookup", citizen_id)
    return citizen_id


def _load(session: Session, citizen_id: uuid.UUID, *, for_update: bool = False) -> Citizen:
    statement = select(Citizen).where(Citizen.id == citizen_id)
    if for_update:
        # PostgreSQL: one writer per citizen at a time. SQLite: BEGIN IMMEDIATE already.
        statement = statement.with_for_update()
    citizen = session.exec(statement).first()
    if citizen is None:
        raise NotFound("No such citizen.")
    return citizen


def _load_audited(session: Session, principal: Principal, citizen_id: uuid.UUID, action: str,
                  *, for_update: bool = False) -> Citizen:
    """Load a citizen and put the access on record before any rule can refuse it: a
    refusal is then recorded with its code as the outcome."""
    citizen = _load(session, citizen_id, for_update=for_update)
    _audit(session, principal, action, citizen.id)
    return citizen


def get_citizen(session: Session, principal: Principal, citizen_id: uuid.UUID) -> Citizen:
    return _load_audited(session, principal, citizen_id, "citizen.read")


def list_citizens(
    session: Session, principal: Principal, *, status: CitizenStatus | None,
    enrolled_from: date | None, enrolled_to: date | None, limit: int, cursor: str | None,
) -> tuple[list[Citizen], str | None]:
    statement = select(Citizen)
    any_period = exists().where(Enrolment.citizen_id == Citizen.id)
    open_period = exists().where(Enrolment.citizen_id == Citizen.id,
                                 Enrolment.exited_on.is_(None))  # type: ignore[union-attr]
    if status is CitizenStatus.enrolled:
        statement = statement.where(open_period)
    elif status is CitizenStatus.exited:
        statement = statement.where(any_period, ~open_period)
    elif status is CitizenStatus.not_enrolled:
        statement = statement.where(~any_period)
    if enrolled_from or enrolled_to:
        in_range = [Enrolment.citizen_id == Citizen.id]
        if enrolled_from:
            in_range.append(Enrolment.enrolled_on >= enrolled_from)
        if enrolled_to:
            in_range.append(Enrolment.enrolled_on <= enrolled_to)
        statement = statement.where(exists().where(and_(*in_range)))
    citizens, next_cursor = paginate(session, statement,
                                     order_by=(Citizen.created_at, Citizen.id),
                                     limit=limit, cursor=cursor)
    for citizen in citizens:
        _audit(session, principal, "citizen.list", citizen.id)
    return citizens, next_cursor


def parse_if_match(header: str | None) -> int:
    if header is None:
        raise PreconditionRequired("Send If-Match with the ETag from GET /v1/citizens/{id}.")
    value = header.strip().removeprefix("W/").strip('"')
    # ASCII digits only: str.isdigit() also holds for the superscripts of Latin-1 (a
    # header's charset), which int() cannot read.
    if not (value.isascii() and value.isdigit()):
        raise PreconditionRequired("If-Match must carry the ETag from GET /v1/citizens/{id}.")
    return int(value)


def update_citizen(session: Session, principal: Principal, citizen_id: uuid.UUID,
                   if_match: str | None, patch: CitizenPatch) -> Citizen:
    citizen = _load_audited(session, principal, citizen_id, "citizen.update", for_update=True)
    expected = parse_if_match(if_match)
    if citizen.version != expected:
        raise PreconditionFailed("The citizen has changed since you read it; read it again.")
    now = datetime.now(UTC)
    changes = []
    for field in sorted(patch.model_fields_set):
        new = str(getattr(patch, field))
        old = str(getattr(citizen, field))
        if new != old:
            setattr(citizen, field, new)
            changes.append((field, old, new))
    if changes:
        citizen.version += 1
        citizen.updated_at = now
        for field, old, new in changes:
            session.add(CitizenChange(citizen_id=citizen.id, version=citizen.version,
                                      field=field, old_value=old, new_value=new,
                                      changed_by=principal.client_id, changed_at=now))
        session.add(citizen)
        session.flush()
    return citizen


def citizen_changes(session: Session, principal: Principal,
                    citizen_id: uuid.UUID) -> list[CitizenChange]:
    citizen = get_citizen(session, principal, citizen_id)
    return list(session.exec(
        select(CitizenChange).where(CitizenChange.citizen_id == citizen.id)
        .order_by(CitizenChange.version, CitizenChange.field)))


# Enrolment periods ----------------------------------------------------------------------
def _periods(session: Session, citizen_id: uuid.UUID) -> list[Enrolment]:
    return list(session.exec(select(Enrolment).where(Enrolment.citizen_id == citizen_id)
                             .order_by(Enrolment.enrolled_on, Enrolment.created_at)))


def _not_in_future(day: date, today: date) -> None:
    if day > today:
        raise DateInFuture("Enrolments and exits are recorded when they have happened.")


def enrol(session: Session, principal: Principal, citizen_id: uuid.UUID,
          data: EnrolmentCreate, today: date) -> Enrolment:
    citizen = _load_audited(session, principal, citizen_id, "enrolment.create", for_update=True)
    _not_in_future(data.enrolled_on, today)
    periods = _periods(session, citizen.id)
    if any(p.exited_on is None for p in periods):
        raise AlreadyEnrolled()
    # Periods never overlap: a new one starts on or after the last exit day (the exit
    # day is the first day not enrolled).
    if periods and data.enrolled_on < max(p.exited_on for p in periods if p.exited_on):
        raise EnrolmentOverlaps("A new enrolment starts on or after the last exit date.")
    if periods:
        periods[-1].next_enrolled_on = data.enrolled_on
        session.add(periods[-1])
    enrolment = Enrolment(citizen_id=citizen.id, enrolled_on=data.enrolled_on,
                          referral_source=data.referral_source.value,
                          enrolled_by=principal.client_id, created_at=datetime.now(UTC))
    try:
        with session.begin_nested():
            session.add(enrolment)
    except IntegrityError:  # the partial unique index: an open enrolment appeared
        raise AlreadyEnrolled() from None
    return enrolment


def exit_programme(session: Session, principal: Principal, citizen_id: uuid.UUID,
                   data: ExitCreate, today: date) -> Enrolment:
    citizen = _load_audited(session, principal, citizen_id, "enrolment.exit", for_update=True)
    _not_in_future(data.exited_on, today)
    current = session.exec(select(Enrolment).where(Enrolment.citizen_id == citizen.id,
                                                   Enrolment.exited_on.is_(None))  # type: ignore[union-attr]
                           ).first()
    if current is None:
        raise NotEnrolled()
    if data.exited_on < current.enrolled_on:
        raise ExitBeforeEnrolment()
    current.exited_on = data.exited_on
    current.exit_reason = data.reason.value
    current.exited_by = principal.client_id
    session.add(current)
    session.flush()
    return current


def enrolments_of(session: Session, principal: Principal,
                  citizen_id: uuid.UUID) -> list[Enrolment]:
    citizen = get_citizen(session, principal, citizen_id)
    return _periods(session, citizen.id)


def eligibility(session: Session, principal: Principal,
                citizen_id: uuid.UUID) -> tuple[Citizen, CitizenStatus, list[Enrolment]]:
    citizen = _load_audited(session, principal, citizen_id, "citizen.eligibility")
    return citizen, statuses(session, [citizen.id])[citizen.id], _periods(session, citizen.id)


def enrolled_during(session: Session, first: date, last: date, *, limit: int,
                    cursor: str | None) -> tuple[list[uuid.UUID], str | None]:
    """Citizens with a period that overlaps [first, last] (for the activation service's
    weekly conversation list). Ids only: no name, no CPR."""
    overlapping = exists().where(
        Enrolment.citizen_id == Citizen.id, Enrolment.enrolled_on <= last,
        (Enrolment.exited_on.is_(None)) | (Enrolment.exited_on > first))  # type: ignore[union-attr]
    citizens, next_cursor = paginate(session, select(Citizen).where(overlapping),
                                     order_by=(Citizen.created_at, Citizen.id),
                                     limit=limit, cursor=cursor)
    return [c.id for c in citizens], next_cursor
