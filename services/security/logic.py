"""The security service's rules: police uploads, what is in force, measures, the group
check and referrals. No HTTP here: the routes ask the other services first and hand the
answers in.

The rule of force. An assessment is in force on day D when D lies within its validity and
no assessment received later for the same person has begun by D: a newer one supersedes
the older from the newer one's `valid_from`, whatever its level, and the older never
comes back, not even when the newer expires (the police's latest word stands; an expired
assessment no longer constrains). So the one in force on D, if any, is the person's most
recently received assessment with `valid_from <= D`, provided it has not expired on D.

Every read and write of police data is audited here, with the citizen's id where known.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from services.platform.audit import record_access
from services.platform.cpr import mask_cpr
from services.platform.crypto import FieldCipher, KeyedHasher
from services.platform.db import new_session
from services.platform.idempotency import claim_idempotency_key, store_idempotent_response
from services.platform.pagination import paginate
from services.platform.problems import NotFound
from services.platform.tokens import Principal

from .measures import Measure, MeasurePolicy, in_order
from .models import AffiliationConflict, Referral, ReferralStatus, ThreatAssessment, ThreatSubject
from .schemas import (
    AssessmentStatus,
    ConflictCreate,
    ConflictOut,
    ConstraintsOut,
    GroupCheckIn,
    GroupCheckOut,
    RecheckOut,
    ReferralOut,
    RefusalMeasure,
    ThreatAssessmentCreate,
    ThreatAssessmentOut,
)

# The citizens service's purpose (services/citizens/logic.py CPR_HASH_PURPOSE): with the
# same key, a subject's hash equals the citizen's, so the two could be matched.
CPR_HASH_PURPOSE = "cpr"
AFFILIATION_HASH_PURPOSE = "affiliation"
# Associated data of each encrypted column; the row id is appended.
AFFILIATIONS_CONTEXT = "threat_assessment.affiliations"
NOTES_CONTEXT = "threat_assessment.notes"
CONFLICT_A_CONTEXT = "affiliation_conflict.a"
CONFLICT_B_CONTEXT = "affiliation_conflict.b"
REFERRAL_CPR_CONTEXT = "referral.cpr"
# Why police data was touched, as the audit log says.
POLICE_UPLOAD = "police_upload"
SECURITY_COORDINATION = "security_coordination"
SAFETY_MEASURES = "safety_measures"
PLACEMENT_CHECK = "placement_check"
REFERRAL_HANDLING = "referral_handling"
RECHECK_BATCH = 200


@dataclass(frozen=True)
class Keys:
    cipher: FieldCipher
    hasher: KeyedHasher

    def cpr_hash(self, digits: str) -> str:
        return self.hasher.hash(digits, purpose=CPR_HASH_PURPOSE)

    def affiliation_hash(self, code: str) -> str:
        # Codes are compared without regard to case: "ltf" and "LTF" are one group.
        return self.hasher.hash(code.upper(), purpose=AFFILIATION_HASH_PURPOSE)

    def seal(self, text: str, context: str, row_id: uuid.UUID) -> str:
        return self.cipher.encrypt(text, context=f"{context}:{row_id}")

    def open(self, stored: str, context: str, row_id: uuid.UUID) -> str:
        return self.cipher.decrypt(stored, context=f"{context}:{row_id}")


@dataclass(frozen=True)
class IdempotentRequest:
    """The Idempotency-Key header and the fingerprint of the request it came with."""

    key: str
    fingerprint: str


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: dict[str, Any]


def _claim(session: Session, principal: Principal,
           idempotency: IdempotentRequest | None) -> Answer | None:
    if idempotency is None:
        return None
    stored = claim_idempotency_key(session, principal.client_id, idempotency.key,
                                   idempotency.fingerprint)
    return None if stored is None else Answer(stored.status_code, stored.body)


def _answer(session: Session, principal: Principal, idempotency: IdempotentRequest | None,
            answer: Answer) -> Answer:
    if idempotency is not None:
        store_idempotent_response(session, principal.client_id, idempotency.key,
                                  answer.status_code, answer.body)
    return answer


def _measures_of(assessment: ThreatAssessment) -> list[Measure]:
    return in_order(m for m in assessment.measures.split(",") if m)


def _affiliations_of(assessment: ThreatAssessment, keys: Keys) -> list[str]:
    return json.loads(keys.open(assessment.affiliations_encrypted, AFFILIATIONS_CONTEXT,
                                assessment.id))


def _affiliation_hashes(assessments: Iterable[ThreatAssessment], keys: Keys) -> set[str]:
    """The keyed hashes of every affiliation in these assessments (how conflicts match)."""
    return {keys.affiliation_hash(code) for assessment in assessments
            for code in _affiliations_of(assessment, keys)}


def _newest_first(assessment: ThreatAssessment) -> tuple[datetime, uuid.UUID]:
    return assessment.received_at, assessment.id


# Police uploads ----------------------------------------------------------------------------
def _subject_row(session: Session, cpr_hash: str) -> ThreatSubject | None:
    # PostgreSQL: uploads for one person queue here. SQLite: BEGIN IMMEDIATE already.
    return session.exec(select(ThreatSubject).where(ThreatSubject.cpr_hash == cpr_hash)
                        .with_for_update()).first()


def _resolve(session: Session, subject: ThreatSubject, citizen_id: uuid.UUID,
             now: datetime) -> Referral | None:
    """The person is known to the citizens service now: link, and close the referral."""
    subject.citizen_id = citizen_id
    subject.resolved_at = now
    session.add(subject)
    referral = session.exec(select(Referral).where(Referral.subject_id == subject.id)).first()
    if referral is not None and referral.status == ReferralStatus.open.value:
        referral.status = ReferralStatus.resolved.value
        referral.resolved_at = now
        session.add(referral)
    session.flush()
    return referral


def _subject_for(session: Session, keys: Keys, cpr_digits: str,
                 citizen_id: uuid.UUID | None, now: datetime) -> ThreatSubject:
    """The reported person's subject row, locked, made on the first report. A person
    unknown to the citizens service gets one referral, however often reported."""
    cpr_hash = keys.cpr_hash(cpr_digits)
    subject = _subject_row(session, cpr_hash)
    if subject is None:
        subject = ThreatSubject(cpr_hash=cpr_hash, citizen_id=citizen_id, created_at=now,
                                resolved_at=now if citizen_id else None)
        try:
            with session.begin_nested():
                session.add(subject)
        except IntegrityError:  # reported by a concurrent upload a moment ago
            subject = _subject_row(session, cpr_hash)
            if subject is None:  # pragma: no cover - the conflicting row is committed
                raise
        else:
            if citizen_id is None:
                referral = Referral(subject_id=subject.id, cpr_encrypted="", created_at=now,
                                    last_reported_at=now)
                referral.cpr_encrypted = keys.seal(cpr_digits, REFERRAL_CPR_CONTEXT,
                                                   referral.id)
                session.add(referral)
                session.flush()
            return subject
    if subject.citizen_id is None:
        if citizen_id is not None:
            _resolve(session, subject, citizen_id, now)
        else:
            referral = session.exec(select(Referral).where(
                Referral.subject_id == subject.id)).one()
            referral.last_reported_at = now
            session.add(referral)
            session.flush()
    return subject


def link_registration(session: Session, principal: Principal, keys: Keys, cpr_digits: str,
                      citizen_id: uuid.UUID) -> None:
    """The citizens service has registered this person: what the police reported before
    (assessments, affiliations in conflicts) applies to the citizen from now on, and the
    referral is resolved. Nothing is stored for a person the police never reported.

    The citizens service guarantees one citizen per CPR number and announces inside its
    registration's transaction; a link to another id (a registration that was announced
    and then not committed) is replaced."""
    subject = _subject_row(session, keys.cpr_hash(cpr_digits))
    if subject is None or subject.citizen_id == citizen_id:
        return
    _resolve(session, subject, citizen_id, datetime.now(UTC))
    record_access(session, principal, action="threat_subject.link",
                  resource=f"threat_subject/{subject.id}", purpose=REFERRAL_HANDLING,
                  citizen_id=citizen_id)


def record_assessment(session: Session, principal: Principal, data: ThreatAssessmentCreate,
                      keys: Keys, citizen_id: uuid.UUID | None,
                      idempotency: IdempotentRequest | None) -> Answer:
    """Store an upload; `citizen_id` is what the citizens service said (None: unknown,
    and the person becomes a referral). The answer is the same either way."""
    replay = _claim(session, principal, idempotency)
    if replay is not None:
        return replay
    now = datetime.now(UTC)
    subject = _subject_for(session, keys, data.cpr, citizen_id, now)
    assessment = ThreatAssessment(
        subject_id=subject.id, level=data.level, valid_from=data.valid_from,
        valid_until=data.valid_until, measures=",".join(in_order(data.measures)),
        affiliations_encrypted="", received_by=principal.client_id, received_at=now)
    assessment.affiliations_encrypted = keys.seal(
        json.dumps(data.affiliations), AFFILIATIONS_CONTEXT, assessment.id)
    if data.notes is not None:
        assessment.notes_encrypted = keys.seal(data.notes, NOTES_CONTEXT, assessment.id)
    session.add(assessment)
    session.flush()
    record_access(session, principal, action="threat_assessment.create",
                  resource=f"threat_assessment/{assessment.id}", purpose=POLICE_UPLOAD,
                  citizen_id=subject.citizen_id)
    return _answer(session, principal, idempotency, Answer(202, {"id": str(assessment.id)}))


def record_conflict(session: Session, principal: Principal, data: ConflictCreate, keys: Keys,
                    idempotency: IdempotentRequest | None) -> Answer:
    replay = _claim(session, principal, idempotency)
    if replay is not None:
        return replay
    conflict = AffiliationConflict(
        affiliation_a_hash=keys.affiliation_hash(data.affiliation_a),
        affiliation_b_hash=keys.affiliation_hash(data.affiliation_b),
        affiliation_a_encrypted="", affiliation_b_encrypted="",
        valid_from=data.valid_from, valid_until=data.valid_until,
        received_by=principal.client_id, received_at=datetime.now(UTC))
    conflict.affiliation_a_encrypted = keys.seal(data.affiliation_a, CONFLICT_A_CONTEXT,
                                                 conflict.id)
    conflict.affiliation_b_encrypted = keys.seal(data.affiliation_b, CONFLICT_B_CONTEXT,
                                                 conflict.id)
    session.add(conflict)
    session.flush()
    record_access(session, principal, action="conflict.create",
                  resource=f"conflict/{conflict.id}", purpose=POLICE_UPLOAD)
    return _answer(session, principal, idempotency, Answer(201, {"id": str(conflict.id)}))


# What is in force --------------------------------------------------------------------------
def in_force(session: Session, citizen_ids: Iterable[uuid.UUID],
             day: date) -> dict[uuid.UUID, ThreatAssessment]:
    """Each citizen's assessment in force on `day` (see the module's rule of force);
    citizens with none are absent. One query for any number of citizens."""
    ids = list(dict.fromkeys(citizen_ids))
    if not ids:
        return {}
    rows = session.exec(
        select(ThreatAssessment, ThreatSubject.citizen_id)
        .join(ThreatSubject, ThreatSubject.id == ThreatAssessment.subject_id)
        .where(ThreatSubject.citizen_id.in_(ids),  # type: ignore[union-attr]
               ThreatAssessment.valid_from <= day)
    ).all()
    latest: dict[uuid.UUID, ThreatAssessment] = {}
    for assessment, citizen_id in rows:
        current = latest.get(citizen_id)
        if current is None or _newest_first(assessment) > _newest_first(current):
            latest[citizen_id] = assessment
    return {cid: a for cid, a in latest.items() if a.valid_until >= day}


def _required(policy: MeasurePolicy, assessment: ThreatAssessment | None) -> list[Measure]:
    return [] if assessment is None else policy.required(assessment.level,
                                                         _measures_of(assessment))


def constraints(session: Session, principal: Principal, citizen_id: uuid.UUID, day: date,
                policy: MeasurePolicy, *, visible: bool) -> ConstraintsOut:
    """The measures in force on `day`. A citizen with no assessment in force (or unknown
    here) has none: the answer does not tell whether the police ever reported them.
    `visible` is False for a provider without an active placement of the citizen: 404."""
    record_access(session, principal, action="constraints.read",
                  resource=f"constraints/{citizen_id}", purpose=SAFETY_MEASURES,
                  citizen_id=citizen_id)
    if not visible:
        raise NotFound("No such citizen among your placements.")
    measures = _required(policy, in_force(session, [citizen_id], day).get(citizen_id))
    return ConstraintsOut(citizen_id=citizen_id, measures=measures,
                          max_group_size=policy.max_group_size(measures), as_of=day)


# The group check ---------------------------------------------------------------------------
def _conflict_in_force(session: Session, ours: set[str], theirs: set[str] | None,
                       day: date) -> bool:
    """Is one of `ours` in a conflict in force with one of `theirs` (None: with any)?"""
    if not ours or theirs is not None and not theirs:
        return False
    a, b = AffiliationConflict.affiliation_a_hash, AffiliationConflict.affiliation_b_hash
    if theirs is None:
        pair = or_(a.in_(ours), b.in_(ours))  # type: ignore[attr-defined]
    else:
        pair = or_(and_(a.in_(ours), b.in_(theirs)),  # type: ignore[attr-defined]
                   and_(b.in_(ours), a.in_(theirs)))  # type: ignore[attr-defined]
    found = session.exec(
        select(AffiliationConflict.id).where(
            AffiliationConflict.valid_from <= day, AffiliationConflict.valid_until >= day,
            pair).limit(1)).first()
    return found is not None


def group_check(session: Session, principal: Principal, data: GroupCheckIn, day: date,
                policy: MeasurePolicy, keys: Keys) -> GroupCheckOut:
    """May the candidate join these members (and this cohort, and this contract) on `day`?

    Refusals, checked in this order, each naming only its measure:
    - `individual_only`: the candidate has it and a cohort is involved
      (`cohort_max_size` is not null);
    - `small_group`: a cohort is involved and the candidate's group limit is below the
      size the cohort may reach (`cohort_max_size`, or the members and the candidate if
      that is more), or some member's group limit is below the group the candidate's
      joining makes (the members and the candidate: members already placed are not
      refused again, but nobody may be added past their limit);
    - `no_shared_location_with_conflicts`: an affiliation of the candidate and one of a
      member, or of a citizen at the same place and time (`site_member_ids`), are in a
      conflict in force (either way round), cohort or not (DOMAIN.md: rivals are never
      placed in the same group or at the same place and time). When the candidate has an
      affiliation in some conflict in force and the site was not sent, the answer is
      `site_members_needed` (not allowed yet): most candidates have none, and the site can
      be thousands of citizens;
    - `contract_not_cleared`: the candidate's level in force is above
      `contract_max_threat_level`.
    Only assessments in force on `day` count; a citizen with none has no measures, no
    affiliations and level 0. With no members and no cohort it is a pure clearance check.
    """
    candidate = data.citizen_id
    members = [m for m in dict.fromkeys(data.member_ids) if m != candidate]
    record_access(session, principal, action="group_check",
                  resource=f"group_check/{candidate}", purpose=PLACEMENT_CHECK,
                  citizen_id=candidate)
    for member in members:
        record_access(session, principal, action="group_check.member",
                      resource=f"group_check/{candidate}", purpose=PLACEMENT_CHECK,
                      citizen_id=member)
    force = in_force(session, [candidate, *members], day)
    own = force.get(candidate)
    measures = _required(policy, own)

    def refuse(measure: RefusalMeasure) -> GroupCheckOut:
        return GroupCheckOut(allowed=False, measure=measure)

    if data.cohort_max_size is not None:
        if Measure.individual_only in measures:
            return refuse(RefusalMeasure.individual_only)
        group_after = len(members) + 1
        limit = policy.max_group_size(measures)
        if limit is not None and limit < max(data.cohort_max_size, group_after):
            return refuse(RefusalMeasure.small_group)
        for member in members:
            member_limit = policy.max_group_size(_required(policy, force.get(member)))
            if member_limit is not None and member_limit < group_after:
                return refuse(RefusalMeasure.small_group)
    ours = _affiliation_hashes([own] if own is not None else [], keys)
    if ours and members:
        theirs = _affiliation_hashes((force[m] for m in members if m in force), keys)
        if _conflict_in_force(session, ours, theirs, day):
            return refuse(RefusalMeasure.no_shared_location_with_conflicts)
    if ours and _conflict_in_force(session, ours, None, day):
        if data.site_member_ids is None:
            return GroupCheckOut(allowed=False, measure=None, site_members_needed=True)
        site = [m for m in dict.fromkeys(data.site_member_ids)
                if m != candidate and m not in force]
        # Only those whose police data is read (an assessment in force) are on record.
        site_force = in_force(session, site, day)
        for member in site_force:
            record_access(session, principal, action="group_check.site_member",
                          resource=f"group_check/{candidate}", purpose=PLACEMENT_CHECK,
                          citizen_id=member)
        if _conflict_in_force(session, ours, _affiliation_hashes(site_force.values(), keys),
                              day):
            return refuse(RefusalMeasure.no_shared_location_with_conflicts)
    level = own.level if own is not None else 0
    if data.contract_max_threat_level is not None and level > data.contract_max_threat_level:
        return refuse(RefusalMeasure.contract_not_cleared)
    return GroupCheckOut(allowed=True, measure=None)


# The security coordinator's reading ------------------------------------------------------
@dataclass(frozen=True)
class _Supersession:
    by: uuid.UUID | None
    from_day: date | None


def _supersession(assessment: ThreatAssessment,
                  siblings: Sequence[ThreatAssessment]) -> _Supersession:
    """Which later upload for the same person ends this one's force, and from when."""
    newer = [s for s in siblings if _newest_first(s) > _newest_first(assessment)]
    if not newer:
        return _Supersession(None, None)
    first = min(newer, key=lambda s: (s.valid_from, _newest_first(s)))
    if first.valid_from > assessment.valid_until:
        return _Supersession(None, None)  # it had run out before the newer one began
    return _Supersession(first.id, max(first.valid_from, assessment.valid_from))


