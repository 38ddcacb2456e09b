"""Attendance reported by providers: all-or-nothing batches, corrections as versions.

A batch is refused whole (and nothing is stored) when one record names a placement that
is not the caller's (404, as if it did not exist), a day in the future, or a day the
placement does not cover (422). An unexcused absence opens a sanction case in the same
transaction; a correction away from it before a decision withdraws the case.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import insert, update
from sqlmodel import Session, select

from services.platform.crypto import KeyedHasher
from services.platform.idempotency import (
    StoredResponse,
    claim_idempotency_key,
    request_fingerprint,
    store_idempotent_response,
)
from services.platform.pagination import paginate
from services.platform.problems import NotFound, Unprocessable
from services.platform.tokens import Principal

from .audit import audit_citizen
from .models import AttendanceRecord, Placement
from .placements import own_provider
from .sanctions import open_absence_cases, withdraw_absence_cases
from .schedule import occupies
from .schemas import AttendanceBatch, AttendanceStatus, to_tenths

UNEXCUSED = AttendanceStatus.absent_unexcused.value


class AttendanceInFuture(Unprocessable):
    code, title = "attendance_date_in_future", "Attendance cannot be reported ahead"


class AttendanceOutsidePlacement(Unprocessable):
    code, title = "attendance_outside_placement", "The placement does not cover that day"


@dataclass(frozen=True)
class IngestResult:
    status_code: int
    body: dict[str, Any]


def ingest(session: Session, principal: Principal, batch: AttendanceBatch, *,
           idempotency_key: str | None, hasher: KeyedHasher, today: date) -> IngestResult:
    provider = own_provider(principal)
    if provider is None:  # only providers report attendance, for their own placements
        raise NotFound("No such placement.")
    if idempotency_key is not None:
        fingerprint = request_fingerprint(hasher, "POST", "/v1/attendance",
                                          batch.model_dump_json().encode())
        stored: StoredResponse | None = claim_idempotency_key(
            session, principal.client_id, idempotency_key, fingerprint)
        if stored is not None:
            return IngestResult(stored.status_code, stored.body)

    wanted = sorted({r.placement_id for r in batch.records})
    # Locked in id order: concurrent batches for the same placements queue, never cross.
    placements = {p.id: p for p in session.exec(
        select(Placement).where(Placement.id.in_(wanted))  # type: ignore[attr-defined]
        .order_by(Placement.id).with_for_update())}
    for placement_id in wanted:
        placement = placements.get(placement_id)
        if placement is None or placement.provider_id != provider:
            raise NotFound("A record names a placement that does not exist.",
                           placement_id=str(placement_id))
    for index, record in enumerate(batch.records):
        if record.date > today:
            raise AttendanceInFuture(index=index)
        if not occupies(placements[record.placement_id], record.date, record.date):
            raise AttendanceOutsidePlacement(index=index)

    current = {(r.placement_id, r.day): r for r in session.exec(
        select(AttendanceRecord).where(
            AttendanceRecord.placement_id.in_(wanted),  # type: ignore[attr-defined]
            AttendanceRecord.day.in_({r.date for r in batch.records}),  # type: ignore[attr-defined]
            AttendanceRecord.current.is_(True)))}  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    answers: list[dict[str, Any]] = []
    new_rows: list[dict[str, Any]] = []
    superseded: list[uuid.UUID] = []
    to_open: list[tuple[uuid.UUID, uuid.UUID, date]] = []
    to_withdraw: list[tuple[uuid.UUID, date]] = []
    for record in batch.records:
        placement = placements[record.placement_id]
        previous = current.get((record.placement_id, record.date))
        hours = to_tenths(record.hours) if record.hours is not None else None
        if previous is not None and (previous.status, previous.hours_tenths) == (
            record.status.value, hours
        ):
            answers.append(_answer(previous.id, previous.placement_id, previous.day,
                                   previous.status, previous.late_report))
            continue  # the same report again: nothing changes
        if previous is not None:
            superseded.append(previous.id)
        row = {"id": uuid.uuid4(), "placement_id": placement.id,
               "citizen_id": placement.citizen_id, "provider_id": placement.provider_id,
               "day": record.date, "version": previous.version + 1 if previous else 1,
               "status": record.status.value, "hours_tenths": hours,
               "late_report": today > record.date, "current": True,
               "reported_by": principal.client_id, "reported_at": now}
        new_rows.append(row)
        answers.append(_answer(row["id"], placement.id, record.date, row["status"],
                               row["late_report"]))
        was_unexcused = previous is not None and previous.status == UNEXCUSED
        if record.status.value == UNEXCUSED and not was_unexcused:
            to_open.append((placement.citizen_id, placement.id, record.date))
        elif was_unexcused and record.status.value != UNEXCUSED:
            to_withdraw.append((placement.id, record.date))
    # A few statements for the whole batch, not one per record: batches are 1,000 long.
    if superseded:
        session.execute(update(AttendanceRecord)
                        .where(AttendanceRecord.id.in_(superseded))  # type: ignore[attr-defined]
                        .values(current=False))
    if new_rows:
        session.execute(insert(AttendanceRecord), new_rows)
    withdraw_absence_cases(session, to_withdraw)
    open_absence_cases(session, to_open)
    for citizen_id in sorted({p.citizen_id for p in placements.values()}):
        audit_citizen(session, principal, "attendance.report", citizen_id)

    body = {"accepted": len(answers), "records": answers}
    if idempotency_key is not None:
        store_idempotent_response(session, principal.client_id, idempotency_key, 200, body)
    return IngestResult(200, body)


def _answer(record_id: uuid.UUID, placement_id: uuid.UUID, day: date, status: str,
            late_report: bool) -> dict[str, Any]:
    return {"id": str(record_id), "placement_id": str(placement_id), "date": day.isoformat(),
            "status": status, "late_report": late_report}


def _visible_record(session: Session, principal: Principal,
                    record_id: uuid.UUID) -> AttendanceRecord:
    record = session.get(AttendanceRecord, record_id)
    provider = own_provider(principal)
    if record is None or (provider is not None and record.provider_id != provider):
        raise NotFound("No such attendance record.")
    return record


def history(session: Session, principal: Principal,
            record_id: uuid.UUID) -> list[AttendanceRecord]:
    record = _visible_record(session, principal, record_id)
    audit_citizen(session, principal, "attendance.history", record.citizen_id)
    return list(session.exec(select(AttendanceRecord).where(
        AttendanceRecord.placement_id == record.placement_id,
        AttendanceRecord.day == record.day).order_by(AttendanceRecord.version)))


def list_current(session: Session, principal: Principal, *, placement_id: uuid.UUID | None,
                 citizen_id: uuid.UUID | None, day_from: date | None, day_to: date | None,
                 limit: int, cursor: str | None) -> tuple[list[AttendanceRecord], str | None]:
    statement = select(AttendanceRecord).where(AttendanceRecord.current.is_(True))  # type: ignore[attr-defined]
    provider = own_provider(principal)
    if provider is not None:
        statement = statement.where(AttendanceRecord.provider_id == provider)
    if placement_id is not None:
        statement = statement.where(AttendanceRecord.placement_id == placement_id)
    if citizen_id is not None:
        statement = statement.where(AttendanceRecord.citizen_id == citizen_id)
    if day_from is not None:
        statement = statement.where(AttendanceRecord.day >= day_from)
    if day_to is not None:
        statement = statement.where(AttendanceRecord.day <= day_to)
    records, next_cursor = paginate(session, statement,
                                    order_by=(AttendanceRecord.day, AttendanceRecord.id),
                                    limit=limit, cursor=cursor)
    for citizen in sorted({r.citizen_id for r in records}):
        audit_citizen(session, principal, "attendance.list", citizen)
    return records, next_cursor
