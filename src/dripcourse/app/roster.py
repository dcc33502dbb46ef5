"""Subscribers in bulk: CSV import (validated row by row, written in chunks) and CSV export.

An import keeps every good row and reports each bad one with its line number; a file that is not a
usable CSV at all is refused before anything is written. The whole import is one transaction.

Columns beyond a person's own (email, name, timezone; an export's other columns are read and
ignored) are the course's custom fields (course.toml `[fields]`): a column that is none of them is
refused, naming it, before anything is written, and each value is checked like a sign-up's
(`domain.fields.check_values`). An export writes one column per declared field.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import Select, insert, select
from sqlalchemy.orm import Session

from dripcourse.app import audit
from dripcourse.app.csvcells import escape_cell, unescape_cell
from dripcourse.app.subscriptions import subscribe
from dripcourse.app.webhooks import announce_imported
from dripcourse.courses.catalog import get_course
from dripcourse.domain.cohort import starting_due
from dripcourse.domain.enrolment import Admission, admission
from dripcourse.domain.fields import check_values
from dripcourse.domain.policy import SELF_LIFTED, owed_delivery
from dripcourse.domain.schedule import first_lesson_due
from dripcourse.domain.states import parse_enrollment_status
from dripcourse.domain.validation import (
    address_hash,
    check_timezone,
    clean_name,
    mailbox_key,
    normalise_email,
)
from dripcourse.errors import BadInput, DripcourseError
from dripcourse.store.models import (
    Course,
    Delivery,
    DeliveryKind,
    Enrollment,
    EnrollmentStatus,
    Subscriber,
    Suppression,
)
from dripcourse.store.queries import make_message_id

CHUNK = 1000
EXPORT_FIELDS = ["email", "name", "timezone", "course", "status", "enrolled_at", "confirmed_at"]


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    email: str
    name: str
    timezone: str | None
    fields: dict[str, str] = field(default_factory=dict)
    """Every column that is not an export's own, as read: the course's custom fields, checked
    against its declaration by `import_subscribers`."""


@dataclass
class ImportReport:
    imported: int = 0
    already_enrolled: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def read_rows(stream: TextIO) -> Iterator[Row | tuple[int, str]]:
    """Validated rows, or (line, problem) for a bad one. `BadInput` if the file is no usable CSV."""
    try:
        # Strict: a quote opened and never closed is an error, not a field that swallows every
        # later row.
        reader = csv.DictReader(stream, strict=True)
        header = [name.strip().lower() for name in (reader.fieldnames or [])]
    except (csv.Error, UnicodeDecodeError) as exc:
        raise BadInput(f"not a readable CSV file: {exc}") from None
    if "email" not in header:
        raise BadInput(
            "the CSV needs a header row with an 'email' column "
            "(and optionally 'name' and 'timezone')"
        )
    if len(set(header)) != len(header):
        raise BadInput(f"the CSV header names a column twice: {', '.join(header)}")
    reader.fieldnames = header
    line = reader.line_num + 1  # where the next row starts: a quoted field may span lines
    try:
        for record in reader:
            if None in record:
                yield line, "more fields than the header has"
                line = reader.line_num + 1
                continue
            # Undo the export's escape before validation (csvcells.py): an export imports unchanged.
            record = {key: unescape_cell(value or "") for key, value in record.items()}
            try:
                zone = (record.get("timezone") or "").strip()
                yield Row(
                    line=line,
                    email=normalise_email(record.get("email") or ""),
                    name=clean_name(record.get("name")),
                    timezone=check_timezone(zone) if zone else None,
                    fields={k: v for k, v in record.items() if k not in EXPORT_FIELDS},
                )
            except DripcourseError as exc:
                yield line, str(exc)
            finally:
                line = reader.line_num + 1
    except (csv.Error, UnicodeDecodeError) as exc:
        if "unexpected end of data" in str(exc):
            raise BadInput(
                f"line {line}: a quoted field starts in this row and is never closed, so the rest "
                "of the file would be one value; nothing was imported"
            ) from None
        raise BadInput(f"not a readable CSV file (line {line}): {exc}") from None


def import_subscribers(
    session: Session,
    rows: Iterable[Row | tuple[int, str]],
    course_slug: str,
    now: datetime,
    *,
    confirmed: bool,
    progress: Callable[[int], None] | None = None,
    actor: str | None = None,
    file_name: str = "",
) -> ImportReport:
    """Enrol the good rows in one course; each bad row is reported with its line and skipped. A
    file that turns out not to be a usable CSV (`BadInput` from `read_rows`, even on its last
    line) raises, and the caller's transaction then keeps nothing. `actor` and `file_name` are
    for the audit entry of the import (one entry for the whole file)."""
    course = get_course(session, course_slug)
    rows = list(rows)
    check_columns(rows, course)
    report = ImportReport()
    seen: dict[str, int] = {}
    chunk: list[Row] = []
    for row in rows:
        if isinstance(row, Row):
            try:
                row = replace(row, fields=check_values(row.fields, course.settings.fields))
            except BadInput as exc:
                row = (row.line, str(exc))
        if isinstance(row, tuple):
            report.rejected.append(row)
        elif (key := mailbox_key(row.email)) in seen:
            report.rejected.append((row.line, f"{row.email} is already on line {seen[key]}"))
        else:
            seen[key] = row.line
            chunk.append(row)
        if len(chunk) >= CHUNK:
            _import_chunk(session, course, chunk, now, confirmed, report)
            chunk = []
        if progress is not None:
            progress(1)
    if chunk:
        _import_chunk(session, course, chunk, now, confirmed, report)
    report.rejected.sort()
    if actor is not None:
        audit.record(
            session,
            now,
            actor,
            "imported",
            course.slug,
            f"{file_name or 'a CSV file'}: imported {report.imported}, already enrolled "
            f"{report.already_enrolled}, skipped {len(report.rejected)}"
            + ("" if confirmed else "; confirmation emails queued"),
        )
    return report


def check_columns(rows: Iterable[Row | tuple[int, str]], course: Course) -> None:
    """`BadInput` naming the columns that are no field of the course, before anything is written."""
    first = next((row for row in rows if isinstance(row, Row)), None)
    declared = [spec.name for spec in course.settings.fields]
    unknown = [name for name in (first.fields if first else {}) if name not in declared]
    if unknown:
        shown = ", ".join(repr(name[:60]) for name in unknown)
        known = ", ".join(["email", "name", "timezone", *declared])
        raise BadInput(
            f"the CSV has column(s) {shown} that {course.slug!r} does not know (its columns: "
            f"{known}); nothing was imported"
        )


def _import_chunk(
    session: Session,
    course: Course,
    rows: list[Row],
    now: datetime,
    confirmed: bool,
    report: ImportReport,
) -> None:
    emails = [row.email for row in rows]
    # Matched by hash: the suppression of a forgotten person has no address, only its hash.
    hashes = {email: address_hash(email) for email in emails}
    reasons = dict(
        session.execute(
            select(Suppression.email_hash, Suppression.reason).where(
                Suppression.email_hash.in_(hashes.values())
            )
        ).all()
    )
    suppressed = {email: reasons[hashed] for email, hashed in hashes.items() if hashed in reasons}
    # Matched by mailbox: a person stored as `Bob@` is the `bob@` of this file.
    keys = [mailbox_key(email) for email in emails]
    existing = dict(
        session.execute(
            select(Subscriber.email_key, Subscriber.id).where(Subscriber.email_key.in_(keys))
        ).all()
    )
    statuses = dict(
        session.execute(
            select(Enrollment.subscriber_id, Enrollment.status).where(
                Enrollment.course_id == course.id, Enrollment.subscriber_id.in_(existing.values())
            )
        ).all()
    )
    fresh: list[Row] = []
    for row in rows:
        reason = suppressed.get(row.email)
        subscriber_id = existing.get(mailbox_key(row.email))
        status = statuses.get(subscriber_id) if subscriber_id is not None else None
        decision = admission(reason, status, confirmed)
        if decision in (Admission.REFUSED, Admission.OWN_CONSENT_NEEDED):
            # Nothing is written for them: not even the subscriber row.
            report.rejected.append((row.line, _refusal(row, reason, course)))
        elif reason is not None or status == EnrollmentStatus.UNSUBSCRIBED:
            _readmit_through_subscribe(session, course, row, now, confirmed)
            report.imported += 1
        elif status is not None:
            # In the course already: running, waiting for their confirmation, or through it.
            report.already_enrolled += 1
        else:
            fresh.append(row)
    rows = fresh
    default_zone = course.settings.timezone
    new = [
        {
            "email": r.email,
            "email_key": mailbox_key(r.email),
            "name": r.name,
            "timezone": r.timezone or default_zone,
            "created_at": now,
        }
        for r in rows
        if mailbox_key(r.email) not in existing
    ]
    if new:
        session.execute(insert(Subscriber), new)
        existing.update(
            session.execute(
                select(Subscriber.email_key, Subscriber.id).where(
                    Subscriber.email_key.in_([n["email_key"] for n in new])
                )
            ).all()
        )
    ids = {row.email: existing[mailbox_key(row.email)] for row in rows}
    zones = dict(
        session.execute(
            select(Subscriber.id, Subscriber.timezone).where(Subscriber.id.in_(ids.values()))
        ).all()
    )
    enrollments: list[dict[str, Any]] = []
    for row in rows:
        subscriber_id = ids[row.email]
        enrollments.append(
            {
                "subscriber_id": subscriber_id,
                "course_id": course.id,
                "source": "import",
                "created_at": now,
                "status": EnrollmentStatus.ACTIVE if confirmed else EnrollmentStatus.PENDING,
                "confirmed_at": now if confirmed else None,
                "next_due_at": _first_due(now, ZoneInfo(zones[subscriber_id]), course)
                if confirmed
                else None,
                "fields": row.fields,
            }
        )
    if not enrollments:
        return
    session.execute(insert(Enrollment), enrollments)
    report.imported += len(enrollments)
    announce_imported(session, course, [row.email for row in rows], ids, confirmed, now)
    if not confirmed:
        made = session.scalars(
            select(Enrollment.id).where(
                Enrollment.course_id == course.id,
                Enrollment.subscriber_id.in_([e["subscriber_id"] for e in enrollments]),
            )
        ).all()
        session.execute(
            insert(Delivery),
            [
                owed_delivery(
                    enrollment_id,
                    None,
                    DeliveryKind.CONFIRMATION,
                    now,
                    now,
                    make_message_id(course),
                )
                for enrollment_id in made
            ],
        )


def _first_due(now: datetime, zone: ZoneInfo, course: Course) -> datetime:
    """Lesson 1 of someone imported (a new enrolment, nothing had yet): the first slot from now,
    never before a cohort's first date."""
    settings = course.settings
    if settings.cohort is not None:
        return starting_due(now, settings.cohort, zone, settings.rhythm)
    return first_lesson_due(now, zone, settings.rhythm)


