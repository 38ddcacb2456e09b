"""Weekly job conversations: a citizen enrolled in a week with no activation hours in it
is called to a conversation at the jobcenter. Due, booked, held and missed follow from
the placements, the bookings and their outcomes. A missed conversation opens a sanction
case in the same transaction as the outcome."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session, select

from services.platform.clock import LOCAL_ZONE
from services.platform.pagination import page_of
from services.platform.problems import Conflict, NotFound, Unprocessable
from services.platform.tokens import Principal

from .audit import audit_citizen
from .locks import lock_row
from .models import Conversation, Placement
from .sanctions import open_missed_conversation_case
from .schedule import occupies
from .schemas import ConversationIn, ConversationStatus
from .weeks import week_label


class OutcomeRecorded(Conflict):
    code, title = "outcome_recorded", "The conversation's outcome is already recorded"


def status_of(conversation: Conversation) -> ConversationStatus:
    if conversation.attended is None:
        return ConversationStatus.booked
    return ConversationStatus.held if conversation.attended else ConversationStatus.missed


def local_day(moment: datetime) -> date:
    return moment.astimezone(LOCAL_ZONE).date()


def due_list(session: Session, principal: Principal, monday: date,
             enrolled: list[uuid.UUID], *, limit: int, cursor: str | None
             ) -> tuple[list[tuple[uuid.UUID, ConversationStatus, uuid.UUID | None]],
                        str | None]:
    """A page, in citizen id order, of the citizens enrolled in the week with no activation
    hours in it: each with the conversation's status that week (the latest booking
    counts). Only the citizens on the page are looked at, and audited."""
    sunday = monday + timedelta(days=6)
    label = week_label(monday)
    active = {p.citizen_id for p in session.exec(select(Placement).where(
        Placement.citizen_id.in_(enrolled),  # type: ignore[attr-defined]
        Placement.starts_on <= sunday)) if occupies(p, monday, sunday)}
    page, next_cursor = page_of((c for c in enrolled if c not in active), lambda c: c,
                                limit=limit, cursor=cursor)
    booked: dict[uuid.UUID, Conversation] = {}
    for conversation in session.exec(select(Conversation).where(
            Conversation.week == label,
            Conversation.citizen_id.in_(page)).order_by(  # type: ignore[attr-defined]
            Conversation.booked_at)):
        booked[conversation.citizen_id] = conversation
    result = []
    for citizen_id in page:
        audit_citizen(session, principal, "conversation.due", citizen_id)
        conversation = booked.get(citizen_id)
        result.append((citizen_id,
                       status_of(conversation) if conversation else ConversationStatus.due,
                       conversation.id if conversation else None))
    return result, next_cursor


def book(session: Session, principal: Principal, data: ConversationIn) -> Conversation:
    audit_citizen(session, principal, "conversation.book", data.citizen_id)
    conversation = Conversation(
        citizen_id=data.citizen_id, week=week_label(local_day(data.scheduled_at)),
        scheduled_at=data.scheduled_at, booked_by=principal.client_id,
        booked_at=datetime.now(UTC))
    session.add(conversation)
    session.flush()
    return conversation


def record_outcome(session: Session, principal: Principal, conversation_id: uuid.UUID,
                   attended: bool) -> Conversation:
    conversation = lock_row(session, Conversation, id=conversation_id)
    if conversation is None:
        raise NotFound("No such conversation.")
    audit_citizen(session, principal, "conversation.outcome", conversation.citizen_id)
    if conversation.attended is not None:
        raise OutcomeRecorded()
    # A missed conversation opens a sanction case: only once its time has come.
    if conversation.scheduled_at > datetime.now(UTC):
        raise Unprocessable("An outcome is recorded once the conversation's time has come.",
                            loc=("body", "attended"))
    conversation.attended = attended
    conversation.outcome_by = principal.client_id
    conversation.outcome_at = datetime.now(UTC)
    session.add(conversation)
    if not attended:
        open_missed_conversation_case(session, citizen_id=conversation.citizen_id,
                                      conversation_id=conversation.id,
                                      day=local_day(conversation.scheduled_at))
    session.flush()
    return conversation
