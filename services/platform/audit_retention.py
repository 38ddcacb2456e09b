"""Audit retention: entries go when their time is up, and verification still holds.

A chain whose first entries were simply deleted looks tampered with: the first
remaining entry names a hash that is no longer there. So retention cuts the chain in a
way the chain itself vouches for:

1. it finds the first entry to keep: the first (by seq) stamped at or after `before`
   (when every entry is older, the last one); only the entries before it go, a prefix
   of the chain;
2. it recomputes the chain from its current start through that entry: a prefix that
   does not verify is not deleted (deleting it would destroy the evidence), the run
   refuses that chain and says so;
3. it records the cut (`audit_cut`: the first kept seq and the hash it names) and
   deletes the prefix. The append-only trigger lets through deletes below the latest
   cut and nothing else, and only the databases' owner may record a cut;
4. it records the run as an entry of the chain (`audit.retention`), so the cut is on
   record in what remains.

Verification (services.platform.audit.verify_chain_report) then starts from the latest
cut's hash at its first kept entry. All in the caller's transaction: the cut, the
deletion and the entry that records them commit together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import delete, func
from sqlmodel import Session, select

from .audit import (
    Actor,
    AuditCut,
    AuditEntry,
    ChainReport,
    flush_pending_audit,
        record_access,
    verify_chain_report,
)
from .clock import LOCAL_ZONE, add_years
from .middleware import request_id_var

PURPOSE = "retention"


class ChainNotVerified(Exception):
    """The entries to delete do not verify: nothing is deleted."""

    def __init__(self, report: ChainReport) -> None:
        super().__init__(f"the chain is broken at seq {report.broken_at_seq} "
                         f"({report.problem}); nothing was deleted")
        self.report = report


@dataclass(frozen=True)
class AuditRetention:
    before: datetime
    entries: int  # entries stamped before `before` that go (a dry run: would go)
    first_kept_seq: int | None = None


def cut_off(today: date, years: int) -> datetime:
    """Midnight in Copenhagen, `years` before `today`: entries stamped before it have
    passed their time."""
    return datetime.combine(add_years(today, -years), time(), LOCAL_ZONE).astimezone(UTC)


def _count_below(session: Session, seq: int) -> int:
    return session.exec(select(func.count()).select_from(AuditEntry)
                        .where(AuditEntry.seq < seq)).one()


def plan(session: Session, before: datetime) -> AuditRetention:
    """What a run would delete (a dry run): every entry before the first one stamped at or
    after `before`. When every entry is older, the last one stays as the chain's start."""
    first_kept = session.exec(select(func.min(AuditEntry.seq))
                              .where(AuditEntry.at >= before)).one()
    if first_kept is None:
        first_kept = session.exec(select(func.max(AuditEntry.seq))).one()
    if first_kept is None:  # an empty chain
        return AuditRetention(before=before, entries=0)
    return AuditRetention(before=before, entries=_count_below(session, first_kept),
                          first_kept_seq=first_kept)


def apply(session: Session, actor: Actor, before: datetime) -> AuditRetention:
    """Cut the chain before `before` (see the module's docstring); the caller commits.
    Raises ChainNotVerified, having deleted nothing, when the prefix does not verify."""
    planned = plan(session, before)
    if planned.entries == 0 or planned.first_kept_seq is None:
        return planned
    first_kept = planned.first_kept_seq
    report = verify_chain_report(session, through_seq=first_kept)
    if not report.ok:
        raise ChainNotVerified(report)
    kept = session.exec(select(AuditEntry).where(AuditEntry.seq == first_kept)).one()
    session.add(AuditCut(at=datetime.now(UTC), before=before, first_kept_seq=first_kept,
                         prev_hash=kept.prev_hash, entries_deleted=planned.entries,
                         request_id=request_id_var.get()))
    session.flush()  # the trigger reads the cut
    session.execute(delete(AuditEntry).where(AuditEntry.seq < first_kept))  # type: ignore[arg-type]
    # Last, so the chain's append lock is held only until the caller commits.
    record_access(session, actor, action="audit.retention",
                  resource=f"audit_log/retention before={before.isoformat()} "
                           f"entries={planned.entries} first_kept_seq={first_kept}",
                  purpose=PURPOSE)
    flush_pending_audit(session)
    return planned