def _status(assessment: ThreatAssessment, sup: _Supersession, today: date) -> AssessmentStatus:
    if sup.from_day is not None and sup.from_day <= assessment.valid_from:
        return AssessmentStatus.superseded  # never in force
    if today < assessment.valid_from:
        return AssessmentStatus.scheduled
    last_day = assessment.valid_until
    if sup.from_day is not None:
        last_day = min(last_day, sup.from_day - timedelta(days=1))
    if today <= last_day:
        return AssessmentStatus.in_force
    if sup.from_day is not None and today >= sup.from_day:
        return AssessmentStatus.superseded
    return AssessmentStatus.expired


def _assessment_views(session: Session, principal: Principal,
                      assessments: Sequence[ThreatAssessment], keys: Keys,
                      policy: MeasurePolicy, today: date) -> list[ThreatAssessmentOut]:
    subject_ids = {a.subject_id for a in assessments}
    if not subject_ids:
        return []
    subjects = {s.id: s for s in session.exec(select(ThreatSubject).where(
        ThreatSubject.id.in_(subject_ids)))}  # type: ignore[attr-defined]
    referrals = {r.subject_id: r.id for r in session.exec(select(Referral).where(
        Referral.subject_id.in_(subject_ids)))}  # type: ignore[attr-defined]
    siblings: dict[uuid.UUID, list[ThreatAssessment]] = {sid: [] for sid in subject_ids}
    for sibling in session.exec(select(ThreatAssessment).where(
            ThreatAssessment.subject_id.in_(subject_ids))):  # type: ignore[attr-defined]
        siblings[sibling.subject_id].append(sibling)
    views = []
    for assessment in assessments:
        subject = subjects[assessment.subject_id]
        record_access(session, principal, action="threat_assessment.read",
                      resource=f"threat_assessment/{assessment.id}",
                      purpose=SECURITY_COORDINATION, citizen_id=subject.citizen_id)
        own = _measures_of(assessment)
        required = policy.required(assessment.level, own)
        sup = _supersession(assessment, siblings[assessment.subject_id])
        notes = (None if assessment.notes_encrypted is None else
                 keys.open(assessment.notes_encrypted, NOTES_CONTEXT, assessment.id))
        views.append(ThreatAssessmentOut(
            id=assessment.id, citizen_id=subject.citizen_id,
            referral_id=referrals.get(subject.id), level=assessment.level,
            valid_from=assessment.valid_from, valid_until=assessment.valid_until,
            affiliations=_affiliations_of(assessment, keys), measures=own,
            required_measures=required, max_group_size=policy.max_group_size(required),
            notes=notes, received_by=assessment.received_by,
            received_at=assessment.received_at, status=_status(assessment, sup, today),
            superseded_by=sup.by, superseded_from=sup.from_day))
    return views


