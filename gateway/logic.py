"""The gateway's rules: API clients, secrets, and token issuance. No HTTP here."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from jose import jwt
from sqlmodel import Session, select

from services.platform.pagination import paginate
from services.platform.problems import DomainError, NotFound, Unprocessable
from services.platform.scopes import (
    ROLE_SCOPES,
    Role,
    Scope,
    format_scopes,
    parse_scopes,
)
from services.platform.tokens import ALGORITHM, TOKEN_TYPE

from .keys import Keystore
from .models import ApiClient

# argon2id with the library's defaults (RFC 9106's second recommended option).
password_hasher = PasswordHasher()
# Verified against when a client id is unknown, so that the answer takes as long.
_DUMMY_HASH = password_hasher.hash(secrets.token_urlsafe(16))


class OAuthError(DomainError):
    """OAuth 2 token endpoint errors: a problem document that also carries `error`."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail, error=error)
        self.status = status  # type: ignore[misc]
        self.code = error  # type: ignore[misc]
        self.title = "Token request refused"  # type: ignore[misc]


def invalid_client() -> OAuthError:
    return OAuthError(401, "invalid_client", "Unknown client or wrong secret.")


@dataclass(frozen=True)
class NewClient:
    client: ApiClient
    secret: str


def hash_secret(secret: str) -> str:
    return password_hasher.hash(secret)


def secret_matches(secret_hash: str, secret: str) -> bool:
    try:
        return password_hasher.verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


def _scopes_refused(detail: str, errors: list[tuple[list[str], str, str]]) -> Unprocessable:
    """A 422 shaped like a validation error: where (`loc`) and what, never a value."""
    return Unprocessable(detail, errors=[{"loc": loc, "type": kind, "msg": msg}
                                         for loc, kind, msg in errors])


def allowed_scopes(role: Role, requested: Collection[Scope] | None) -> frozenset[Scope]:
    """The scopes a new client of `role` holds. Deny by default: a client that names its
    scopes holds exactly those, each one of its role's (ROLE_SCOPES); one that names none
    holds its role's whole set, except a service client, which must name the narrow
    scopes its calls need."""
    role_scopes = ROLE_SCOPES[role]
    if requested is None:
        if role is Role.service:
            raise _scopes_refused("A service client must name its scopes.", [
                (["body", "scopes"], "missing", "A service client must name its scopes")])
        return role_scopes
    requested = list(requested)
    if not requested:
        raise _scopes_refused("Name at least one scope, or leave scopes out.", [
            (["body", "scopes"], "too_short", "At least one scope, or leave scopes out")])
    outside = [index for index, scope in enumerate(requested) if scope not in role_scopes]
    if outside:
        raise _scopes_refused(f"A scope outside the {role.value} role was asked for.", [
            (["body", "scopes", str(index)], "scope_outside_role",
             f"Not a scope of the {role.value} role") for index in outside])
    return frozenset(requested)


def create_client(
    session: Session, *, name: str, role: Role, provider_id: uuid.UUID | None,
    scopes: Collection[Scope] | None = None, client_id: str | None = None,
    secret: str | None = None,
) -> NewClient:
    if (role is Role.provider) != (provider_id is not None):
        raise Unprocessable("A provider client must name its provider_id, and only it may.")
    secret = secret or secrets.token_urlsafe(32)
    client = ApiClient(
        client_id=client_id or f"c-{secrets.token_urlsafe(12)}",
        name=name,
        role=role.value,
        provider_id=str(provider_id) if provider_id else None,
        scopes=format_scopes(allowed_scopes(role, scopes)),
        secret_hash=hash_secret(secret),
        created_at=datetime.now(UTC),
    )
    session.add(client)
    session.flush()
    return NewClient(client, secret)


def ensure_client(
    session: Session, *, client_id: str, secret: str, name: str, role: Role,
    scopes: frozenset[Scope] | None = None,
) -> ApiClient:
    """Create or refresh a configured client (the bootstrap admin, the services' own)."""
    client = session.get(ApiClient, client_id)
    if client is None:
        return create_client(session, name=name, role=role, provider_id=None, scopes=scopes,
                             client_id=client_id, secret=secret).client
    if not secret_matches(client.secret_hash, secret):
        client.secret_hash = hash_secret(secret)
    client.role = role.value
    client.scopes = format_scopes(allowed_scopes(role, scopes))
    client.revoked_at = None
    session.add(client)
    session.flush()
    return client


def list_clients(session: Session, *, limit: int, cursor: str | None
                 ) -> tuple[list[ApiClient], str | None]:
    return paginate(session, select(ApiClient),
                    order_by=(ApiClient.created_at, ApiClient.client_id),
                    limit=limit, cursor=cursor)


def revoke_client(session: Session, client_id: str) -> ApiClient:
    client = session.get(ApiClient, client_id)
    if client is None:
        raise NotFound("No such client.")
    if client.revoked_at is None:
        client.revoked_at = datetime.now(UTC)
        session.add(client)
        session.flush()
    return client


def authenticate_client(session: Session, client_id: str, secret: str) -> ApiClient:
    client = session.get(ApiClient, client_id) if client_id else None
    if client is None:
        secret_matches(_DUMMY_HASH, secret)
        raise invalid_client()
    if not secret_matches(client.secret_hash, secret) or client.revoked_at is not None:
        raise invalid_client()
    return client


def granted_scopes(client: ApiClient, requested: str | None) -> frozenset[Scope]:
    held = parse_scopes(client.scopes)
    if not requested:
        return held
    try:
        wanted = parse_scopes(requested)
    except ValueError:
        raise OAuthError(400, "invalid_scope", "Unknown scope requested.") from None
    if not wanted <= held:
        raise OAuthError(400, "invalid_scope",
                         "A requested scope is outside the client's scopes.")
    return wanted


def issue_token(keystore: Keystore, client: ApiClient, scopes: frozenset[Scope], *,
                issuer: str, audience: str, lifetime_seconds: int) -> dict[str, object]:
    keystore.reload_if_changed()
    key = keystore.active
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": issuer, "aud": audience, "sub": client.client_id,
        "iat": now, "nbf": now, "exp": now + lifetime_seconds,
        "jti": uuid.uuid4().hex, "scope": format_scopes(scopes), "role": client.role,
    }
    if client.provider_id:
        claims["provider_id"] = client.provider_id
    token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM,
                       headers={"kid": key.kid, "typ": TOKEN_TYPE})
    return {"access_token": token, "token_type": "Bearer", "expires_in": lifetime_seconds,
            "scope": claims["scope"]}


def client_is_revoked(session: Session, client_id: str) -> bool:
    client = session.get(ApiClient, client_id)
    # An unknown client (its row is gone) counts as revoked.
    return client is None or client.revoked_at is not None
