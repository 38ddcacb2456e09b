"""Tables owned by the providers service."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from services.platform.columns import Timestamp


class Provider(SQLModel, table=True):
    __tablename__ = "provider"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    cvr: str = Field(max_length=8, unique=True)
    created_at: datetime = Timestamp(index=True)