def get_assessment(session: Session, principal: Principal, assessment_id: uuid.UUID,
                   keys: Keys, policy: MeasurePolicy, today: date) -> ThreatAssessmentOut:
    assessment = session.get(ThreatAssessment, assessment_id)
    if assessment is None:
        raise NotFound("No such threat assessment.")
    return _assessment_views(session, principal, [assessment], keys, policy, today)[0]


def list_assessments(
    session: Session, principal: Principal, keys: Keys, policy: MeasurePolicy, today: date,
    *, citizen_id: uuid.UUID | None, referral_id: uuid.UUID | None, limit: int,
    cursor: str | None,
) -> tuple[list[ThreatAssessmentOut], str | None]:
    """Assessments oldest first (a person's history, with `citizen_id` or `referral_id`)."""
    statement = select(ThreatAssessment)
    if citizen_id is not None:
        statement = statement.join(
            ThreatSubject, ThreatSubject.id == ThreatAssessment.subject_id).where(
            ThreatSubject.citizen_id == citizen_id)
    if referral_id is not None:
        statement = statement.join(
            Referral, Referral.subject_id == ThreatAssessment.subject_id).where(
            Referral.id == referral_id)
    rows, next_cursor = paginate(session, statement,
                                 order_by=(ThreatAssessment.received_at, ThreatAssessment.id),
                                 limit=limit, cursor=cursor)
    return _assessment_views(session, principal, rows, keys, policy, today), next_cursor


