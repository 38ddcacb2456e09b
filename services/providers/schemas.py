"""Request and response bodies of the providers service."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

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
