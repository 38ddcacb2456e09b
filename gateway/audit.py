"""The one audit trail across the system: `GET /v1/audit` and `GET /v1/audit/verify`.

Each service keeps its own hash chain in its own database, written in the same
transaction as the data it describes; the gateway keeps one more (token requests, client
administration, every forwarded request). These routes ask every service's internal
audit routes (`/internal/audit`, never proxied) with the auditor's own token, which the
service verifies itself, and merge the answers with the gateway's own entries.

Order and pages. The trail is ordered by the key (at, service, seq): the time of the
access, then the chain's name, then the entry's place in its chain, a total order. The
cursor is the key of the last entry of a page; each source is asked for the entries
after it (for its own chain that is (at, seq) > (at, seq) of the cursor; for a chain
named before the cursor's, at > at; for one named after, at >= at), `limit + 1` of them,
so the merged page is exact and the next one starts where it ended. An entry is stamped
with the time of the access and written when its transaction commits (the gateway's own
a fraction of a second later, in batches), so a page read while requests are still in
flight can miss an entry stamped before its end and written after: for a complete
export, end the period (`to`) a few seconds in the past.

All or nothing. A service that does not answer makes the whole answer a 503 problem
that names it (`down`): a trail missing one service's entries is never presented whole.

Verification. Every chain is recomputed from its first entry. A chain alone cannot
show that its last entries were deleted (or that everything after some entry was
rewritten with freshly computed hashes), so each successful verification records, in
the gateway's chain, the head (seq and hash) of every service's chain: an
`audit.verify` entry whose resource reads `audit_log/verify heads=citizens:41:<hash>,...`.
The next verification checks that each of those heads is still in its chain, unchanged.
What happened after the latest recorded verification, and the end of the gateway's own
chain, only an anchor kept outside the system can vouch for: keep the `head_hash` of
each chain from the answer (e.g. a nightly verification whose answer is archived).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine
from sqlmodel import select

from services.platform.audit import (
    AuditEntry,
    PendingEntry,
    entries_after,
    verify_chain_report,
    write_entries,
)
from services.platform.audit_routes import MAX_SEQ, AuditEntryOut, ChainOut, entry_out
from services.platform.auth import bearer_token, oauth2_scheme, reject_identity_headers
from services.platform.clock import LOCAL_ZONE
from services.platform.db import new_session
from services.platform.pagination import DEFAULT_LIMIT, Cursor, InvalidCursor, Limit, Page
from services.platform.problems import (
    Forbidden,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    Unprocessable,
)
from services.platform.scopes import Scope
from services.platform.settings import DOWNSTREAM_SERVICES, ServiceName, Settings
from services.platform.tokens import InvalidToken, Principal

logger = logging.getLogger("sikkerby.gateway.audit")
router = APIRouter(prefix="/v1/audit", tags=["audit"])

GATEWAY = ServiceName.gateway.value
# Recomputing a long chain takes a while: more room than an ordinary upstream call.
VERIFY_TIMEOUT_SECONDS = 120.0
# The part of a head's hash kept in a verification record (128 bits).
ANCHOR_HASH_CHARS = 32
ANCHORS_PREFIX = "audit_log/verify heads="
_ANCHOR = re.compile(r"([a-z]+):(\d+):([0-9a-f]{" + str(ANCHOR_HASH_CHARS) + "})")

SortKey = tuple[datetime, str, int]
# What both routes may answer besides their own: documented once.
AUDIT_REFUSALS: dict[int | str, dict[str, Any]] = {
    429: {"description": "rate_limited: too many audit requests (Retry-After)"},
    503: {"description": "service_unavailable: `down` names the services"}}


class Caller:
    def __init__(self, principal: Principal, token: str) -> None:
        self.principal = principal
        self.token = token


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    chains: dict[str, ChainOut]
    checked_at: datetime


def _auditor(action: str):  # type: ignore[no-untyped-def]
    async def authenticate(
        request: Request,
        authorization: str | None = Security(oauth2_scheme, scopes=[Scope.audit_read.value]),
    ) -> Caller:
        reject_identity_headers(request)
        token = bearer_token(authorization)
        try:
            principal = await request.app.state.token_verifier.verify(token)
        except InvalidToken as exc:
            logger.info("token refused: %s", exc)
            raise Unauthorized("The bearer token is invalid or expired.") from None
        if Scope.audit_read not in principal.scopes:
            # Trying to read the audit log without the right is itself on record.
            request.app.state.audit.record(
                actor=principal.client_id, role=principal.role.value, action=action,
                resource=f"GET {request.url.path}", outcome="refused:insufficient_scope",
                request_id=request.state.request_id, purpose="audit")
            raise Forbidden("This route needs the scope audit:read.")
        # Each call asks every service (and a verification streams every chain): an
        # auditor's client gets its own, smaller budget for these routes.
        retry_after = request.app.state.audit_limiter.acquire(principal.client_id)
        if retry_after:
            raise RateLimited(retry_after, "Too many audit requests from this client.")
        return Caller(principal, token)

    return authenticate


TrailReader = Annotated[Caller, Security(_auditor("audit.read"), scopes=["audit:read"])]
ChainVerifier = Annotated[Caller, Security(_auditor("audit.verify"), scopes=["audit:read"])]


# Query values ----------------------------------------------------------------------
def _invalid(field: str, message: str) -> Unprocessable:
    return Unprocessable("One or more fields are missing or invalid.",
                         errors=[{"loc": ["query", field], "type": "value_error",
                                  "msg": message}])


def parse_bound(text: str | None, field: str, *, end: bool) -> datetime | None:
    """A date (a Copenhagen day: `from` its start, `to` its end) or an RFC 3339
    timestamp with offset (`from` inclusive, `to` exclusive)."""
    if text is None:
        return None
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if end:
                day += timedelta(days=1)
            return datetime(day.year, day.month, day.day, tzinfo=LOCAL_ZONE).astimezone(UTC)
        value = datetime.fromisoformat(text)
        if value.tzinfo is None:
            raise _invalid(field, "a timestamp needs its offset (e.g. +02:00 or Z)")
        return value.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: the edges of the calendar
        raise _invalid(field, "a date YYYY-MM-DD or an RFC 3339 timestamp") from None


def encode_cursor(key: SortKey) -> str:
    at, service, seq = key
    raw = json.dumps([at.astimezone(UTC).isoformat(timespec="microseconds"), service, seq],
                     separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> SortKey:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at_text, service, seq = json.loads(raw)
        at = datetime.fromisoformat(at_text)
        if at.tzinfo is None or not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError("shape")
        return at.astimezone(UTC), ServiceName(service).value, seq
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidCursor("The cursor is not one this list gave out.",
                            loc=("query", "cursor")) from exc


def after_for(service: str, cursor: SortKey | None) -> tuple[datetime, int] | None:
    """The (at, seq) keyset of one chain that follows `cursor` in the merged order."""
    if cursor is None:
        return None
    at, cursor_service, seq = cursor
    if service == cursor_service:
        return at, seq
    return (at, -1) if service > cursor_service else (at, MAX_SEQ)


def sort_key(entry: AuditEntryOut) -> SortKey:
    return entry.at.astimezone(UTC), entry.service, entry.seq


# Asking the services -----------------------------------------------------------------
class _NoAnswer(Exception):
    def __init__(self, service: str) -> None:
        super().__init__(service)
        self.service = service


async def _ask(request: Request, caller: Caller, service: ServiceName, path: str,
               params: dict[str, Any], timeout: float) -> Any:
    settings: Settings = request.app.state.settings
    client: httpx.AsyncClient = request.app.state.http
    try:
        response = await client.get(
            f"{settings.service_url(service)}/internal/audit{path}", params=params,
            headers={"Authorization": f"Bearer {caller.token}",
                     "X-Request-ID": request.state.request_id},
            timeout=httpx.Timeout(timeout, connect=settings.upstream_connect_timeout_seconds))
        if response.status_code != 200:
            logger.warning("audit: %s answered %s", service.value, response.status_code)
            raise _NoAnswer(service.value)
        return response.json()
    except (httpx.HTTPError, ValueError):
        logger.warning("audit: no answer from %s", service.value)
        raise _NoAnswer(service.value) from None


async def _ask_all(request: Request, caller: Caller, path: str,
                   params_for: dict[ServiceName, dict[str, Any]], timeout: float
                   ) -> dict[str, Any]:
    """Every service's answer, or a 503 naming each one that gave none."""
    results = await asyncio.gather(
        *(_ask(request, caller, service, path, params_for[service], timeout)
          for service in DOWNSTREAM_SERVICES), return_exceptions=True)
    down = [r.service for r in results if isinstance(r, _NoAnswer)]
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, _NoAnswer):
            raise result
    if down:
        raise ServiceUnavailable(
            "The audit trail cannot be given whole: " + ", ".join(down)
            + (" does" if len(down) == 1 else " do") + " not answer.", down=down)
    return {service.value: result
            for service, result in zip(DOWNSTREAM_SERVICES, results, strict=True)}


