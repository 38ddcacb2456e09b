"""Request and response bodies of the providers service."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from services.platform.fields import BodyInt, Day
from services.platform.vocabulary import MAX_THREAT_LEVEL, MIN_THREAT_LEVEL, OfferType

from .models import ContractKind

# CVR: eight digits, never starting with 0.
Cvr = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{7}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ProviderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    cvr: Cvr


class ProviderOut(BaseModel):
    id: uuid.UUID
    name: str
    cvr: str
    created_at: datetime


# Contracts ------------------------------------------------------------------------------
# The columns are 32-bit integers on both databases: a larger number is a validation
# error, not a database error.
MAX_INT32 = 2**31 - 1
Capacity = Annotated[BodyInt, Field(ge=1, le=MAX_INT32,
                                      description="Concurrent participants, at least 1")]
PriceOre = Annotated[BodyInt, Field(ge=0, le=MAX_INT32,
                                      description="Price per participant per week, in øre")]
ThreatLevel = Annotated[BodyInt, Field(
    ge=MIN_THREAT_LEVEL, le=MAX_THREAT_LEVEL,
    description="The highest threat level the provider is cleared for (0-4)")]


class ContractCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider_id: uuid.UUID
    kind: ContractKind
    offer_types: list[OfferType] = Field(min_length=1, max_length=len(OfferType),
                                         description="The offer types covered, each once")
    starts_on: Day
    ends_on: Day = Field(description="The last day of the contract (inclusive)")
    capacity: Capacity
    weekly_price_ore: PriceOre
    max_threat_level: ThreatLevel

    @field_validator("offer_types")
    @classmethod
    def _each_type_once(cls, value: list[OfferType]) -> list[OfferType]:
        if len(set(value)) != len(value):
            raise ValueError("each offer type may be named once")
        return value

    @field_validator("ends_on")
    @classmethod
    def _not_before_start(cls, value: date, info: ValidationInfo) -> date:
        starts_on = info.data.get("starts_on")  # absent when starts_on itself was invalid
        if starts_on is not None and value < starts_on:
            raise ValueError("ends_on must not be before starts_on")
        return value


class ContractExtend(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ends_on: Day = Field(description="The new last day; must be after the current one")


class ContractExtensionOut(BaseModel):
    previous_ends_on: date
    new_ends_on: date
    extended_at: datetime
    extended_by: str


class ContractOut(BaseModel):
    id: uuid.UUID
    provider_id: uuid.UUID
    kind: ContractKind
    offer_types: list[OfferType]
    starts_on: date
    ends_on: date
    capacity: int
    weekly_price_ore: int
    max_threat_level: int
    created_at: datetime
    extensions: list[ContractExtensionOut] = Field(
        description="Every extension of the end date, oldest first")
