"""Cursor pagination: `limit` (1-500, default 50) and an opaque `cursor`.

Keyset, not offset: the cursor holds the sort key of the last row returned, so a page
costs the same however deep it is, and rows inserted meanwhile are neither skipped nor
repeated.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import TypeDecorator, tuple_
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session
from sqlmodel.sql.expression import SelectOfScalar

from .fields import IntegerText
from .problems import Unprocessable

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (at most 500)"),
                  IntegerText]
Cursor = Annotated[
    str | None, Query(max_length=512, description="Opaque cursor from the last page")
]


class InvalidCursor(Unprocessable):
    code, title = "invalid_cursor", "The cursor is not valid"


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _from_json(value: Any, python_type: type) -> Any:
    if python_type is datetime:
        return datetime.fromisoformat(value)
    if python_type is date:
        return date.fromisoformat(value)
    if python_type is uuid.UUID:
        return uuid.UUID(value)
    return python_type(value)


def _python_type(column: ColumnElement[Any]) -> type:
    column_type = column.type
    if isinstance(column_type, TypeDecorator):  # e.g. UtcDateTime: ask what it wraps
        column_type = column_type.impl_instance
    return column_type.python_type


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps([_to_json(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, types: list[type]) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != len(types):
            raise ValueError("shape")
        return [_from_json(v, t) for v, t in zip(values, types, strict=True)]
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise InvalidCursor("The cursor is not one this list gave out.",
                            loc=("query", "cursor")) from exc


def decode_cursor(cursor: str, columns: tuple[ColumnElement[Any], ...]) -> list[Any]:
    return _decode(cursor, [_python_type(c) for c in columns])


def page_of(items: Iterable[T], key: Callable[[T], uuid.UUID], *, limit: int,
            cursor: str | None) -> tuple[list[T], str | None]:
    """A page of a list made in memory (from another service's answer), in the order of
    `key`, a unique id: the same cursors as `paginate`."""
    ordered = sorted(items, key=key)
    if cursor:
        after = _decode(cursor, [uuid.UUID])[0]
        ordered = [item for item in ordered if key(item) > after]
    if len(ordered) <= limit:
        return ordered, None
    page = ordered[:limit]
    return page, encode_cursor([key(page[-1])])


def paginate(
    session: Session,
    statement: SelectOfScalar[T],
    *,
    order_by: tuple[ColumnElement[Any], ...],
    limit: int,
    cursor: str | None,
) -> tuple[list[T], str | None]:
    """Rows in ascending `order_by` order after `cursor`, and the next cursor or None.

    `order_by` must end in a unique column (an id) so that the order is total.
    """
    if cursor:
        statement = statement.where(tuple_(*order_by) > tuple_(*decode_cursor(cursor, order_by)))
    rows = list(session.exec(statement.order_by(*order_by).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor([getattr(last, c.key) for c in order_by])  # type: ignore[attr-defined]
