"""Small units of store work that the operations and the engine share: suppressing an address
and finding its suppression, making an owed delivery row, reading claimed deliveries as `Job`s,
the lessons enrolments have had, finishing enrolments, and rows handed to one statement as a table
of VALUES."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import CTE, String, Table, bindparam, column, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from dripcourse.domain.delivery import Job
from dripcourse.domain.enrolment import Change, stamps
from dripcourse.domain.policy import HAD, SELF_LIFTED, owed_delivery
from dripcourse.domain.validation import address_hash, domain_of
from dripcourse.store.db import upsert_insert
from dripcourse.store.models import (
    AppMeta,
    Course,
    Delivery,
    DeliveryKind,
    Enrollment,
    Lesson,
    Subscriber,
    Suppression,
    SuppressionReason,
)


def suppress(
    session: Session, email: str, reason: SuppressionReason, now: datetime, detail: str = ""
) -> None:
    existing = suppression_of(session, email)
    if existing is None:
        session.add(
            Suppression(
                email=email,
                email_hash=address_hash(email),
                reason=reason,
                detail=detail,
                created_at=now,
            )
        )
    elif existing.reason in SELF_LIFTED and reason not in SELF_LIFTED:
        # A bounce or complaint outranks an unsubscribe: it must not be lifted by a new sign-up.
        existing.reason, existing.detail = reason, detail


def suppression_of(session: Session, address: str) -> Suppression | None:
    """The suppression of a normalised address, matched by its hash so that the suppression of a
    forgotten person (whose address is no longer stored) still holds."""
    return session.scalar(
        select(Suppression).where(Suppression.email_hash == address_hash(address))
    )


def new_delivery(
    enrollment: Enrollment,
    lesson_id: int | None,
    kind: DeliveryKind,
    due_at: datetime,
    now: datetime,
) -> Delivery:
    """An owed delivery (`policy.owed_delivery`) as a model, for the operations' ORM sessions."""
    row = owed_delivery(
        enrollment.id, lesson_id, kind, due_at, now, make_message_id(enrollment.course)
    )
    return Delivery(enrollment=enrollment, **row)


def make_message_id(course: Course) -> str:
    # Random, made once per delivery and reused on every attempt: a retry of a message that did
    # reach the server carries the same Message-ID, so the recipient's client can drop the copy.
    return f"<{uuid.uuid4().hex}.{course.slug}@{domain_of(course.settings.sender.email)}>"


def jobs_for(session: Session, delivery_ids: Sequence[int]) -> list[Job]:
    """The deliveries as plain `Job`s, in sending order."""
    rows = session.execute(
        select(
            Delivery.id.label("delivery_id"),
            Delivery.kind,
            Delivery.enrollment_id,
            Enrollment.course_id,
            Lesson.key.label("lesson_key"),
            Delivery.message_id,
            Subscriber.email,
            Subscriber.name,
            Subscriber.timezone,
            Delivery.due_at,
            Delivery.attempts,
            func.coalesce(Delivery.first_attempt_at, Delivery.due_at).label("first_attempt_at"),
            Delivery.lesson_id,
            Enrollment.fields,
        )
        .join(Enrollment, Delivery.enrollment_id == Enrollment.id)
        .join(Subscriber, Enrollment.subscriber_id == Subscriber.id)
        .outerjoin(Lesson, Delivery.lesson_id == Lesson.id)
        .where(Delivery.id.in_(delivery_ids))
        .order_by(Delivery.next_attempt_at, Delivery.id)
    ).all()
    return [Job(**row._mapping) for row in rows]


class HadLesson(NamedTuple):
    key: str
    at: datetime
    """When it went out (or, given up on, when it was due)."""


def lesson_histories(
    session: Session, enrollment_ids: Collection[int]
) -> dict[int, list[HadLesson]]:
    """The lessons each enrolment has had in the rhythm (`policy.HAD`), oldest first: the one
    definition the engine, the catalog and the timeline read."""
    histories: dict[int, list[HadLesson]] = {enrollment_id: [] for enrollment_id in enrollment_ids}
    if not histories:
        return histories
    for enrollment_id, key, sent_at, due_at in session.execute(
        select(Delivery.enrollment_id, Lesson.key, Delivery.sent_at, Delivery.due_at)
        .join(Lesson, Delivery.lesson_id == Lesson.id)
        .where(
            Delivery.enrollment_id.in_(histories),
            Delivery.kind == DeliveryKind.LESSON,
            Delivery.status.in_(HAD),
        )
        .order_by(Delivery.enrollment_id, Delivery.due_at, Delivery.id)
    ):
        histories[enrollment_id].append(HadLesson(key, sent_at or due_at))
    return histories


