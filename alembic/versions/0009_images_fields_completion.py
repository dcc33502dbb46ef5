"""course images, custom fields, the completion email

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 00:40:00.000000

- `media_files`: a course's images as processed at sync, served at /media/<course>/<name>. Kept in
  the database so that every web process and worker machine serves the same bytes.
- `enrollments.fields`: the person's values of the course's custom fields; `{}` for everyone
  enrolled before fields existed (each field's default then applies).
- `uq_deliveries_completion_once`: a course's completion email is owed once per enrolment.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'media_files',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('course_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('source', sa.String(length=255), nullable=False),
        sa.Column('content_type', sa.String(length=32), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['course_id'], ['courses.id'],
            name=op.f('fk_media_files_course_id_courses'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_media_files')),
        sa.UniqueConstraint('course_id', 'name', name=op.f('uq_media_files_course_id')),
    )
    # A plain ADD COLUMN (no batch): SQLite would otherwise copy the table and drop the tally
    # triggers that store/tallies.py keeps on it.
    op.add_column(
        'enrollments',
        sa.Column('fields', sa.JSON(), server_default=sa.text("'{}'"), nullable=False),
    )
    op.create_index(
        'uq_deliveries_completion_once', 'deliveries', ['enrollment_id'], unique=True,
        sqlite_where=sa.text("kind = 'completion'"),
        postgresql_where=sa.text("kind = 'completion'"),
    )


def downgrade() -> None:
    op.drop_index('uq_deliveries_completion_once', table_name='deliveries')
    # SQLite 3.35+ drops a column in place; a batch copy would lose the tally triggers.
    op.drop_column('enrollments', 'fields')
    op.drop_table('media_files')
