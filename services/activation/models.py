"""Tables owned by the activation service.

Hours are stored as integer tenths (7.5 hours -> 75): sums and comparisons stay exact.
What this service copies from others (a contract's provider and weekly price, a cohort's
contract) it copies on purpose, at the moment the placement or cohort is made.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from services.platform.columns import Timestamp


class HoursCap(SQLModel, table=True):
    """A citizen's individual weekly cap. The row is also the lock that serialises every
    change to that citizen's scheduled hours (placements, ends, cap changes)."""

    __tablename__ = "hours_cap"

    citizen_id: uuid.UUID = Field(primary_key=True)
    weekly_tenths: int
    reason: str = Field(max_length=500)
    set_by: str = Field(max_length=200)
    set_at: datetime = Timestamp()


class HoursCapChange(SQLModel, table=True):
    __tablename__ = "hours_cap_change"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    citizen_id: uuid.UUID = Field(index=True)
    weekly_tenths: int
    previous_tenths: int | None = None
    reason: str = Field(max_length=500)
    set_by: str = Field(max_length=200)
    set_at: datetime = Timestamp()


class ContractSeats(SQLModel, table=True):
    """One row per contract that has placements: the lock that serialises seat counting,
    and the capacity as read from the providers service at the last placement."""

    __tablename__ = "contract_seats"

    contract_id: uuid.UUID = Field(primary_key=True)
    capacity: int


class Cohort(SQLModel, table=True):
    __tablename__ = "cohort"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    contract_id: uuid.UUID = Field(index=True)
    provider_id: uuid.UUID = Field(index=True)  # copied from the contract
    offer_type: str = Field(max_length=40)
    name: str = Field(max_length=200)
    max_size: int
    location: str = Field(max_length=200)
    created_by: str = Field(max_length=200)
    created_at: datetime = Timestamp(index=True)


class Placement(SQLModel, table=True):
    __tablename__ = "placement"
    __table_args__ = (
        Index("ix_placement_citizen_period", "citizen_id", "starts_on"),
        Index("ix_placement_contract_period", "contract_id", "starts_on"),
        Index("ix_placement_contract_ends", "contract_id", "ends_on"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    citizen_id: uuid.UUID
    contract_id: uuid.UUID
    provider_id: uuid.UUID = Field(index=True)  # copied from the contract
    cohort_id: uuid.UUID | None = Field(default=None, index=True)
    offer_type: str = Field(max_length=40)
    starts_on: date
    ends_on: date
    # The first day no longer occupied (hours and seat are free from it on). Null while
    # the placement runs to ends_on.
    ended_on: date | None = None
    end_reason: str | None = Field(default=None, max_length=200)
    weekly_tenths: int
    weekly_price_ore: int  # the contract's price, copied when the placement was made
    # When the provider gave the citizen the written notice of what absence means.
    absence_notice_given_on: date | None = None
    created_by: str = Field(max_length=200)
    created_at: datetime = Timestamp(index=True)


class AttendanceRecord(SQLModel, table=True):
    """One version of what a provider reported for one placement and day. A correction
    is a new version; the old ones stay, so the history is never lost."""

    __tablename__ = "attendance_record"
    __table_args__ = (
        UniqueConstraint("placement_id", "day", "version", name="uq_attendance_version"),
        Index("ix_attendance_citizen_day", "citizen_id", "day"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    placement_id: uuid.UUID
    citizen_id: uuid.UUID  # copied from the placement, for the citizen's history
    provider_id: uuid.UUID
    day: date
    version: int
    status: str = Field(max_length=20)
    hours_tenths: int | None = None
    late_report: bool
    current: bool  # the latest version for (placement_id, day)
    reported_by: str = Field(max_length=200)
    reported_at: datetime = Timestamp()


class SanctionCase(SQLModel, table=True):
    """Opened by the rules (an unexcused absence, a missed conversation); decided only by
    a caseworker, after a hearing. No threat data is ever read or stored here."""

    __tablename__ = "sanction_case"
    __table_args__ = (
        Index("ix_sanction_case_status_decide_by", "status", "decide_by"),
        # Exactly one case per absence, whatever the code does (withdrawn ones aside).
        Index("uq_sanction_case_absence", "attendance_placement_id", "occurred_on",
              unique=True,
              postgresql_where=text("status <> 'withdrawn' AND attendance_placement_id "
                                    "IS NOT NULL"),
              sqlite_where=text("status <> 'withdrawn' AND attendance_placement_id "
                                "IS NOT NULL")),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    citizen_id: uuid.UUID = Field(index=True)
    kind: str = Field(max_length=40)
    occurred_on: date
    decide_by: date
    status: str = Field(max_length=20)
    # What caused it: exactly one of the two.
    attendance_placement_id: uuid.UUID | None = None
    conversation_id: uuid.UUID | None = None
    opened_at: datetime = Timestamp()
    withdrawn_at: datetime | None = Timestamp(default=None)
    # The hearing (partshøring): the letter's date and the citizen's deadline to answer.
    hearing_sent_on: date | None = None
    hearing_respond_by: date | None = None
    hearing_by: str | None = Field(default=None, max_length=200)


class ContactAttempt(SQLModel, table=True):
    """A try to reach the citizen personally (required before sanctioning an
    activity-ready citizen)."""

    __tablename__ = "contact_attempt"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="sanction_case.id", index=True)
    at: datetime = Timestamp()
    channel: str = Field(max_length=40)
    reached: bool
    recorded_by: str = Field(max_length=200)
    recorded_at: datetime = Timestamp()


class SanctionDecision(SQLModel, table=True):
    """A caseworker's decision. Never changed: a mistake is corrected by a new decision
    that names the one it replaces."""

    __tablename__ = "sanction_decision"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    case_id: uuid.UUID = Field(foreign_key="sanction_case.id", index=True)
    outcome: str = Field(max_length=20)
    reasonable_excuse: bool
    deduction_days: int
    justification: str = Field(max_length=4000)
    legal_basis: str | None = Field(default=None, max_length=300)
    replaces_id: uuid.UUID | None = Field(default=None, unique=True)
    decided_by: str = Field(max_length=200)
    decided_at: datetime = Timestamp()


class RightsGuidance(SQLModel, table=True):
    """Written guidance on rights and duties; a sanction needs one in force on the day
    of the event (valid for six months)."""

    __tablename__ = "rights_guidance"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    citizen_id: uuid.UUID = Field(index=True)
    given_on: date
    channel: str = Field(max_length=40)
    given_by: str = Field(max_length=200)
    recorded_at: datetime = Timestamp()


class Conversation(SQLModel, table=True):
    """A weekly job conversation at the jobcenter, booked for a citizen with no
    activation hours that week."""

    __tablename__ = "conversation"
    __table_args__ = (Index("ix_conversation_week", "week", "citizen_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    citizen_id: uuid.UUID = Field(index=True)
    week: str = Field(max_length=8)  # ISO week of scheduled_at, e.g. 2026-W48
    scheduled_at: datetime = Timestamp()
    attended: bool | None = None
    outcome_by: str | None = Field(default=None, max_length=200)
    outcome_at: datetime | None = Timestamp(default=None)
    booked_by: str = Field(max_length=200)
    booked_at: datetime = Timestamp()