def _conflict_view(conflict: AffiliationConflict, keys: Keys, today: date) -> ConflictOut:
    return ConflictOut(
        id=conflict.id,
        affiliation_a=keys.open(conflict.affiliation_a_encrypted, CONFLICT_A_CONTEXT,
                                conflict.id),
        affiliation_b=keys.open(conflict.affiliation_b_encrypted, CONFLICT_B_CONTEXT,
                                conflict.id),
        valid_from=conflict.valid_from, valid_until=conflict.valid_until,
        in_force=conflict.valid_from <= today <= conflict.valid_until,
        received_by=conflict.received_by, received_at=conflict.received_at)


def get_conflict(session: Session, principal: Principal, conflict_id: uuid.UUID, keys: Keys,
                 today: date) -> ConflictOut:
    conflict = session.get(AffiliationConflict, conflict_id)
    if conflict is None:
        raise NotFound("No such conflict.")
    record_access(session, principal, action="conflict.read", resource=f"conflict/{conflict.id}",
                  purpose=SECURITY_COORDINATION)
    return _conflict_view(conflict, keys, today)


def list_conflicts(session: Session, principal: Principal, keys: Keys, today: date, *,
                   in_force_on: date | None, limit: int,
                   cursor: str | None) -> tuple[list[ConflictOut], str | None]:
    statement = select(AffiliationConflict)
    if in_force_on is not None:
        statement = statement.where(AffiliationConflict.valid_from <= in_force_on,
                                    AffiliationConflict.valid_until >= in_force_on)
    rows, next_cursor = paginate(
        session, statement,
        order_by=(AffiliationConflict.received_at, AffiliationConflict.id),
        limit=limit, cursor=cursor)
    for conflict in rows:
        record_access(session, principal, action="conflict.read",
                      resource=f"conflict/{conflict.id}", purpose=SECURITY_COORDINATION)
    return [_conflict_view(c, keys, today) for c in rows], next_cursor


