"""Counts the dashboard reads on every visit, kept by the database as rows change, so that a page
costs the same on a million people as on ten: per lesson the deliveries sent, failed and
hard-bounced (the course report), messages sent and active enrolments owed a lesson per UTC day
(the overview's charts), enrolments per course and status (the overview, the subscriber filter),
and on each unsubscribed enrolment the lesson it left after (`left_after_lesson_id`, the report's
leavers: a column set again, not a count).

Triggers keep them, in the transaction of the change: every path that writes a delivery or an
enrolment (the dispatcher recording outcomes, a bounce report, a retry, a forget's cascade, an
import, a migration) moves the counts with it, and a rollback takes both back. So they stay exact
without any operation having to remember them. One approximation: on PostgreSQL (READ COMMITTED) an
unsubscribe committed at the very moment a worker records a lesson as sent to that person may
leave `left_after_lesson_id` at the lesson before it (neither trigger sees the other's row); the
counts themselves are deltas and stay exact.

The triggers only ever INSERT a delta row (+1 for the new state, -1 for the old one): two workers
recording outcomes at once never wait on, or deadlock over, one hot counter row. The reads sum the
deltas; `compact` (run by the daily housekeeping) folds them into one row per key, so what a read
sums stays small. `recount` computes every count again from the rows (the migration's backfill,
and a bulk load that ran without the triggers).

A migration that rebuilds `deliveries` or `enrollments` (Alembic's batch mode on SQLite copies the
table) drops their triggers with the old table: it must call `install` again afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date

from sqlalchemy import ColumnElement, Connection, case, delete, func, insert, select, text
from sqlalchemy.orm import Session

from dripcourse.store.models import (
    DayTally,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    DueTally,
    Enrollment,
    EnrollmentStatus,
    EnrollmentTally,
    LessonTally,
)

LESSON_KINDS = (DeliveryKind.LESSON, DeliveryKind.EXTRA)
"""The deliveries of a lesson the course report counts (confirmations have no lesson)."""
HARD = "hard"
"""`bouncereports.Kind.HARD`, as stored in `deliveries.bounce`."""


# --- the triggers, one text per dialect ---------------------------------------------------------


def _outcome_deltas(row: str, sign: str, postgres: bool) -> list[str]:
    """INSERTs of what the delivery `row` (NEW or OLD) adds to the counts, times `sign`."""

    def flag(condition: str) -> str:
        return f"{sign}({condition})::int" if postgres else f"{sign}({condition})"

    hard = (
        f"{row}.bounce IS NOT DISTINCT FROM '{HARD}'" if postgres else f"{row}.bounce IS '{HARD}'"
    )
    kinds = ", ".join(f"'{kind.value}'" for kind in LESSON_KINDS)
    day = f"{row}.sent_at::date" if postgres else f"date({row}.sent_at)"
    sent, failed = flag(f"{row}.status = 'sent'"), flag(f"{row}.status = 'failed'")
    return [
        "INSERT INTO lesson_tallies (lesson_id, sent, failed, bounced) "
        f"SELECT {row}.lesson_id, {sent}, {failed}, {flag(hard)} "
        f"WHERE {row}.lesson_id IS NOT NULL AND {row}.kind IN ({kinds}) "
        f"AND ({row}.status IN ('sent', 'failed') OR {hard});",
        f"INSERT INTO day_tallies (day, sent) SELECT {day}, {sign}1 "
        f"WHERE {row}.status = 'sent' AND {row}.sent_at IS NOT NULL;",
    ]


LAST_SENT = (
    "(SELECT d.lesson_id FROM deliveries d WHERE d.enrollment_id = enrollments.id "
    "AND d.status = 'sent' AND d.kind IN ('lesson', 'extra') AND d.sent_at <= enrollments.ended_at "
    "ORDER BY d.sent_at DESC, d.id DESC LIMIT 1)"
)
"""The lesson of the last delivery sent to an enrolment before it ended."""


def _left_after(enrollment_id: str) -> str:
    """Who left a course after which lesson (`enrollments.left_after_lesson_id`), set again when
    the enrolment is unsubscribed, or when a delivery of an unsubscribed one changes."""
    return (
        f"UPDATE enrollments SET left_after_lesson_id = {LAST_SENT} "
        f"WHERE id = {enrollment_id} AND status = 'unsubscribed';"
    )


def _leaving(row: str, sign: str, postgres: bool) -> list[str]:
    # Only the new state matters: an enrolment's row is set, not a count moved.
    return [_left_after(f"{row}.id")] if sign == "+" else []


def _delivery_leaving(row: str, sign: str, postgres: bool) -> list[str]:
    # The row's enrolment is set again: after the change (NEW), or after a delete (OLD).
    return [_left_after(f"{row}.enrollment_id")] if (sign == "+") == (row == "NEW") else []


def _state_deltas(row: str, sign: str, postgres: bool) -> list[str]:
    return [
        "INSERT INTO enrollment_tallies (course_id, status, count) "
        f"VALUES ({row}.course_id, {row}.status, {sign}1);"
    ]


def _owed_deltas(row: str, sign: str, postgres: bool) -> list[str]:
    day = f"{row}.next_due_at::date" if postgres else f"date({row}.next_due_at)"
    return [
        f"INSERT INTO due_tallies (day, owed) SELECT {day}, {sign}1 "
        f"WHERE {row}.status = 'active' AND {row}.next_due_at IS NOT NULL;"
    ]


TALLIES: list[tuple[str, str, tuple[str, ...], Callable[[str, str, bool], list[str]]]] = [
    # (name, table watched, the columns that move the counts, the delta rows of one row)
    (
        "outcomes",
        "deliveries",
        ("status", "bounce", "sent_at", "lesson_id", "kind"),
        _outcome_deltas,
    ),
    ("states", "enrollments", ("status", "course_id"), _state_deltas),
    ("owed", "enrollments", ("status", "next_due_at"), _owed_deltas),
    ("leaving", "enrollments", ("status", "ended_at"), _leaving),
    ("left_after", "deliveries", ("status", "sent_at", "lesson_id", "kind"), _delivery_leaving),
]


def _changed(columns: Iterable[str], postgres: bool) -> str:
    differs = "IS DISTINCT FROM" if postgres else "IS NOT"
    return " OR ".join(f"OLD.{column} {differs} NEW.{column}" for column in columns)


def _sqlite_triggers() -> list[str]:
    made = []
    for name, table, columns, deltas in TALLIES:
        body = {
            "insert": deltas("NEW", "+", False),
            "delete": deltas("OLD", "-", False),
            "update": deltas("OLD", "-", False) + deltas("NEW", "+", False),
        }
        for event, statements in body.items():
            if not statements:
                continue
            when = ""
            on = event.upper()
            if event == "update":
                on = f"UPDATE OF {', '.join(columns)}"
                when = f" WHEN {_changed(columns, False)}"
            made.append(
                f"CREATE TRIGGER tally_{name}_{event} AFTER {on} ON {table}{when} "
                f"BEGIN {' '.join(statements)} END"
            )
    return made


def _postgres_triggers() -> list[str]:
    made = []
    for name, table, columns, deltas in TALLIES:
        made.append(
            f"CREATE FUNCTION tally_{name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF TG_OP = 'UPDATE' AND NOT (" + _changed(columns, True) + ") THEN RETURN NULL; "
            "END IF; "
            f"IF TG_OP IN ('UPDATE', 'DELETE') THEN {' '.join(deltas('OLD', '-', True))} NULL; "
            "END IF; "
            f"IF TG_OP IN ('UPDATE', 'INSERT') THEN {' '.join(deltas('NEW', '+', True))} NULL; "
            "END IF; "
            "RETURN NULL; END $$"
        )
        made.append(
            f"CREATE TRIGGER tally_{name} AFTER INSERT OR DELETE OR UPDATE OF "
            f"{', '.join(columns)} ON {table} FOR EACH ROW EXECUTE FUNCTION tally_{name}()"
        )
    return made


def install(connection: Connection) -> None:
    """Creates the triggers (the migration that made the tables calls this)."""
    postgres = connection.dialect.name == "postgresql"
    for statement in _postgres_triggers() if postgres else _sqlite_triggers():
        connection.exec_driver_sql(statement)


def uninstall(connection: Connection) -> None:
    for name, table, _, _ in TALLIES:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS tally_{name} ON {table}")
            connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS tally_{name}()")
            continue
        for event in ("insert", "delete", "update"):
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS tally_{name}_{event}")


# --- recounting and compacting ------------------------------------------------------------------


def _number_of(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def recount(session: Session | Connection) -> None:
    """Every count computed again from the deliveries and enrolments as they stand, and the
    lesson each unsubscribed enrolment left after."""
    for table in (LessonTally, DayTally, EnrollmentTally, DueTally):
        session.execute(delete(table))
    session.execute(
        insert(LessonTally).from_select(
            ["lesson_id", "sent", "failed", "bounced"],
            select(
                Delivery.lesson_id,
                _number_of(Delivery.status == DeliveryStatus.SENT),
                _number_of(Delivery.status == DeliveryStatus.FAILED),
                _number_of(Delivery.bounce == HARD),
            )
            .where(Delivery.lesson_id.is_not(None), Delivery.kind.in_(LESSON_KINDS))
            .group_by(Delivery.lesson_id),
        )
    )
    day = func.date(Delivery.sent_at)
    session.execute(
        insert(DayTally).from_select(
            ["day", "sent"],
            select(day, func.count())
            .where(Delivery.status == DeliveryStatus.SENT, Delivery.sent_at.is_not(None))
            .group_by(day),
        )
    )
    session.execute(
        insert(EnrollmentTally).from_select(
            ["course_id", "status", "count"],
            select(Enrollment.course_id, Enrollment.status, func.count()).group_by(
                Enrollment.course_id, Enrollment.status
            ),
        )
    )
    session.execute(
        text(
            f"UPDATE enrollments SET left_after_lesson_id = {LAST_SENT} "
            "WHERE status = 'unsubscribed'"
        )
    )
    owed_day = func.date(Enrollment.next_due_at)
    session.execute(
        insert(DueTally).from_select(
            ["day", "owed"],
            select(owed_day, func.count())
            .where(
                Enrollment.status == EnrollmentStatus.ACTIVE, Enrollment.next_due_at.is_not(None)
            )
            .group_by(owed_day),
        )
    )


_COMPACTED = {
    "lesson_tallies": ("lesson_id", ("sent", "failed", "bounced")),
    "day_tallies": ("day", ("sent",)),
    "enrollment_tallies": ("course_id, status", ("count",)),
    "due_tallies": ("day", ("owed",)),
}


def compact(session: Session) -> None:
    """One row per key instead of one per change, the sums unchanged. On PostgreSQL one statement
    takes the rows it folds (so a delta committed meanwhile is neither lost nor counted twice);
    SQLite's writer lock, taken by the transaction, already keeps every other writer out."""
    postgres = session.get_bind().dialect.name == "postgresql"
    for table, (keys, counts) in _COMPACTED.items():
        sums = ", ".join(f"sum({count})" for count in counts)
        columns = f"{keys}, {', '.join(counts)}"
        if postgres:
            session.execute(
                text(
                    f"WITH gone AS (DELETE FROM {table} RETURNING {columns}) "
                    f"INSERT INTO {table} ({columns}) SELECT {keys}, {sums} FROM gone "
                    f"GROUP BY {keys}"
                )
            )
            continue
        last = session.scalar(text(f"SELECT max(id) FROM {table}"))
        if last is None:
            continue
        session.execute(
            text(
                f"INSERT INTO {table} ({columns}) SELECT {keys}, {sums} FROM {table} "
                f"WHERE id <= :last GROUP BY {keys}"
            ),
            {"last": last},
        )
        session.execute(text(f"DELETE FROM {table} WHERE id <= :last"), {"last": last})


