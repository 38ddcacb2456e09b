"""Request and response bodies of the citizens service."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from services.platform.fields import CprNumber, Day


class Benefit(StrEnum):
    kontanthjaelp = "kontanthjaelp"
    uddannelseshjaelp = "uddannelseshjaelp"
    dagpenge = "dagpenge"
    integrationsydelse = "integrationsydelse"
    other = "other"


class Readiness(StrEnum):
    jobparat = "jobparat"
    aktivitetsparat = "aktivitetsparat"
    uddannelsesparat = "uddannelsesparat"
    aabenlyst_uddannelsesparat = "aabenlyst_uddannelsesparat"


class ReferralSource(StrEnum):
    police = "police"
    prison_service = "prison_service"
    jobcenter = "jobcenter"
    other = "other"


class ExitReason(StrEnum):
    job = "job"
    education = "education"
    benefit_ended = "benefit_ended"
    imprisonment = "imprisonment"
    death = "death"
    moved = "moved"
    other = "other"


class CitizenStatus(StrEnum):
    not_enrolled = "not_enrolled"
    enrolled = "enrolled"
    exited = "exited"


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class CitizenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    cpr: CprNumber
    name: Name
    benefit: Benefit
    readiness: Readiness


class CitizenLookup(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    cpr: CprNumber


class CitizenPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    benefit: Benefit | None = None
    readiness: Readiness | None = None

    @model_validator(mode="after")
    def _something(self) -> CitizenPatch:
        if not self.model_fields_set:
            raise ValueError("name a field to change: name, benefit or readiness")
        for field in self.model_fields_set:
            if getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self


class CitizenOut(BaseModel):
    id: uuid.UUID
    name: str
    cpr_masked: str
    birth_date: date
    age: int
    benefit: Benefit
    readiness: Readiness
    status: CitizenStatus


class CitizenId(BaseModel):
    id: uuid.UUID


class CitizenChangeOut(BaseModel):
    version: int
    field: str
    old_value: str
    new_value: str
    changed_by: str
    changed_at: datetime


class EnrolmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enrolled_on: Day
    referral_source: ReferralSource


class ExitCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    exited_on: Day
    reason: ExitReason


class EnrolmentOut(BaseModel):
    id: uuid.UUID
    citizen_id: uuid.UUID
    enrolled_on: date
    referral_source: ReferralSource
    exited_on: date | None
    exit_reason: ExitReason | None


class EnrolmentPeriod(BaseModel):
    enrolled_on: date
    exited_on: date | None


class CitizenEligibility(BaseModel):
    """What another service may know to check a placement: no name, no CPR."""

    id: uuid.UUID
    status: CitizenStatus
    birth_date: date
    readiness: Readiness
    enrolments: list[EnrolmentPeriod]


class ExitGroups(BaseModel):
    job_or_education: int | None
    benefit_ended: int | None
    other: int | None


class ExitReasons(BaseModel):
    job: int | None
    education: int | None
    benefit_ended: int | None
    imprisonment: int | None
    death: int | None
    moved: int | None
    other: int | None


class EnrolmentReport(BaseModel):
    """Counts of persons; 1 to 4 are shown as null (small-cell protection)."""

    as_of: date
    enrolled_since_start: int | None
    active: int | None
    exited: int | None
    exits: ExitGroups
    exit_reasons: ExitReasons
    full_year_persons: float
