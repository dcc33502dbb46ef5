"""The first click of each person on each tracked link of a lesson (the links themselves are made
by `mail.links`).

A click is recorded once per person (enrolment) and link (target URL within a lesson); later
clicks, and two at once, meet the unique constraint and add nothing. A click on a course whose
tracking was turned off since the email went out still leads to its target but is not recorded.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcourse.errors import BadInput
from dripcourse.mail.links import WEB, tracks_clicks
from dripcourse.mail.tokens import Purpose, Signer
from dripcourse.store.db import upsert_insert
from dripcourse.store.models import Click, Course, Delivery, Enrollment


def follow(session: Session, signer: Signer, token: str, target: str, now: datetime) -> str:
    """Where a tracked link leads, once its signature is checked; records the click (once per
    person and link) if the course still tracks clicks. `BadInput` for a link that was changed."""
    try:
        payload = signer.read_bound(Purpose.CLICK, token, target)
    except BadInput:
        raise BadInput(
            "this link is not valid: it was changed or cut short on its way to you, so we cannot "
            "tell where it leads. Please open the link from the email again"
        ) from None
    if not WEB.match(target):
        raise BadInput("this link does not lead to a web page")
    record_click(session, int(payload.get("d", 0)), target, now)
    return target


def record_click(session: Session, delivery_id: int, target: str, now: datetime) -> bool:
    """Record that the recipient of a delivery followed `target`; False if it was known already,
    the delivery is gone (the person was forgotten) or the course no longer tracks clicks."""
    found = session.execute(
        select(Delivery.enrollment_id, Delivery.lesson_id, Course.settings)
        .join(Enrollment, Delivery.enrollment_id == Enrollment.id)
        .join(Course, Enrollment.course_id == Course.id)
        .where(Delivery.id == delivery_id)
    ).first()
    if found is None or found.lesson_id is None or not tracks_clicks(found.settings):
        return False
    insert = upsert_insert(session)
    recorded = session.scalar(
        insert(Click)
        .values(
            lesson_id=found.lesson_id,
            enrollment_id=found.enrollment_id,
            url=target,
            url_hash=hashlib.sha256(target.encode("utf-8")).hexdigest(),
            clicked_at=now,
        )
        .on_conflict_do_nothing(index_elements=["lesson_id", "enrollment_id", "url_hash"])
        .returning(Click.id)
    )
    return recorded is not None