# --- reading ------------------------------------------------------------------------------------


def lesson_outcomes(session: Session, lesson_ids: Iterable[int]) -> dict[int, tuple[int, int, int]]:
    """Sent, failed and hard-bounced deliveries of each lesson that has any."""
    rows = session.execute(
        select(
            LessonTally.lesson_id,
            func.sum(LessonTally.sent),
            func.sum(LessonTally.failed),
            func.sum(LessonTally.bounced),
        )
        .where(LessonTally.lesson_id.in_(list(lesson_ids)))
        .group_by(LessonTally.lesson_id)
    ).all()
    found = {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in rows}
    return {lesson: counts for lesson, counts in found.items() if any(counts)}


def sent_per_day(session: Session, first: date) -> dict[date, int]:
    """Messages sent on each UTC day from `first` on (days without any left out)."""
    rows = session.execute(
        select(DayTally.day, func.sum(DayTally.sent))
        .where(DayTally.day >= first)
        .group_by(DayTally.day)
    ).all()
    return {_as_date(day): int(count) for day, count in rows if count}


def owed_per_day(session: Session, before: date) -> dict[date, int]:
    """Active enrolments whose next lesson is owed on each UTC day before `before` (overdue
    days included; days without any left out)."""
    rows = session.execute(
        select(DueTally.day, func.sum(DueTally.owed))
        .where(DueTally.day < before)
        .group_by(DueTally.day)
    ).all()
    return {_as_date(day): int(count) for day, count in rows if count}


def enrollment_counts(session: Session) -> dict[int, dict[str, int]]:
    """Per course, how many enrolments are in each status (statuses with none left out)."""
    rows = session.execute(
        select(
            EnrollmentTally.course_id, EnrollmentTally.status, func.sum(EnrollmentTally.count)
        ).group_by(EnrollmentTally.course_id, EnrollmentTally.status)
    ).all()
    counts: dict[int, dict[str, int]] = {}
    for course_id, status, count in rows:
        if count:
            counts.setdefault(course_id, {})[status] = int(count)
    return counts


def _as_date(value: object) -> date:
    # SQLite answers with text, PostgreSQL with a date.
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