def _record(request: Request, caller: Caller, *, action: str, resource: str, outcome: str,
            citizen_id: uuid.UUID | None = None) -> None:
    request.app.state.audit.record(
        actor=caller.principal.client_id, role=caller.principal.role.value, action=action,
        resource=resource, outcome=outcome, request_id=request.state.request_id,
        citizen_id=citizen_id, purpose="audit")


# The trail -----------------------------------------------------------------------------
def _own_entries(engine: Engine, *, citizen_id: uuid.UUID | None, start: datetime | None,
                 end: datetime | None, after: tuple[datetime, int] | None,
                 limit: int) -> list[AuditEntryOut]:
    with new_session(engine) as session:
        entries = entries_after(session, citizen_id=citizen_id, start=start, end=end,
                                after=after, limit=limit)
        return [entry_out(entry, GATEWAY) for entry in entries]


def _service_entries(service: str, answer: Any) -> list[AuditEntryOut]:
    try:
        items = [AuditEntryOut.model_validate(item) for item in answer["items"]]
    except (KeyError, TypeError, ValidationError):
        raise ServiceUnavailable(f"The {service} service gave no valid audit answer.",
                                 down=[service]) from None
    if any(item.service != service for item in items):
        raise ServiceUnavailable(f"The {service} service gave no valid audit answer.",
                                 down=[service])
    return items