def _refusal(row: Row, reason: str | None, course: Course) -> str:
    if reason is not None and reason not in SELF_LIFTED:
        return f"{row.email} is suppressed ({reason})"
    if reason is not None:
        return f"{row.email} is suppressed ({reason}); import without --confirmed to ask them"
    return f"{row.email} left {course.slug}; import without --confirmed to ask them"


def _readmit_through_subscribe(
    session: Session, course: Course, row: Row, now: datetime, confirmed: bool
) -> None:
    """Someone who left and is named again comes back by `subscribe`'s own path: a confirmation
    email (within the mailbox's limits) that only they can answer. Rare, so one by one."""
    subscribe(
        session,
        email=row.email,
        course_slug=course.slug,
        now=now,
        name=row.name or None,
        timezone=row.timezone,
        confirmed=confirmed,
        source="import",
        fields=row.fields,
    )


@dataclass(frozen=True)
class ExportRows:
    """The rows of an export and its columns: the export's own, then one per custom field of the
    courses exported (a row of a course without that field leaves it empty)."""

    columns: list[str]
    rows: Iterator[dict[str, str]]

    def __iter__(self) -> Iterator[dict[str, str]]:
        return self.rows


def export_rows(
    session: Session, course_slug: str | None = None, status: str | None = None
) -> ExportRows:
    """One row per enrolment (a subscriber without any gets one row with an empty course); only
    the enrolments in `course_slug` and of `status` when given. The filters are checked at once
    (`NotFound`: no such course; `BadInput`: no such status), before the first row is read."""
    query = (
        select(Subscriber, Enrollment, Course.slug)
        .outerjoin(Enrollment, Enrollment.subscriber_id == Subscriber.id)
        .outerjoin(Course, Enrollment.course_id == Course.id)
        .order_by(Subscriber.email, Course.slug)
        .execution_options(yield_per=CHUNK)
    )
    courses = select(Course)
    if course_slug is not None:
        course = get_course(session, course_slug)
        query = query.where(Enrollment.course_id == course.id)
        courses = courses.where(Course.id == course.id)
    if status is not None:
        query = query.where(Enrollment.status == parse_enrollment_status(status))
    names: list[str] = []
    for course in session.scalars(courses.order_by(Course.slug)):
        names += [spec.name for spec in course.settings.fields if spec.name not in names]
    return ExportRows(EXPORT_FIELDS + names, _exported(session, query, names))


