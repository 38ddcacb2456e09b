"""Request and response bodies of the activation service."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from services.platform.fields import BodyBool, BodyInt, BodyNumber, Day, Timestamp
from services.platform.vocabulary import OfferType

MAX_WEEKLY_HOURS = 37
MAX_ATTENDANCE_BATCH = 1000

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# Hours: at most one decimal (API.md); a cap in steps of half an hour (the issue that
# specified caps).
CapHours = Annotated[BodyNumber, Field(ge=0, le=MAX_WEEKLY_HOURS, multiple_of=0.5)]
WeeklyHours = Annotated[BodyNumber, Field(gt=0, le=MAX_WEEKLY_HOURS, multiple_of=0.1)]
DayHours = Annotated[BodyNumber, Field(ge=0, le=24, multiple_of=0.1)]


def _storable(value: datetime) -> datetime:
    """An instant the database can keep in UTC (a naive one, or one whose UTC time falls
    outside years 1900-2999, was a 500)."""
    try:
        year = value.astimezone(UTC).year
    except (OverflowError, ValueError):
        year = 0
    if not 1900 <= year <= 2999:
        raise ValueError("the timestamp is out of range")
    return value


# A timestamp a client sends: with its UTC offset, in a sane range.
Instant = Annotated[Timestamp, AfterValidator(_storable)]


def to_tenths(hours: float) -> int:
    return round(hours * 10)


def from_tenths(tenths: int | None) -> float | None:
    return None if tenths is None else tenths / 10


class HoursCapSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weekly_hours: CapHours
    reason: Text


class HoursCapChangeOut(BaseModel):
    weekly_hours: float
    previous_weekly_hours: float | None
    reason: str
    set_by: str
    set_at: datetime


class HoursCapOut(BaseModel):
    citizen_id: uuid.UUID
    weekly_hours: float
    reason: str
    set_by: str
    set_at: datetime
    history: list[HoursCapChangeOut]


class CohortCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contract_id: uuid.UUID
    offer_type: OfferType
    name: Name
    max_size: Annotated[BodyInt, Field(ge=1, le=500)]
    location: Name


class CohortOut(BaseModel):
    id: uuid.UUID
    contract_id: uuid.UUID
    provider_id: uuid.UUID
    offer_type: OfferType
    name: str
    max_size: int
    location: str
    created_at: datetime


class PlacementCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    citizen_id: uuid.UUID
    contract_id: uuid.UUID
    offer_type: OfferType
    cohort_id: uuid.UUID | None = None
    starts_on: Day
    ends_on: Day
    weekly_hours: WeeklyHours
    absence_notice_given_on: Day | None = None

    @model_validator(mode="after")
    def _period(self) -> PlacementCreate:
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        return self


class PlacementEnd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ended_on: Day
    reason: Text


class PlacementNotice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    given_on: Day


class PlacementStatus(StrEnum):
    active = "active"
    ended = "ended"


class PlacementOut(BaseModel):
    id: uuid.UUID
    citizen_id: uuid.UUID
    contract_id: uuid.UUID
    provider_id: uuid.UUID
    cohort_id: uuid.UUID | None
    offer_type: OfferType
    starts_on: date
    ends_on: date
    ended_on: date | None
    end_reason: str | None
    weekly_hours: float
    weekly_price_ore: int
    absence_notice_given_on: date | None
    status: PlacementStatus
    created_at: datetime


class AttendanceStatus(StrEnum):
    present = "present"
    late = "late"
    absent_excused = "absent_excused"
    absent_unexcused = "absent_unexcused"


class AttendanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    placement_id: uuid.UUID
    date: Day
    status: AttendanceStatus
    hours: DayHours | None = None

    @model_validator(mode="after")
    def _hours(self) -> AttendanceIn:
        attended = self.status in (AttendanceStatus.present, AttendanceStatus.late)
        if attended and self.hours is None:
            raise ValueError("present and late need the hours attended")
        if not attended and self.hours not in (None, 0):
            raise ValueError("an absence has no hours")
        return self


class AttendanceBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    records: Annotated[list[AttendanceIn], Field(min_length=1, max_length=MAX_ATTENDANCE_BATCH)]

    @model_validator(mode="after")
    def _one_per_day(self) -> AttendanceBatch:
        keys = [(r.placement_id, r.date) for r in self.records]
        if len(keys) != len(set(keys)):
            raise ValueError("one record per placement and date in a batch")
        return self


class AttendanceOut(BaseModel):
    id: uuid.UUID
    placement_id: uuid.UUID
    date: date
    status: AttendanceStatus
    late_report: bool


class AttendanceAccepted(BaseModel):
    accepted: int
    records: list[AttendanceOut]


class AttendanceVersionOut(BaseModel):
    id: uuid.UUID
    placement_id: uuid.UUID
    date: date
    version: int
    status: AttendanceStatus
    hours: float | None
    late_report: bool
    current: bool
    reported_by: str
    reported_at: datetime


# Sanction cases, guidance, conversations ----------------------------------------------------
class CaseKind(StrEnum):
    activation_absence = "activation_absence"
    missed_conversation = "missed_conversation"


class CaseStatus(StrEnum):
    open = "open"
    hearing = "hearing"
    decided = "decided"
    withdrawn = "withdrawn"


class Outcome(StrEnum):
    sanction = "sanction"
    no_sanction = "no_sanction"


class Channel(StrEnum):
    letter = "letter"
    digital_post = "digital_post"
    phone = "phone"
    sms = "sms"
    email = "email"
    meeting = "meeting"
    home_visit = "home_visit"


class HearingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sent_on: Day
    respond_by: Day

    @model_validator(mode="after")
    def _deadline(self) -> HearingIn:
        if self.respond_by <= self.sent_on:
            raise ValueError("respond_by must be after sent_on")
        return self


class ContactAttemptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: Instant
    channel: Channel
    reached: BodyBool


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Outcome
    reasonable_excuse: BodyBool
    deduction_days: Annotated[BodyInt, Field(ge=0, le=366)]
    justification: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                    max_length=4000)]
    # DOMAIN.md: the decision records its legal basis. Optional, because API.md's body
    # does not name it and outside systems are written against API.md.
    legal_basis: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                  max_length=300)] | None = Field(
        default=None, examples=["aktivloven § 36"])
    replaces: uuid.UUID | None = None  # the decision this one corrects

    @model_validator(mode="after")
    def _consistent(self) -> DecisionIn:
        if self.outcome is Outcome.sanction and self.deduction_days < 1:
            raise ValueError("a sanction deducts at least one day")
        if self.outcome is Outcome.sanction and self.reasonable_excuse:
            raise ValueError("with a reasonable excuse there is no sanction")
        if self.outcome is Outcome.no_sanction and self.deduction_days != 0:
            raise ValueError("no_sanction deducts no days")
        return self


class ContactAttemptOut(BaseModel):
    id: uuid.UUID
    at: datetime
    channel: str
    reached: bool
    recorded_by: str


class DecisionOut(BaseModel):
    id: uuid.UUID
    outcome: Outcome
    reasonable_excuse: bool
    deduction_days: int
    justification: str
    legal_basis: str | None
    replaces: uuid.UUID | None
    decided_by: str
    decided_at: datetime


class SanctionCaseOut(BaseModel):
    id: uuid.UUID
    citizen_id: uuid.UUID
    kind: CaseKind
    occurred_on: date
    decide_by: date
    status: CaseStatus
    placement_id: uuid.UUID | None
    conversation_id: uuid.UUID | None
    hearing_sent_on: date | None
    hearing_respond_by: date | None


class SanctionCaseDetail(SanctionCaseOut):
    contact_attempts: list[ContactAttemptOut]
    decisions: list[DecisionOut]


class GuidanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    citizen_id: uuid.UUID
    given_on: Day
    channel: Channel


class GuidanceOut(BaseModel):
    id: uuid.UUID
    citizen_id: uuid.UUID
    given_on: date
    valid_until: date
    channel: str
    given_by: str


class ConversationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    citizen_id: uuid.UUID
    scheduled_at: Instant


class ConversationOutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attended: BodyBool


class ConversationStatus(StrEnum):
    due = "due"
    booked = "booked"
    held = "held"
    missed = "missed"


class ConversationOut(BaseModel):
    id: uuid.UUID
    citizen_id: uuid.UUID
    week: str
    scheduled_at: datetime
    status: ConversationStatus


class ConversationDue(BaseModel):
    citizen_id: uuid.UUID
    week: str
    status: ConversationStatus
    conversation_id: uuid.UUID | None


# Reports -------------------------------------------------------------------------------------
class CaseCounts(BaseModel):
    open: int
    decided: int
    sanctioned: int


class ActivationReport(BaseModel):
    week: str
    citizens: int
    average_scheduled_hours: float
    average_cap: float | None
    share_utility_work: float
    share_internship_or_wage_subsidy: float
    absences_unexcused: int
    sanction_cases: CaseCounts


class SanctionShareReport(BaseModel):
    month: str
    enrolled: int
    sanctioned: int
    share: float


class ContractSpending(BaseModel):
    contract_id: uuid.UUID
    provider_id: uuid.UUID
    placements: int
    committed_ore: int
    spent_ore: int


class SpendingReport(BaseModel):
    year: int
    budget_ore: int
    committed_ore: int
    spent_ore: int
    forecast_ore: int
    cost_per_full_year_person_ore: int | None
    contracts: list[ContractSpending]
