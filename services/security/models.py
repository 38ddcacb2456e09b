"""Tables owned by the security service (beyond the platform's audit and idempotency tables).

Police data is criminal-offence data. What would identify a group or a person is never
stored in clear: the CPR number only as a keyed hash (and, for a referral, encrypted so the
unit can act on it), affiliation codes and notes only encrypted (AES-GCM, bound to their
column and row), and affiliation codes in conflicts also as keyed hashes, so the conflict
rule can match them without decrypting every row.

Nothing here is updated by a user: assessments and conflicts are only ever inserted. The
one column that changes is `threat_subject.citizen_id`, set once when a person the police
reported is found among the citizens (and the referral's status with it).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index, Text
from sqlmodel import Field, SQLModel

from services.platform.columns import Timestamp


class ThreatSubject(SQLModel, table=True):
    """A person the police have reported, known by the keyed hash of the CPR number (the
    same key and purpose as the citizens service's, so the two could be matched), and by
    the citizen id once the citizens service knows the person."""

    __tablename__ = "threat_subject"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    cpr_hash: str = Field(max_length=64, unique=True)
    citizen_id: uuid.UUID | None = Field(default=None, unique=True)
    created_at: datetime = Timestamp()
    resolved_at: datetime | None = Timestamp(default=None)


class ThreatAssessment(SQLModel, table=True):
    """One upload from the police. Never edited or deleted: a newer one for the same
    person supersedes it from the newer one's `valid_from` (see `logic.in_force`)."""

    __tablename__ = "threat_assessment"
    __table_args__ = (
        CheckConstraint("level BETWEEN 0 AND 4", name="ck_threat_assessment_level"),
        CheckConstraint("valid_until > valid_from", name="ck_threat_assessment_period"),
        Index("ix_threat_assessment_subject_received", "subject_id", "received_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    subject_id: uuid.UUID = Field(foreign_key="threat_subject.id")
    level: int
    valid_from: date
    valid_until: date  # the last day it is in force
    measures: str = Field(max_length=300)  # the police's own, comma-separated codes
    affiliations_encrypted: str = Field(sa_type=Text)  # a JSON list, encrypted
    notes_encrypted: str | None = Field(default=None, sa_type=Text)
    received_by: str = Field(max_length=200)  # the police client's id
    received_at: datetime = Timestamp(index=True)


class AffiliationConflict(SQLModel, table=True):
    """Two affiliations whose holders must never share a group, a place or a time, while
    the conflict is in force. A code may conflict with itself (a split group)."""

    __tablename__ = "affiliation_conflict"
    __table_args__ = (
        CheckConstraint("valid_until > valid_from", name="ck_affiliation_conflict_period"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    affiliation_a_hash: str = Field(max_length=64, index=True)
    affiliation_b_hash: str = Field(max_length=64, index=True)
    affiliation_a_encrypted: str = Field(max_length=300)
    affiliation_b_encrypted: str = Field(max_length=300)
    valid_from: date
    valid_until: date
    received_by: str = Field(max_length=200)
    received_at: datetime = Timestamp(index=True)


class ReferralStatus(StrEnum):
    open = "open"  # unknown to the citizens service when reported
    resolved = "resolved"  # the citizens service knows the person now


class Referral(SQLModel, table=True):
    """A person the police reported who was unknown to the unit: for the unit to
    consider, never an enrolment. One per person, however many uploads."""

    __tablename__ = "referral"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'resolved')", name="ck_referral_status"),
        Index("ix_referral_status_created", "status", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    subject_id: uuid.UUID = Field(foreign_key="threat_subject.id", unique=True)
    cpr_encrypted: str = Field(max_length=200)  # so the unit can act on it
    status: str = Field(default=ReferralStatus.open.value, max_length=20)
    created_at: datetime = Timestamp()  # the first report
    last_reported_at: datetime = Timestamp()
    resolved_at: datetime | None = Timestamp(default=None)
