"""Request and response bodies of the gateway's own routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.platform.scopes import Role, Scope

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    role: Role
    provider_id: uuid.UUID | None = None
    scopes: list[Scope] | None = Field(
        default=None, min_length=1,
        description="The scopes the client holds, each one of its role's; left out, all of "
                    "the role's. A `service` client must name them.")


class ClientOut(BaseModel):
    client_id: str
    name: str
    role: Role
    provider_id: str | None
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class ClientCreated(BaseModel):
    client_id: str
    client_secret: str
    name: str
    role: Role
    provider_id: str | None
    scopes: list[str]


class TokenResponse(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    scope: str
