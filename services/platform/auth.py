"""The scope dependency every route declares: `Authenticator(required_scopes=...)`.

Each service exports typed aliases built from it (see `services/*/auth.py`), so a route's
permission reads in its signature:

    def get_citizen(..., principal: CitizensRead) -> ...

A service trusts no network position: it verifies the bearer token itself, and a request
that carries an identity header (which only an impostor would send: the gateway never
does) is refused outright.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import OAuth2

from .problems import Forbidden, Unauthorized
from .scopes import SCOPE_DESCRIPTIONS, Scope
from .tokens import InvalidToken, Principal, TokenVerifier

logger = logging.getLogger("sikkerby.auth")

IDENTITY_HEADERS = frozenset({
    "x-client-id", "x-role", "x-scopes", "x-provider-id", "x-user", "x-user-id",
    "x-forwarded-user", "x-authenticated-userid", "x-remote-user", "remote-user",
    "x-sikkerby-client", "x-sikkerby-role", "x-sikkerby-principal",
})

oauth2_scheme = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl="/v1/auth/token",
            scopes={scope.value: text for scope, text in SCOPE_DESCRIPTIONS.items()},
        )
    ),
    scheme_name="ClientCredentials",
    auto_error=False,
)


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("A bearer token is required.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A bearer token is required.")
    return token.strip()


def reject_identity_headers(request: Request) -> None:
    if any(name in IDENTITY_HEADERS for name in request.headers):
        raise Unauthorized("Identity headers are not accepted; send a bearer token.")


def Authenticator(  # noqa: N802 - reads as a class at the call site, like Polar's
    *, required_scopes: set[Scope] | frozenset[Scope]
) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits a caller holding any of `required_scopes`."""
    required = frozenset(required_scopes)
    if not required:
        raise ValueError("every route must name at least one scope (deny by default)")

    async def authenticate(
        request: Request,
        authorization: str | None = Security(oauth2_scheme, scopes=sorted(required)),
    ) -> Principal:
        reject_identity_headers(request)
        token = bearer_token(authorization)
        verifier: TokenVerifier = request.app.state.token_verifier
        try:
            principal = await verifier.verify(token)
        except InvalidToken as exc:
            logger.info("token refused: %s", exc)
            raise Unauthorized("The bearer token is invalid or expired.") from None
        if not principal.has_any(required):
            raise Forbidden(
                "This route needs one of the scopes: " + ", ".join(sorted(required)) + "."
            )
        request.state.principal = principal
        return principal

    # FastAPI writes the scopes of a route into ONE security requirement, which in OpenAPI
    # means all of them; openapi.py reads this to list them as alternatives instead.
    authenticate.admits_any_of = required  # type: ignore[attr-defined]
    return authenticate


def requires(*scopes: Scope) -> object:
    """The typed alias a route declares: `principal: requires(Scope.x)` admits a caller
    holding any of the scopes, e.g. `CitizensRead = requires(Scope.citizens_read)`."""
    return Annotated[Principal, Depends(Authenticator(required_scopes=set(scopes)))]