def finish_enrollments(
    session: Session, enrollment_ids: Collection[int], now: datetime
) -> list[int]:
    """`Change.FINISH` for many enrolments in one statement; those no longer running (someone
    unsubscribed meanwhile, or another worker finished it first) stay as they are. Returns the
    ids this statement finished: what follows a finish is owed for them alone."""
    if not enrollment_ids:
        return []
    return list(
        session.scalars(
            update(Enrollment)
            .where(Enrollment.id.in_(enrollment_ids), Enrollment.status.in_(Change.FINISH.sources))
            .values(status=Change.FINISH.target, **stamps(Change.FINISH, now))
            .returning(Enrollment.id)
            .execution_options(synchronize_session=False)
        )
    )


ROWS_PER_STATEMENT = 1000
"""Rows written by one statement at most: 1,000 owed deliveries bind 9,000 values (9 columns),
well inside SQLite's 32,766 and PostgreSQL's 65,535."""


def chunks(rows: Sequence[Any], size: int = ROWS_PER_STATEMENT) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def values_of(name: str, table: Table, names: Sequence[str], count: int, dialect: str) -> CTE:
    """A table `name(names...)` of `count` rows for one statement to join, each column typed as
    `table`'s column of that name; `values_params` binds its values. The one place where the
    two databases differ:

        SQLite:      WITH name AS (SELECT column1 AS a, column2 AS b
                                   FROM (VALUES (:name_a_0, :name_b_0), ...) AS given)
        PostgreSQL:  WITH name AS (SELECT * FROM unnest(:name_a, :name_b) AS given(a, b))

    SQLite takes no `(VALUES ...) AS v(a, b)`, but both name the columns of VALUES `column1`...
    PostgreSQL gets one array per column instead: a short statement of a few parameters, whatever
    the number of rows, which its driver parses once and the server prepares once (psycopg parses
    anew every statement longer than 4 KB or with more than 50 parameters). SQLAlchemy's own
    `values()` construct is never cached, so it would be compiled anew for every group; these are
    made and compiled once per size (`_values_of` is cached, and so are the statements around it).
    """
    return _values_of(name, table, tuple(names), count if dialect != "postgresql" else 0, dialect)


@lru_cache(maxsize=64)
def _values_of(name: str, table: Table, names: tuple[str, ...], count: int, dialect: str) -> CTE:
    # Unbounded: a cast to VARCHAR(n)[] would cut a longer value without a word, where the
    # column's own check refuses it.
    types = [
        String() if isinstance(table.c[each].type, String) else table.c[each].type for each in names
    ]
    columns = [column(each, kind) for each, kind in zip(names, types, strict=True)]
    if dialect == "postgresql":
        # Each array bound with its type (`%(v)s::TIMESTAMP WITHOUT TIME ZONE[]`).
        arrays = [
            bindparam(f"{name}_{each}", type_=ARRAY(kind))
            for each, kind in zip(names, types, strict=True)
        ]
        listed = ", ".join(f":{name}_{each}" for each in names)
        given = text(f"SELECT * FROM unnest({listed}) AS given({', '.join(names)})")
        return given.bindparams(*arrays).columns(*columns).cte(name)
    picks = ", ".join(f"column{k} AS {each}" for k, each in enumerate(names, start=1))
    rows = ", ".join(
        "(" + ", ".join(f":{name}_{each}_{i}" for each in names) + ")" for i in range(count)
    )
    binds = [
        bindparam(f"{name}_{each}_{i}", type_=kind)
        for i in range(count)
        for each, kind in zip(names, types, strict=True)
    ]
    given = text(f"SELECT {picks} FROM (VALUES {rows}) AS given").bindparams(*binds)
    return given.columns(*columns).cte(name)


def values_params(
    name: str, names: Sequence[str], rows: Sequence[Mapping[str, Any]], dialect: str
) -> dict[str, Any]:
    """The bound values of `values_of(name, ..., names, len(rows), dialect)` for these rows."""
    if dialect == "postgresql":
        return {f"{name}_{each}": [row[each] for row in rows] for each in names}
    return {f"{name}_{each}_{i}": row[each] for i, row in enumerate(rows) for each in names}


SECRET_KEY_META = "secret_key"
"""The `app_meta` row of the key that signs links and bounce addresses, when none is configured."""


def known_secret_key(session: Session, configured: str | None) -> str | None:
    """The configured key, else the one kept in the database; None before one was made (no link
    can have been signed yet). Only reads, so that checking a link never waits for a writer."""
    if configured:
        return configured
    return session.scalar(select(AppMeta.value).where(AppMeta.key == SECRET_KEY_META))


def secret_key(session: Session, configured: str | None) -> str:
    """The configured key, else the one kept in the database (made now if there is none)."""
    known = known_secret_key(session, configured)
    if known is not None:
        return known
    candidate = secrets.token_urlsafe(32)
    # Two processes starting at once must agree on one key: insert if absent, then read back.
    insert = upsert_insert(session)
    session.execute(
        insert(AppMeta)
        .values(key=SECRET_KEY_META, value=candidate)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return session.scalars(select(AppMeta.value).where(AppMeta.key == SECRET_KEY_META)).one()