def _exported(
    session: Session, query: Select[Subscriber, Enrollment, str], names: list[str]
) -> Iterator[dict[str, str]]:
    for subscriber, enrollment, slug in session.execute(query):
        given = enrollment.fields if enrollment else {}
        # What the person gave, not the defaults: an export imported again stores the same.
        yield {name: str(given.get(name, "")) for name in names} | {
            "email": subscriber.email,
            "name": subscriber.name,
            "timezone": subscriber.timezone,
            "course": slug or "",
            "status": enrollment.status if enrollment else "",
            "enrolled_at": _iso(enrollment.created_at if enrollment else None),
            "confirmed_at": _iso(enrollment.confirmed_at if enrollment else None),
        }


def record_export(
    session: Session,
    now: datetime,
    actor: str,
    course_slug: str | None = None,
    status: str | None = None,
) -> None:
    """An export changes nothing but hands personal data out of the system: the audit log says who
    took which part of the list, and when."""
    which = ", ".join(
        part
        for part in (
            f"course {course_slug}" if course_slug else "",
            f"status {status}" if status else "",
        )
        if part
    )
    audit.record(session, now, actor, "exported", "subscribers", which or "everyone")


def write_csv(rows: Iterable[dict[str, str]], stream: TextIO) -> int:
    count = -1  # the header is not a row
    for line in csv_lines(rows):
        stream.write(line)
        count += 1
    return count


def csv_lines(rows: Iterable[dict[str, str]]) -> Iterator[str]:
    """The export as text, the header first, one row at a time (for a download that streams)."""
    # CRLF (RFC 4180): the csv module quotes only the characters of its line terminator, and a CR
    # left unquoted would end the row early when the file is read back.
    line = io.StringIO(newline="")
    columns = rows.columns if isinstance(rows, ExportRows) else EXPORT_FIELDS
    writer = csv.DictWriter(line, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        yield line.getvalue()
        line.seek(0)
        line.truncate()
        writer.writerow({key: escape_cell(value) for key, value in row.items()})
    yield line.getvalue()


def _iso(instant: datetime | None) -> str:
    return "" if instant is None else instant.isoformat()
