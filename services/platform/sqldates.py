"""Date arithmetic in SQL that reads the same on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Date, func, literal
from sqlalchemy.sql.elements import ColumnElement


def day(value: date) -> ColumnElement[Any]:
    # A bound date (not CAST: SQLite would turn '2025-01-31' into the number 2025).
    return literal(value, Date)


def days_between(dialect: str, start: ColumnElement[Any], end: ColumnElement[Any]
                 ) -> ColumnElement[Any]:
    """end - start in whole days."""
    if dialect == "postgresql":
        return end - start  # date - date is an integer number of days
    return func.julianday(end) - func.julianday(start)


def least(dialect: str, *values: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.least(*values) if dialect == "postgresql" else func.min(*values)


def greatest(dialect: str, *values: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.greatest(*values) if dialect == "postgresql" else func.max(*values)
