"""The gateway's own routes: the token endpoint, the JWKS and API client management."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response, status

from services.platform.audit import record_access
from services.platform.auth import requires
from services.platform.db import DbSession
from services.platform.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from services.platform.problems import RateLimited
from services.platform.scopes import Role, Scope

from . import logic
from .models import ApiClient
from .schemas import ClientCreate, ClientCreated, ClientOut, TokenResponse

router = APIRouter()
ClientsAdmin = requires(Scope.clients_admin)


class _Caller:
    """The audit's actor for a token request, before there is a token."""

    def __init__(self, client_id: str, role: str) -> None:
        self.client_id = client_id
        self.role = role


def _client_out(client: ApiClient) -> ClientOut:
    return ClientOut(client_id=client.client_id, name=client.name, role=Role(client.role),
                     provider_id=client.provider_id, scopes=client.scopes.split(),
                     created_at=client.created_at, revoked_at=client.revoked_at)


@router.post("/v1/auth/token", response_model=TokenResponse, tags=["auth"],
             summary="OAuth 2 client credentials: get an access token")
def issue_token(
    request: Request,
    session: DbSession,
    grant_type: Annotated[str, Form()],
    client_id: Annotated[str, Form(max_length=200)],
    client_secret: Annotated[str, Form(max_length=500)],
    scope: Annotated[str | None, Form(max_length=2000)] = None,
) -> object:
    state = request.app.state
    remote = request.client.host if request.client else "-"
    retry_after = max(state.token_limiter.acquire(f"ip:{remote}"),
                      state.token_limiter.acquire(f"client:{client_id}"))
    if retry_after:
        raise RateLimited(retry_after)
    if grant_type != "client_credentials":
        raise logic.OAuthError(400, "unsupported_grant_type", "Only client_credentials.")
    try:
        client = logic.authenticate_client(session, client_id, client_secret)
    finally:
        # Refusals are on record too (written by the transaction dependency).
        known = session.get(ApiClient, client_id) if client_id else None
        # An unknown id is not recorded as typed: it could be anything, a CPR number or a
        # secret pasted into the wrong field.
        caller = (_Caller(known.client_id, known.role) if known
                  else _Caller("unknown-client", "unknown"))
        record_access(session, caller, action="token.issue", resource="token",
                      purpose="authentication")
    scopes = logic.granted_scopes(client, scope)
    settings = state.settings
    return logic.issue_token(state.keystore, client, scopes, issuer=settings.issuer,
                             audience=settings.audience,
                             lifetime_seconds=settings.token_lifetime_seconds)


@router.get("/.well-known/jwks.json", tags=["auth"], summary="The token signing keys")
def jwks(request: Request, response: Response) -> dict[str, object]:
    keystore = request.app.state.keystore
    keystore.reload_if_changed()
    response.headers["Cache-Control"] = "public, max-age=60"
    return keystore.jwks()


@router.post("/v1/admin/clients", status_code=status.HTTP_201_CREATED,
             response_model=ClientCreated, tags=["admin"])
def create_client(body: ClientCreate, session: DbSession, principal: ClientsAdmin) -> object:
    record_access(session, principal, action="client.create", resource="api_client",
                  purpose="administration")
    new = logic.create_client(
        session, name=body.name, role=body.role, provider_id=body.provider_id,
        scopes=body.scopes,
    )
    client = new.client
    return ClientCreated(client_id=client.client_id, client_secret=new.secret,
                         name=client.name, role=body.role, provider_id=client.provider_id,
                         scopes=client.scopes.split())


@router.get("/v1/admin/clients", response_model=Page[ClientOut], tags=["admin"])
def list_clients(session: DbSession, _: ClientsAdmin, limit: Limit = DEFAULT_LIMIT,
                 cursor: Cursor = None) -> object:
    items, next_cursor = logic.list_clients(session, limit=limit, cursor=cursor)
    return {"items": [_client_out(c) for c in items], "next_cursor": next_cursor}


@router.delete("/v1/admin/clients/{client_id}", status_code=status.HTTP_204_NO_CONTENT,
               tags=["admin"], summary="Revoke a client: its tokens stop working at once")
def revoke_client(client_id: str, request: Request, session: DbSession,
                  principal: ClientsAdmin) -> Response:
    record_access(session, principal, action="client.revoke", resource=f"api_client/{client_id}",
                  purpose="administration")
    logic.revoke_client(session, client_id)
    # Marked at once in this gateway; if the commit failed it would fail safe for a second.
    request.app.state.revocation.mark_revoked(client_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

