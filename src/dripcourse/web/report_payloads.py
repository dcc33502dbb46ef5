"""The JSON body of `GET /api/v1/courses/{course}/report`: `report.LessonReport` as the API shows it.

The same seven fields as `dripcourse report SLUG --format json`, in the same order, then the two
of a lesson written for an audience (null for the others).
"""

from __future__ import annotations

from dripcourse.web.payloads import Output


class LessonReportOut(Output):
    lesson: int | None
    """The lesson's number in the course today; null for a retired lesson."""
    subject: str
    """The lesson's subject as written (personalisation left in)."""
    sent: int
    """Messages of this lesson the mail server accepted (bounced ones included)."""
    failed: int
    """Messages refused for good, or given up after the retries."""
    bounced: int
    """Sent messages a hard bounce was reported for afterwards."""
    unsubscribed: int
    """People whose last lesson before they unsubscribed was this one."""
    clicked: int | None
    """People who followed at least one link of this lesson; null when the course does not track
    clicks (`[tracking] clicks`) and never did."""
    audience: str | None = None
    """Whom the lesson is for (`for level returning`); null for a lesson for everyone."""
    skipped: int | None = None
    """How many of the course's people are outside its audience today and skip it."""
