"""Request and response bodies of the security service.

What goes out is shaped by who asks: the police get ids only; caseworkers, team leads,
providers and the activation service get measures (`ConstraintsOut`) and allowed flags
(`GroupCheckOut`), never a level, an affiliation or a note; only the security
coordinator reads whole assessments (`ThreatAssessmentOut`) and conflicts.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from services.platform.fields import BodyInt, CprNumber, Day
from services.platform.vocabulary import MAX_THREAT_LEVEL, MIN_THREAT_LEVEL

from .measures import Measure

MAX_AFFILIATIONS = 50
MAX_NOTES_CHARS = 10_000
MAX_GROUP_MEMBERS = 500
# Everyone at one provider in a period: a few thousand at the most busy.
MAX_SITE_MEMBERS = 20_000


# Opaque group codes from the police: letters, digits and . _ : - (compared without
# regard to case, so "ltf" and "LTF" are one group for the conflict rule).
AffiliationCode = Annotated[str, StringConstraints(
    strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
ThreatLevel = Annotated[BodyInt, Field(ge=MIN_THREAT_LEVEL, le=MAX_THREAT_LEVEL,
                                         description="0 (none) to 4 (highest)")]


def add_one_year(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


class Validity(BaseModel):
    """`valid_until` (the last day in force) after `valid_from`, at most a year later."""

    valid_from: Day
    valid_until: Day = Field(description="The last day it is in force; after valid_from "
                                         "and at most one year later")

    @model_validator(mode="after")
    def _period(self) -> Validity:
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        if self.valid_until > add_one_year(self.valid_from):
            raise ValueError("valid_until must be at most one year after valid_from")
        return self


def _each_once(values: list[str], what: str) -> list[str]:
    if len({v.upper() for v in values}) != len(values):
        raise ValueError(f"each {what} may be named once")
    return values


# Police uploads --------------------------------------------------------------------------
class ThreatAssessmentCreate(Validity):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    cpr: CprNumber
    level: ThreatLevel
    affiliations: list[AffiliationCode] = Field(default_factory=list,
                                                max_length=MAX_AFFILIATIONS)
    measures: list[Measure] = Field(default_factory=list, max_length=len(Measure),
                                    description="Measures beyond the level's defaults")
    notes: Annotated[str, StringConstraints(max_length=MAX_NOTES_CHARS)] | None = None

    @field_validator("affiliations")
    @classmethod
    def _affiliations_once(cls, value: list[str]) -> list[str]:
        return _each_once(value, "affiliation")

    @field_validator("measures")
    @classmethod
    def _measures_once(cls, value: list[Measure]) -> list[Measure]:
        _each_once([m.value for m in value], "measure")
        return value


class ConflictCreate(Validity):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    affiliation_a: AffiliationCode
    affiliation_b: AffiliationCode


class Accepted(BaseModel):
    """All the police get back: the id of what they uploaded."""

    id: uuid.UUID


# The security coordinator's reading -----------------------------------------------------
class AssessmentStatus(StrEnum):
    scheduled = "scheduled"  # valid_from is still ahead
    in_force = "in_force"
    superseded = "superseded"  # a newer assessment took over from its valid_from
    expired = "expired"


class ThreatAssessmentOut(BaseModel):
    id: uuid.UUID
    citizen_id: uuid.UUID | None = Field(description="null while the person is a referral")
    referral_id: uuid.UUID | None
    level: int
    valid_from: date
    valid_until: date
    affiliations: list[str]
    measures: list[Measure] = Field(description="The measures the police named")
    required_measures: list[Measure] = Field(
        description="What applies while in force: the police's measures and the level's "
                    "defaults")
    max_group_size: int | None
    notes: str | None
    received_by: str
    received_at: datetime
    status: AssessmentStatus = Field(description="As of today")
    superseded_by: uuid.UUID | None
    superseded_from: date | None = Field(
        description="The day the newer assessment took over (null when none did)")


class ConflictOut(BaseModel):
    id: uuid.UUID
    affiliation_a: str
    affiliation_b: str
    valid_from: date
    valid_until: date
    in_force: bool = Field(description="As of today")
    received_by: str
    received_at: datetime


# Measures for those who must follow them -------------------------------------------------
class ConstraintsOut(BaseModel):
    """Only the measures in force: never the level, the affiliations or the notes."""

    citizen_id: uuid.UUID
    measures: list[Measure]
    max_group_size: int | None = Field(
        description="The largest group the citizen may be in: 1 for individual_only, "
                    "null for no limit")
    as_of: date


class GroupCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    citizen_id: uuid.UUID = Field(description="The candidate")
    member_ids: list[uuid.UUID] = Field(
        default_factory=list, max_length=MAX_GROUP_MEMBERS,
        description="Citizens in the cohort now; the candidate is ignored if listed")
    site_member_ids: list[uuid.UUID] | None = Field(
        default=None, max_length=MAX_SITE_MEMBERS,
        description="Citizens placed at the same place (the provider) at the same time. "
                    "Null: not sent; when the candidate could be in a conflict the answer "
                    "asks for them (`site_members_needed`)")
    cohort_max_size: BodyInt | None = Field(
        default=None, ge=1, le=10_000,
        description="The cohort's maximum size; null when no cohort is involved")
    contract_max_threat_level: ThreatLevel | None = Field(
        default=None, description="The contract's clearance; null to skip that check")
    on: Day | None = Field(default=None, description="The day to check (default: today)")


class RefusalMeasure(StrEnum):
    individual_only = "individual_only"
    small_group = "small_group"
    no_shared_location_with_conflicts = "no_shared_location_with_conflicts"
    contract_not_cleared = "contract_not_cleared"


class GroupCheckOut(BaseModel):
    """Names only the measure that refuses, never an affiliation, a member or a level."""

    allowed: bool
    measure: RefusalMeasure | None
    # Not allowed yet: ask again with `site_member_ids` (only ever when they were not sent).
    site_members_needed: bool = False


# Referrals -------------------------------------------------------------------------------
class ReferralFilter(StrEnum):
    open = "open"
    resolved = "resolved"
    all = "all"


class ReferralOut(BaseModel):
    id: uuid.UUID
    cpr_masked: str = Field(description="DDMMYY-XXXX")
    status: str = Field(description="open: unknown to the unit; resolved: registered since")
    citizen_id: uuid.UUID | None
    reported_at: datetime = Field(description="The first report")
    last_reported_at: datetime
    resolved_at: datetime | None


class RecheckOut(BaseModel):
    checked: int
    resolved: int
    still_open: int


class RegistrationIn(BaseModel):
    """The citizens service announces a registration (its own client only)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    cpr: CprNumber
    citizen_id: uuid.UUID
