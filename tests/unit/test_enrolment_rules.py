"""The life of an enrolment (domain/enrolment.py): every change from every state, and who may be
(re)enrolled, checked over the whole table rather than by example."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dripcourse.domain.enrolment import Admission, Change, admission, apply
from dripcourse.domain.states import EnrollmentStatus, SuppressionReason

NOW = datetime(2026, 3, 2, 15, tzinfo=UTC)
DUE = NOW + timedelta(days=1)


@dataclass
class Enrolment:
    status: str
    confirmed_at: datetime | None = None
    paused_at: datetime | None = None
    ended_at: datetime | None = None
    next_due_at: datetime | None = None


EXPECTED = {
    (Change.START, EnrollmentStatus.PENDING): EnrollmentStatus.ACTIVE,
    (Change.START, EnrollmentStatus.UNSUBSCRIBED): EnrollmentStatus.ACTIVE,
    (Change.START, EnrollmentStatus.COMPLETED): EnrollmentStatus.ACTIVE,
    (Change.PAUSE, EnrollmentStatus.ACTIVE): EnrollmentStatus.PAUSED,
    (Change.RESUME, EnrollmentStatus.PAUSED): EnrollmentStatus.ACTIVE,
    (Change.FINISH, EnrollmentStatus.ACTIVE): EnrollmentStatus.COMPLETED,
    (Change.FINISH, EnrollmentStatus.PAUSED): EnrollmentStatus.COMPLETED,
    (Change.REOPEN, EnrollmentStatus.COMPLETED): EnrollmentStatus.ACTIVE,
    **{
        (Change.LEAVE, status): EnrollmentStatus.UNSUBSCRIBED
        for status in EnrollmentStatus
        if status != EnrollmentStatus.UNSUBSCRIBED
    },
}


@pytest.mark.parametrize("change", list(Change), ids=lambda change: change.name)
@pytest.mark.parametrize("status", list(EnrollmentStatus))
def test_each_change_leads_where_the_table_says_or_changes_nothing(
    change: Change, status: EnrollmentStatus
) -> None:
    earlier = NOW - timedelta(days=2)
    # Every stamp starts out different from what a change would write, so each write shows.
    enrolment = Enrolment(status, paused_at=earlier, ended_at=earlier, next_due_at=earlier)
    before = Enrolment(**vars(enrolment))

    applied = apply(enrolment, change, NOW, next_due_at=DUE)

    expected = EXPECTED.get((change, status))
    assert applied is (expected is not None)
    if expected is None:
        assert enrolment == before
        return
    assert enrolment.status == expected
    if expected in (EnrollmentStatus.COMPLETED, EnrollmentStatus.UNSUBSCRIBED):
        assert (enrolment.ended_at, enrolment.next_due_at) == (NOW, None)
    if expected == EnrollmentStatus.ACTIVE and change is not Change.RESUME:
        assert (enrolment.ended_at, enrolment.next_due_at) == (None, DUE)
    if change is Change.START:
        assert enrolment.confirmed_at == NOW
    if change is Change.PAUSE:
        assert (enrolment.paused_at, enrolment.next_due_at) == (NOW, earlier)
    if change is Change.RESUME:
        # The resume moves nothing itself: the caller shifts what was owed by the pause.
        assert (enrolment.paused_at, enrolment.next_due_at) == (None, earlier)


def test_start_keeps_the_first_consent_and_needs_a_due_instant() -> None:
    earlier = NOW - timedelta(days=30)
    enrolment = Enrolment(EnrollmentStatus.UNSUBSCRIBED, confirmed_at=earlier, ended_at=earlier)
    with pytest.raises(ValueError, match="START needs"):
        apply(enrolment, Change.START, NOW)
    assert enrolment.status == EnrollmentStatus.UNSUBSCRIBED

    assert apply(enrolment, Change.START, NOW, next_due_at=DUE)
    assert enrolment.confirmed_at == earlier


STATUSES = st.none() | st.sampled_from(list(EnrollmentStatus))
REASONS = st.none() | st.sampled_from(list(SuppressionReason))


@given(REASONS, STATUSES, st.booleans(), st.booleans())
def test_admission_follows_one_rule(reason, status, confirmed, own) -> None:
    decision = admission(reason, status, confirmed, own_sign_up=own)
    left_course = status == EnrollmentStatus.UNSUBSCRIBED and not own
    left = reason == SuppressionReason.UNSUBSCRIBED or left_course
    if reason not in (None, SuppressionReason.UNSUBSCRIBED):
        assert decision is Admission.REFUSED
    elif confirmed and left:
        # Whoever left comes back only by their own confirmation, never by an operator's word.
        assert decision is Admission.OWN_CONSENT_NEEDED
    elif status in (EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED):
        assert decision is Admission.ALREADY_IN
    else:
        assert decision is (Admission.START if confirmed else Admission.ASK)
