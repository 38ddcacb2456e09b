"""Access-token verification with python-jose, done safely.

python-jose accepts whatever `alg` a token names when it is handed a key it can use
that way, will try every key of a set, and validates only the claims that are present.
So this module:
- accepts exactly one algorithm (ES256) and checks the header itself first;
- picks the key by `kid` from our own key set (never from `jku`, `x5u`, `jwk` or `x5c`
  headers, which it ignores);
- accepts only compact JWS with three segments (no JWE);
- requires `exp`, `iat`, `iss`, `aud`, `sub`, `jti` and `typ: at+jwt`, and refuses a
  lifetime over 15 minutes.

Verified tokens are cached by their exact text until they expire: each request is
checked by the gateway and again by a service, and the signature cannot change under the
same text. Revocation is checked separately, on every request, by the gateway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from jose import jwk, jwt
from jose.backends.base import Key
from jose.exceptions import JOSEError

from .scopes import Role, Scope, parse_scopes
from .settings import MAX_TOKEN_LIFETIME_SECONDS

ALGORITHM = "ES256"
TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
MAX_TOKEN_CHARS = 8192
logger = logging.getLogger("sikkerby.tokens")


class InvalidToken(Exception):
    """The token is not acceptable. The reason is for logs, not for the caller."""


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the verified token says."""

    client_id: str
    role: Role
    scopes: frozenset[Scope]
    provider_id: str | None
    token_id: str
    expires_at: int

    def has_any(self, scopes: frozenset[Scope] | set[Scope]) -> bool:
        return not scopes.isdisjoint(self.scopes)


KeyLookup = Callable[[str], Awaitable[Key | None]]
RevocationCheck = Callable[[str], Awaitable[bool]]


def key_from_jwk(data: dict[str, Any]) -> Key | None:
    """A public verification key from a JWK, or None when it is not one of ours."""
    if data.get("kty") != "EC" or data.get("crv") != "P-256" or "kid" not in data:
        return None
    if data.get("alg", ALGORITHM) != ALGORITHM or data.get("use", "sig") != "sig":
        return None
    public = {k: v for k, v in data.items() if k in ("kty", "crv", "x", "y")}
    return jwk.construct(public, ALGORITHM)


class TokenVerifier:
    def __init__(self, lookup_key: KeyLookup, *, issuer: str, audience: str,
                 leeway_seconds: int = 5, cache_size: int = 20_000,
                 is_revoked: RevocationCheck | None = None) -> None:
        self._lookup_key = lookup_key
        self._is_revoked = is_revoked
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway_seconds
        self._cache: OrderedDict[str, Principal] = OrderedDict()
        self._cache_size = cache_size

    async def verify(self, token: str) -> Principal:
        now = time.time()
        principal = self._cache.get(token)
        if principal is not None and principal.expires_at + self.leeway <= now:
            self._cache.pop(token, None)
            principal = None
        if principal is None:
            principal = await self._verify_uncached(token, now)
            self._cache[token] = principal
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        # Revocation is asked every time, cached or not: it takes effect at once.
        if self._is_revoked is not None and await self._is_revoked(principal.client_id):
            raise InvalidToken("client revoked")
        return principal

    async def _verify_uncached(self, token: str, now: float) -> Principal:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise InvalidToken("not a compact JWS")
        try:
            header = jwt.get_unverified_header(token)
        except JOSEError as exc:
            raise InvalidToken("unreadable header") from exc
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("algorithm not allowed")
        if header.get("typ") != TOKEN_TYPE:
            raise InvalidToken("wrong typ")
        if "crit" in header or "enc" in header or "zip" in header:
            raise InvalidToken("unsupported header")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("no kid")
        key = await self._lookup_key(kid)
        if key is None:
            raise InvalidToken("unknown kid")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require_exp": True, "require_iat": True, "require_iss": True,
                    "require_aud": True, "require_sub": True, "require_jti": True,
                    "verify_at_hash": False, "leeway": self.leeway,
                },
            )
        except JOSEError as exc:
            raise InvalidToken(f"claims or signature: {type(exc).__name__}") from exc
        return principal_from_claims(claims, now, self.leeway)


def principal_from_claims(claims: dict[str, Any], now: float, leeway: int) -> Principal:
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int) or not isinstance(iat, int):
        raise InvalidToken("exp and iat must be integers")
    if exp - iat > MAX_TOKEN_LIFETIME_SECONDS or iat > now + leeway:
        raise InvalidToken("lifetime too long or issued in the future")
    sub, jti = claims.get("sub"), claims.get("jti")
    if not isinstance(sub, str) or not sub or not isinstance(jti, str):
        raise InvalidToken("sub and jti must be strings")
    try:
        role = Role(claims.get("role"))
        scopes = parse_scopes(claims.get("scope"))
    except ValueError as exc:
        raise InvalidToken("unknown role or scope") from exc
    provider_id = claims.get("provider_id")
    if role is Role.provider and not isinstance(provider_id, str):
        raise InvalidToken("provider token without provider_id")
    return Principal(
        client_id=sub, role=role, scopes=scopes,
        provider_id=provider_id if role is Role.provider else None,
        token_id=jti, expires_at=exp,
    )


class RemoteJwks:
    """The gateway's JWKS, fetched over HTTP and refetched when an unknown kid shows up
    (a rotation), at most once per `min_interval` so that made-up kids cost nothing."""

    def __init__(self, url: str, *, min_interval: float = 2.0,
                 client: httpx.AsyncClient | None = None) -> None:
        self.url = url
        self.min_interval = min_interval
        self._client = client
        self._keys: dict[str, Key] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> Key | None:
        key = self._keys.get(kid)
        if key is not None:
            return key
        async with self._lock:
            if kid in self._keys:
                return self._keys[kid]
            if time.monotonic() - self._fetched_at < self.min_interval:
                return None
            await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            if self._client is None:
                async with httpx.AsyncClient(timeout=5.0) as client:
                    response = await client.get(self.url)
            else:
                response = await self._client.get(self.url, timeout=5.0)
            response.raise_for_status()
            keys = response.json().get("keys", [])
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("could not fetch the JWKS: %s", type(exc).__name__)
            return
        fresh: dict[str, Key] = {}
        for data in keys:
            key = key_from_jwk(data) if isinstance(data, dict) else None
            if key is not None:
                fresh[data["kid"]] = key
        self._keys = fresh
