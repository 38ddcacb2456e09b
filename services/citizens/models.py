"""Tables owned by the citizens service."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from services.platform.columns import Timestamp


class Citizen(SQLModel, table=True):
    __tablename__ = "citizen"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    # The CPR number only encrypted (AES-GCM, key id inside) and as a keyed hash for
    # lookups and uniqueness. The birth date is derived from it, never typed in.
    cpr_encrypted: str = Field(max_length=200)
    cpr_hash: str = Field(max_length=64, unique=True)
    birth_date: date
    name: str = Field(max_length=200)
    benefit: str = Field(max_length=40)
    readiness: str = Field(max_length=40)
    version: int = 1  # the ETag; bumped by every change
    created_at: datetime = Timestamp(index=True)
    updated_at: datetime = Timestamp()


class CitizenChange(SQLModel, table=True):
    """One changed field of one PATCH: who, when, from what, to what."""

    __tablename__ = "citizen_change"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    citizen_id: uuid.UUID = Field(foreign_key="citizen.id", index=True)
    version: int
    field: str = Field(max_length=40)
    old_value: str = Field(max_length=200)
    new_value: str = Field(max_length=200)
    changed_by: str = Field(max_length=200)
    changed_at: datetime = Timestamp()


class Enrolment(SQLModel, table=True):
    """A period in the programme. A person may leave and come back: several periods,
    never overlapping, and at most one open (the partial unique index)."""

    __tablename__ = "enrolment"
    __table_args__ = (
        Index("uq_enrolment_one_open", "citizen_id", unique=True,
              postgresql_where=text("exited_on IS NULL"),
              sqlite_where=text("exited_on IS NULL")),
        Index("ix_enrolment_enrolled_on_citizen", "enrolled_on", "citizen_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    citizen_id: uuid.UUID = Field(foreign_key="citizen.id", index=True)
    enrolled_on: date
    referral_source: str = Field(max_length=40)
    exited_on: date | None = None
    exit_reason: str | None = Field(default=None, max_length=40)
    enrolled_by: str = Field(max_length=200)
    exited_by: str | None = Field(default=None, max_length=200)
    # The start of this citizen's next period, set when that period is made. With it, a
    # person's latest period as of any day is found without a join or a sort, which
    # keeps the enrolment report a single pass at a million citizens.
    next_enrolled_on: date | None = None
    created_at: datetime = Timestamp()