@router.get(
    "", response_model=Page[AuditEntryOut],
    summary="The audit trail of every service, ordered by time (auditor)",
    description="Every read and write of personal data, and every refusal, across all "
    "services, with the chain each entry belongs to (`service`, `seq`). `from` and `to` "
    "take a date (a Copenhagen day; `to` includes it) or an RFC 3339 timestamp with "
    "offset (`from` inclusive, `to` exclusive). A service that does not answer makes "
    "the answer a 503 that names it.",
    responses=AUDIT_REFUSALS)
async def read_trail(
    request: Request,
    caller: TrailReader,
    citizen_id: uuid.UUID | None = None,
    start: Annotated[str | None, Query(alias="from", max_length=40,
                                       description="YYYY-MM-DD or RFC 3339")] = None,
    end: Annotated[str | None, Query(alias="to", max_length=40,
                                     description="YYYY-MM-DD or RFC 3339")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> dict[str, object]:
    lower = parse_bound(start, "from", end=False)
    upper = parse_bound(end, "to", end=True)
    key = decode_cursor(cursor) if cursor else None
    state = request.app.state
    await state.audit.flush()  # the gateway's own entries still queued

    def params(service: ServiceName) -> dict[str, Any]:
        values: dict[str, Any] = {"limit": limit + 1}
        if citizen_id is not None:
            values["citizen_id"] = str(citizen_id)
        if lower is not None:
            values["from"] = lower.isoformat()
        if upper is not None:
            values["to"] = upper.isoformat()
        after = after_for(service.value, key)
        if after is not None:
            values["after_at"] = after[0].isoformat()
            values["after_seq"] = after[1]
        return values

    own = asyncio.ensure_future(run_in_threadpool(
        _own_entries, state.read_engine, citizen_id=citizen_id, start=lower, end=upper,
        after=after_for(GATEWAY, key), limit=limit + 1))
    try:
        answers = await _ask_all(request, caller, "",
                                 {s: params(s) for s in DOWNSTREAM_SERVICES},
                                 state.settings.upstream_timeout_seconds)
        merged = [*await own]
        for service, answer in answers.items():
            merged += _service_entries(service, answer)
    except ServiceUnavailable:
        await asyncio.gather(own, return_exceptions=True)
        _record(request, caller, action="audit.read", resource="audit_log",
                outcome="refused:service_unavailable", citizen_id=citizen_id)
        raise
    merged.sort(key=sort_key)
    page = merged[:limit]
    next_cursor = encode_cursor(sort_key(page[-1])) if len(merged) > limit else None
    _record(request, caller, action="audit.read", resource="audit_log", outcome="success",
            citizen_id=citizen_id)
    return {"items": page, "next_cursor": next_cursor}


# Verification ----------------------------------------------------------------------
def latest_anchors(engine: Engine) -> dict[str, tuple[int, str]]:
    """The heads recorded by the latest successful verification."""
    with new_session(engine) as session:
        resource = session.exec(
            select(AuditEntry.resource)
            .where(AuditEntry.action == "audit.verify", AuditEntry.outcome == "success")
            .order_by(AuditEntry.seq.desc()).limit(1)).first()  # type: ignore[union-attr]
    if not resource or not resource.startswith(ANCHORS_PREFIX):
        return {}
    return {name: (int(seq), digest)
            for name, seq, digest in _ANCHOR.findall(resource[len(ANCHORS_PREFIX):])}


def anchors_resource(chains: dict[str, ChainOut], names: Sequence[str]) -> str:
    heads = [f"{name}:{chains[name].head_seq}:{chains[name].head_hash[:ANCHOR_HASH_CHARS]}"
             for name in names
             if chains[name].head_seq is not None and chains[name].head_hash]
    return ANCHORS_PREFIX + ",".join(heads)


def _verify_own(engine: Engine) -> ChainOut:
    with new_session(engine) as session:
        return ChainOut.of(verify_chain_report(session))


@router.get(
    "/verify", response_model=VerifyOut,
    summary="Recompute every service's hash chain (auditor)",
    description="`ok` is false when any chain is broken: an entry changed or deleted, or "
    "a chain's head recorded by an earlier verification no longer there (its last "
    "entries deleted or rewritten). `chains` gives each chain's own result and head. "
    "Entries deleted by audit retention (`sikkerby retention run`, older than the "
    "configured years) are no break: that chain then starts at `starts_at_seq`, and "
    "`retained_before` says which entries went.",
    responses=AUDIT_REFUSALS)
async def verify_trail(request: Request, caller: ChainVerifier) -> VerifyOut:
    state = request.app.state
    await state.audit.flush()
    anchors = await run_in_threadpool(latest_anchors, state.read_engine)

    def params(service: ServiceName) -> dict[str, Any]:
        anchor = anchors.get(service.value)
        return {"anchor_seq": anchor[0], "anchor_hash": anchor[1]} if anchor else {}

    own = asyncio.ensure_future(run_in_threadpool(_verify_own, state.read_engine))
    try:
        answers = await _ask_all(request, caller, "/verify",
                                 {s: params(s) for s in DOWNSTREAM_SERVICES},
                                 max(VERIFY_TIMEOUT_SECONDS,
                                     state.settings.upstream_timeout_seconds))
        chains = {GATEWAY: await own}
        for service, answer in answers.items():
            chains[service] = ChainOut.model_validate(answer)
    except ServiceUnavailable:
        await asyncio.gather(own, return_exceptions=True)
        _record(request, caller, action="audit.verify", resource="audit_log",
                outcome="refused:service_unavailable")
        raise
    except ValidationError:
        await asyncio.gather(own, return_exceptions=True)
        raise ServiceUnavailable("A service gave no valid verification answer.") from None
    ok = all(chain.ok for chain in chains.values())
    if ok:
        resource = anchors_resource(chains, [s.value for s in DOWNSTREAM_SERVICES])
    else:
        resource = "audit_log/verify broken=" + ",".join(
            name for name, chain in chains.items() if not chain.ok)
    # Written before the answer leaves: the next verification relies on these heads.
    await run_in_threadpool(write_entries, state.engine, [PendingEntry(
        at=datetime.now(UTC), actor=caller.principal.client_id,
        role=caller.principal.role.value, action="audit.verify", resource=resource,
        citizen_id=None, purpose="audit", outcome="success" if ok else "broken",
        request_id=request.state.request_id)])
    return VerifyOut(ok=ok, entries=sum(chain.entries for chain in chains.values()),
                     chains=chains, checked_at=datetime.now(UTC))
