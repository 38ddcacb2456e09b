"""Tables owned by the gateway (beyond the platform's audit table)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from services.platform.columns import Timestamp


class ApiClient(SQLModel, table=True):
    __tablename__ = "api_client"

    client_id: str = Field(primary_key=True, max_length=100)
    name: str = Field(max_length=200)
    role: str = Field(max_length=40)
    provider_id: str | None = Field(default=None, max_length=36)
    scopes: str = Field(max_length=2000)  # space-separated, as in the token
    secret_hash: str = Field(max_length=300)  # argon2id; the secret itself is never stored
    created_at: datetime = Timestamp(index=True)
    revoked_at: datetime | None = Timestamp(default=None)