# Referrals ---------------------------------------------------------------------------------
def _masked(referral: Referral, keys: Keys) -> str:
    return mask_cpr(keys.open(referral.cpr_encrypted, REFERRAL_CPR_CONTEXT, referral.id))


def list_referrals(session: Session, principal: Principal, keys: Keys, *,
                   status: ReferralStatus | None, limit: int,
                   cursor: str | None) -> tuple[list[ReferralOut], str | None]:
    """Persons the police reported who were unknown to the unit: the masked CPR number
    and dates only, never what the police said about them."""
    statement = select(Referral)
    if status is not None:
        statement = statement.where(Referral.status == status.value)
    rows, next_cursor = paginate(session, statement,
                                 order_by=(Referral.created_at, Referral.id),
                                 limit=limit, cursor=cursor)
    citizen_ids = dict(session.exec(select(ThreatSubject.id, ThreatSubject.citizen_id).where(
        ThreatSubject.id.in_([r.subject_id for r in rows]))).all())  # type: ignore[attr-defined]
    items = []
    for referral in rows:
        citizen_id = citizen_ids.get(referral.subject_id)
        record_access(session, principal, action="referral.read",
                      resource=f"referral/{referral.id}", purpose=REFERRAL_HANDLING,
                      citizen_id=citizen_id)
        items.append(ReferralOut(
            id=referral.id, cpr_masked=_masked(referral, keys), status=referral.status,
            citizen_id=citizen_id, reported_at=referral.created_at,
            last_reported_at=referral.last_reported_at, resolved_at=referral.resolved_at))
    return items, next_cursor


