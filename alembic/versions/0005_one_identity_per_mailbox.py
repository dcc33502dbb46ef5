"""one identity per mailbox

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 08:10:00.000000

Subscribers get `email_key` (the address lower-cased: `dripcourse.domain.validation.mailbox_key`), unique,
and suppressions are hashed over it, so that `Bob@` and `bob@` are one person who unsubscribed once.
Existing spellings of one mailbox are merged into the earliest subscriber:

- enrolments in a course the kept one lacks move to it; where both are enrolled in a course, the
  kept enrolment stays, ends unsubscribed if either was (nobody who said stop is mailed again), and
  takes over the other's delivery history except a lesson it already has; whatever the other still
  had open (pending, sending) is dropped, so nothing goes out twice;
- suppressions of the spellings become one, with the strongest reason;
- each merge is reported in the log by subscriber id (addresses are not written to logs).

Unicode domains stored by older versions are written in their ASCII (IDNA) form, as they are sent.
A forgotten person's suppression keeps its hash: only the hash of the spelling was kept, and it is
matched when that spelling (or, when it was lower case, any spelling) comes back.
"""
import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import idna
import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger('alembic.runtime.migration')

subscribers = sa.table(
    'subscribers', sa.column('id', sa.Integer()), sa.column('email', sa.String()),
    sa.column('email_key', sa.String()), sa.column('created_at', sa.DateTime()),
)
enrollments = sa.table(
    'enrollments', sa.column('id', sa.Integer()), sa.column('subscriber_id', sa.Integer()),
    sa.column('course_id', sa.Integer()), sa.column('status', sa.String()),
    sa.column('ended_at', sa.DateTime()), sa.column('next_due_at', sa.DateTime()),
)
deliveries = sa.table(
    'deliveries', sa.column('id', sa.Integer()), sa.column('enrollment_id', sa.Integer()),
    sa.column('lesson_id', sa.Integer()), sa.column('kind', sa.String()),
    sa.column('status', sa.String()), sa.column('last_error', sa.Text()),
)
clicks = sa.table(
    'clicks', sa.column('id', sa.Integer()), sa.column('enrollment_id', sa.Integer()),
    sa.column('lesson_id', sa.Integer()), sa.column('url_hash', sa.String()),
)
suppressions = sa.table(
    'suppressions', sa.column('id', sa.Integer()), sa.column('email', sa.String()),
    sa.column('email_hash', sa.String()), sa.column('reason', sa.String()),
    sa.column('created_at', sa.DateTime()),
)
# Which suppression wins when spellings are merged: what the person cannot lift outranks an
# unsubscribe, and being forgotten outranks everything.
STRENGTH = {'unsubscribed': 0, 'manual': 1, 'hard_bounce': 2, 'complaint': 3, 'forgotten': 4}
OPEN = ('pending', 'sending')


def ascii_address(email: str) -> str:
    local, at, domain = email.rpartition('@')
    if not at or domain.isascii():
        return email
    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except idna.IDNAError:
        return email


