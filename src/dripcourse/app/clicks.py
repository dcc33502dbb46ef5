"""Click tracking: tracked links in a lesson's HTML, and the first click of each person on each link.

Off unless a course turns it on (`[tracking] clicks = true` in course.toml): people's reading is
their own business by default. When on, each web link of the HTML part becomes a redirect under the
base URL, `{base}/c/{token}?u={target}`, whose token names the delivery and is signed together with
the target (`Signer.make_bound`): changing the target, the delivery or a letter of the signature
makes the link invalid, so nobody can borrow our domain to send people elsewhere (no open
redirect), and no database lookup is needed to know where a link leads.

Not rewritten: the unsubscribe and view-online links and anything else under our own pages, mailto
links, and the whole plain-text part, which keeps each address as written so that a reader can see
where a link goes before following it. There is no tracking pixel.

A click is recorded once per person (enrolment) and link (target URL within a lesson); later
clicks, and two at once, meet the unique constraint and add nothing. A click on a course whose
tracking was turned off since the email went out still leads to its target but is not recorded.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcourse.errors import BadInput
from dripcourse.mail.tokens import Purpose, Signer
from dripcourse.store.db import upsert_insert
from dripcourse.store.models import Click, Course, Delivery, Enrollment

CLICK_PATH = "/c/"
# Our own pages: following these must never count as reading the lesson.
OWN_PATHS = ("/unsubscribe/", "/view/", "/confirm/", CLICK_PATH)
# The href of an <a> element that leads to the web (css-inline writes attributes in double quotes).
_ANCHOR_HREF = re.compile(r'(<a\s[^>]*?\bhref=")(https?://[^"]*)(")', re.IGNORECASE)
_WEB = re.compile(r"https?://", re.IGNORECASE)


def tracks_clicks(settings: Mapping[str, Any]) -> bool:
    """Whether the course asks for click tracking (courses synced before it existed: no)."""
    tracking = settings.get("tracking")
    return bool(tracking and tracking.get("clicks"))


def track_links(signer: Signer, base_url: str, page: str, delivery_id: int) -> str:
    """The HTML `page` with each of its web links made a tracked link of this delivery."""
    base = base_url.rstrip("/")
    own = tuple(base + path for path in OWN_PATHS)

    def tracked(match: re.Match[str]) -> str:
        start, href, end = match.groups()
        target = html.unescape(href)
        if not target.startswith(own):
            href = html.escape(tracked_url(signer, base, delivery_id, target))
        return start + href + end

    return _ANCHOR_HREF.sub(tracked, page)


def tracked_url(signer: Signer, base: str, delivery_id: int, target: str) -> str:
    token = signer.make_bound(Purpose.CLICK, {"d": delivery_id}, target)
    return f"{base}{CLICK_PATH}{token}?u={_quoted(target)}"


@functools.lru_cache(maxsize=4096)
def _quoted(target: str) -> str:
    # Everything but the scheme's and path's separators is escaped, `&`, `#` and `+` above all,
    # so that the query parser hands back exactly the text that was signed.
    return quote(target, safe=":/")


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
    if not _WEB.match(target):
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
