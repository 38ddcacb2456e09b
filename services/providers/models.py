"""Tables owned by the providers service."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint
from sqlmodel import Field, SQLModel

from services.platform.columns import Timestamp


class ContractKind(StrEnum):
    special = "special"  # særindsatsaftale
    framework = "framework"  # rammeaftale


class Provider(SQLModel, table=True):
    __tablename__ = "provider"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    cvr: str = Field(max_length=8, unique=True)
    created_at: datetime = Timestamp(index=True)


class Contract(SQLModel, table=True):
    """A provider's contract: its period, capacity, price and threat clearance.

    The offer types it covers are rows of `contract_offer_type`, and each extension of
    its end date a row of `contract_extension`. The checks repeat the API's validation in
    the database, so no other writer can store a contract the rules would refuse.
    """

    __tablename__ = "contract"
    __table_args__ = (
        CheckConstraint("ends_on >= starts_on", name="ck_contract_period"),
        CheckConstraint("capacity >= 1", name="ck_contract_capacity"),
        CheckConstraint("weekly_price_ore >= 0", name="ck_contract_price"),
        CheckConstraint("max_threat_level BETWEEN 0 AND 4", name="ck_contract_threat_level"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    provider_id: uuid.UUID = Field(foreign_key="provider.id", index=True)
    kind: str = Field(max_length=20)
    starts_on: date
    ends_on: date = Field(index=True)
    capacity: int
    weekly_price_ore: int
    max_threat_level: int
    created_at: datetime = Timestamp(index=True)


class ContractOfferType(SQLModel, table=True):
    """One offer type a contract covers.

    A child table rather than a JSON column: "does contract C cover type X" is a primary
    key lookup that reads the same on SQLite and PostgreSQL, the key itself refuses a
    duplicate, and lists can filter by type with a plain EXISTS.
    """

    __tablename__ = "contract_offer_type"

    contract_id: uuid.UUID = Field(foreign_key="contract.id", primary_key=True)
    offer_type: str = Field(max_length=40, primary_key=True)


class ContractExtension(SQLModel, table=True):
    """One extension of a contract's end date: the history is never rewritten."""

    __tablename__ = "contract_extension"
    __table_args__ = (
        CheckConstraint("new_ends_on > previous_ends_on", name="ck_contract_extension_later"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    contract_id: uuid.UUID = Field(foreign_key="contract.id", index=True)
    previous_ends_on: date
    new_ends_on: date
    extended_at: datetime = Timestamp()
    extended_by: str = Field(max_length=200)  # the client id of the administrator
