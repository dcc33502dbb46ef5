"""the dashboard on a big list: a search key for names, indexes, counts kept by triggers

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 22:00:00.000000

- `subscribers.name_key`: the name in lower case, every letter of it (`validation.search_key`),
  indexed, so that a search by the start of a name walks an index; filled in for every subscriber.
- indexes for the failures of the last day and the latest ones, the latest bounces, and who left
  a course after which lesson (`enrollments.left_after_lesson_id`, kept by triggers; the
  deliveries' index by enrolment becomes one by enrolment, status and time sent, which serves what
  the old one served).
- `lesson_tallies`, `day_tallies`, `due_tallies`, `enrollment_tallies`: counts kept by triggers
  (`store/tallies.py`), computed here from the rows as they stand.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dripcourse.domain.validation import search_key
from dripcourse.store import tallies

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 20_000


def upgrade() -> None:
    with op.batch_alter_table('subscribers') as batch:
        batch.add_column(
            sa.Column('name_key', sa.String(length=200), server_default='', nullable=False)
        )
    _fill_name_keys()
    op.create_index(
        'ix_subscribers_name_key_email_key', 'subscribers', ['name_key', 'email_key'], unique=False,
        postgresql_ops={'name_key': 'varchar_pattern_ops'},
    )
    # A plain column, no foreign key: SQLite would copy the whole table to add one.
    op.add_column('enrollments', sa.Column('left_after_lesson_id', sa.Integer(), nullable=True))
    op.create_index(
        'ix_enrollments_course_id_status_left_after_lesson_id', 'enrollments',
        ['course_id', 'status', 'left_after_lesson_id'], unique=False,
    )
    # Replaces the foreign key's own index, of which it is an extension.
    op.create_index(
        'ix_deliveries_enrollment_id_status_sent_at', 'deliveries',
        ['enrollment_id', 'status', 'sent_at'], unique=False,
    )
    op.drop_index(op.f('ix_deliveries_enrollment_id'), table_name='deliveries')
    op.create_index(
        'ix_deliveries_status_last_attempt_at', 'deliveries',
        ['status', 'last_attempt_at'], unique=False,
    )
    op.create_index(op.f('ix_deliveries_bounced_at'), 'deliveries', ['bounced_at'], unique=False)
    op.create_table('lesson_tallies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lesson_id', sa.Integer(), nullable=False),
    sa.Column('sent', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('bounced', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['lesson_id'], ['lessons.id'], name=op.f('fk_lesson_tallies_lesson_id_lessons'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lesson_tallies'))
    )
    op.create_index(op.f('ix_lesson_tallies_lesson_id'), 'lesson_tallies', ['lesson_id'], unique=False)
    op.create_table('day_tallies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('sent', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_day_tallies'))
    )
    op.create_index(op.f('ix_day_tallies_day'), 'day_tallies', ['day'], unique=False)
    op.create_table('due_tallies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('owed', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_due_tallies'))
    )
    op.create_index(op.f('ix_due_tallies_day'), 'due_tallies', ['day'], unique=False)
    op.create_table('enrollment_tallies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('course_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['course_id'], ['courses.id'], name=op.f('fk_enrollment_tallies_course_id_courses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrollment_tallies'))
    )
    op.create_index(op.f('ix_enrollment_tallies_course_id'), 'enrollment_tallies', ['course_id'], unique=False)
    connection = op.get_bind()
    tallies.install(connection)
    tallies.recount(connection)


def _fill_name_keys() -> None:
    connection = op.get_bind()
    subscribers = sa.table(
        'subscribers', sa.column('id', sa.Integer), sa.column('name', sa.String),
        sa.column('name_key', sa.String),
    )
    last = 0
    while True:
        rows = connection.execute(
            sa.select(subscribers.c.id, subscribers.c.name)
            .where(subscribers.c.id > last)
            .order_by(subscribers.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        keyed = [
            {'row': row.id, 'key': search_key(row.name or '')[:200]}
            for row in rows
            if search_key(row.name or '')
        ]
        if keyed:
            connection.execute(
                subscribers.update()
                .where(subscribers.c.id == sa.bindparam('row'))
                .values(name_key=sa.bindparam('key')),
                keyed,
            )
        last = rows[-1].id


def downgrade() -> None:
    tallies.uninstall(op.get_bind())
    op.drop_index(op.f('ix_enrollment_tallies_course_id'), table_name='enrollment_tallies')
    op.drop_table('enrollment_tallies')
    op.drop_index(op.f('ix_due_tallies_day'), table_name='due_tallies')
    op.drop_table('due_tallies')
    op.drop_index(op.f('ix_day_tallies_day'), table_name='day_tallies')
    op.drop_table('day_tallies')
    op.drop_index(op.f('ix_lesson_tallies_lesson_id'), table_name='lesson_tallies')
    op.drop_table('lesson_tallies')
    op.drop_index(op.f('ix_deliveries_bounced_at'), table_name='deliveries')
    op.drop_index('ix_deliveries_status_last_attempt_at', table_name='deliveries')
    op.drop_index('ix_enrollments_course_id_status_left_after_lesson_id', table_name='enrollments')
    with op.batch_alter_table('enrollments') as batch:
        batch.drop_column('left_after_lesson_id')
    op.create_index(op.f('ix_deliveries_enrollment_id'), 'deliveries', ['enrollment_id'], unique=False)
    op.drop_index('ix_deliveries_enrollment_id_status_sent_at', table_name='deliveries')
    op.drop_index('ix_subscribers_name_key_email_key', table_name='subscribers')
    with op.batch_alter_table('subscribers') as batch:
        batch.drop_column('name_key')