@dataclass(frozen=True)
class OpenReferral:
    id: uuid.UUID
    subject_id: uuid.UUID
    cpr_digits: str

    def __repr__(self) -> str:  # never print the number by accident
        return f"OpenReferral(id={self.id})"


def open_referrals(engine: Engine, keys: Keys, limit: int = RECHECK_BATCH) -> list[OpenReferral]:
    """The open referrals least recently checked first, read outside the request's
    transaction (the route asks the citizens service about each before writing)."""
    with new_session(engine) as session:
        rows = session.exec(select(Referral).where(Referral.status == ReferralStatus.open.value)
                            .order_by(Referral.last_reported_at, Referral.id).limit(limit))
        return [OpenReferral(r.id, r.subject_id,
                             keys.open(r.cpr_encrypted, REFERRAL_CPR_CONTEXT, r.id))
                for r in rows]


def apply_recheck(session: Session, principal: Principal,
                  found: dict[uuid.UUID, uuid.UUID | None]) -> RecheckOut:
    """Close the referrals whose person the citizens service knows now (`found`: referral
    id to citizen id, or None when still unknown)."""
    now = datetime.now(UTC)
    resolved = 0
    for referral_id, citizen_id in found.items():
        referral = session.get(Referral, referral_id)
        if referral is None:  # pragma: no cover - referrals are never deleted
            continue
        subject = session.exec(select(ThreatSubject).where(
            ThreatSubject.id == referral.subject_id).with_for_update()).one()
        record_access(session, principal, action="referral.recheck",
                      resource=f"referral/{referral.id}", purpose=REFERRAL_HANDLING,
                      citizen_id=citizen_id or subject.citizen_id)
        if citizen_id is not None and subject.citizen_id is None:
            _resolve(session, subject, citizen_id, now)
            resolved += 1
    still_open = session.exec(select(func.count()).select_from(Referral).where(
        Referral.status == ReferralStatus.open.value)).one()
    return RecheckOut(checked=len(found), resolved=resolved, still_open=still_open)
