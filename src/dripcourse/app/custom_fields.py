"""Changing a person's custom field values in one course (the operator API, the dashboard).

A sign-up, an import and `subscribe --field` set them when the person is enrolled
(`subscriptions.subscribe`, `roster.import_subscribers`); this is the change afterwards. The values
are checked by `domain.fields.check_values`, the one rule for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from dripcourse.app import audit
from dripcourse.app.people import get_subscriber
from dripcourse.courses.catalog import get_course
from dripcourse.domain.fields import check_values
from dripcourse.errors import NotFound
from dripcourse.store.models import Enrollment


def change_fields(
    session: Session,
    subscriber_id: int,
    course_slug: str,
    given: Mapping[str, object],
    now: datetime,
    *,
    actor: str | None = None,
) -> Enrollment:
    """Set field values of one enrolment: each value given replaces the stored one, an empty one
    (or null) removes it, so that the field's default applies again. What is owed next follows
    the new values from then on (the ledger asks them when the next lesson is due)."""
    subscriber = get_subscriber(session, subscriber_id)
    course = get_course(session, course_slug)
    enrollment = next((e for e in subscriber.enrollments if e.course_id == course.id), None)
    if enrollment is None:
        raise NotFound(f"{subscriber.email} is not enrolled in {course_slug!r}")
    values = check_values(given, course.settings.fields, require=False)
    cleared = {name for name in given if name not in values}
    merged = {k: v for k, v in {**enrollment.fields, **values}.items() if k not in cleared}
    if merged != enrollment.fields:
        enrollment.fields = merged
        if actor is not None:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(merged.items())) or "all defaults"
            audit.record(
                session,
                now,
                actor,
                "fields changed",
                subscriber.email,
                f"course {course.slug}: {shown}",
            )
    return enrollment