def upgrade() -> None:
    connection = op.get_bind()
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_key', sa.String(length=320), nullable=True))

    spellings: dict[str, list[tuple[int, str]]] = {}
    for row_id, email in connection.execute(
        sa.select(subscribers.c.id, subscribers.c.email).order_by(
            subscribers.c.created_at, subscribers.c.id
        )
    ):
        written = ascii_address(email)
        spellings.setdefault(written.lower(), []).append((row_id, written))
    for key, people in spellings.items():
        (kept, written), others = people[0], [row_id for row_id, _ in people[1:]]
        for other in others:
            _merge(connection, kept, other)
        connection.execute(
            subscribers.update()
            .where(subscribers.c.id == kept)
            .values(email=written, email_key=key)
        )
        if others:
            log.warning(
                'subscriber %s: merged %s (other spellings of the same mailbox) into it',
                kept, ', '.join(map(str, others)),
            )
    _rehash_suppressions(connection)

    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.alter_column('email_key', existing_type=sa.String(length=320), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_subscribers_email_key'), ['email_key'])


def _merge(connection: Any, kept: int, other: int) -> None:
    mine = dict(
        connection.execute(
            sa.select(enrollments.c.course_id, enrollments.c.id).where(
                enrollments.c.subscriber_id == kept
            )
        ).all()
    )
    theirs = connection.execute(
        sa.select(enrollments.c.id, enrollments.c.course_id, enrollments.c.status,
                  enrollments.c.ended_at).where(enrollments.c.subscriber_id == other)
    ).all()
    for enrollment_id, course_id, status, ended_at in theirs:
        if course_id not in mine:
            connection.execute(
                enrollments.update()
                .where(enrollments.c.id == enrollment_id)
                .values(subscriber_id=kept)
            )
            continue
        target = mine[course_id]
        # What the other still had open would go out a second time: it is dropped, as are its
        # cancelled lessons (a row for a lesson would keep the kept enrolment from being owed it).
        connection.execute(
            deliveries.delete().where(
                deliveries.c.enrollment_id == enrollment_id,
                sa.or_(
                    deliveries.c.status.in_(OPEN),
                    sa.and_(deliveries.c.kind == 'lesson', deliveries.c.status == 'cancelled'),
                ),
            )
        )
        had = set(
            connection.scalars(
                sa.select(deliveries.c.lesson_id).where(
                    deliveries.c.enrollment_id == target, deliveries.c.kind == 'lesson'
                )
            )
        )
        moving = sa.and_(
            deliveries.c.enrollment_id == enrollment_id,
            sa.or_(deliveries.c.kind != 'lesson', deliveries.c.lesson_id.not_in(had)),
        )
        connection.execute(deliveries.update().where(moving).values(enrollment_id=target))
        clicked = set(
            connection.execute(
                sa.select(clicks.c.lesson_id, clicks.c.url_hash).where(
                    clicks.c.enrollment_id == target
                )
            ).all()
        )
        for click_id, lesson_id, url_hash in connection.execute(
            sa.select(clicks.c.id, clicks.c.lesson_id, clicks.c.url_hash).where(
                clicks.c.enrollment_id == enrollment_id
            )
        ).all():
            if (lesson_id, url_hash) not in clicked:
                connection.execute(
                    clicks.update().where(clicks.c.id == click_id).values(enrollment_id=target)
                )
        if status == 'unsubscribed':
            connection.execute(
                enrollments.update()
                .where(enrollments.c.id == target, enrollments.c.status != 'unsubscribed')
                .values(status='unsubscribed', ended_at=ended_at, next_due_at=None)
            )
            connection.execute(
                deliveries.update()
                .where(deliveries.c.enrollment_id == target, deliveries.c.status.in_(OPEN))
                .values(status='cancelled', last_error='unsubscribed')
            )
        # What was not moved goes with it (ON DELETE CASCADE is not relied on: SQLite may
        # run without foreign keys).
        connection.execute(clicks.delete().where(clicks.c.enrollment_id == enrollment_id))
        connection.execute(deliveries.delete().where(deliveries.c.enrollment_id == enrollment_id))
        connection.execute(enrollments.delete().where(enrollments.c.id == enrollment_id))
    connection.execute(subscribers.delete().where(subscribers.c.id == other))


def _rehash_suppressions(connection: Any) -> None:
    groups: dict[str, list[Any]] = {}
    for row in connection.execute(
        sa.select(suppressions).order_by(suppressions.c.created_at, suppressions.c.id)
    ).all():
        email = None if row.email is None else ascii_address(row.email)
        hashed = (
            row.email_hash if email is None
            else hashlib.sha256(email.lower().encode('utf-8')).hexdigest()
        )
        groups.setdefault(hashed, []).append((row, email))
    # Two passes, so that a new hash never collides with an old one still in place.
    connection.execute(
        suppressions.update().values(
            email_hash=sa.literal('old:') + sa.cast(suppressions.c.id, sa.String())
        )
    )
    for hashed, rows in groups.items():
        (first, email), rest = rows[0], rows[1:]
        strongest = max((row.reason for row, _ in rows), key=lambda r: STRENGTH.get(r, 1))
        forgotten = strongest == 'forgotten'
        for row, _ in rest:
            connection.execute(suppressions.delete().where(suppressions.c.id == row.id))
        connection.execute(
            suppressions.update()
            .where(suppressions.c.id == first.id)
            .values(email_hash=hashed, reason=strongest, email=None if forgotten else email)
        )


def downgrade() -> None:
    # Merged spellings stay merged, and suppressions keep their new hashes (of the lower-cased
    # address): neither can be told apart again.
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_subscribers_email_key'), type_='unique')
        batch_op.drop_column('email_key')
