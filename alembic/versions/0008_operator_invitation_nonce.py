"""a random number per operator that the emailed link must name

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 22:00:00.000000

An invitation link names its operator by id, and ids can come back (SQLite gives the next account
the id of a removed last one): the link also carries this number, drawn anew whenever a link is
mailed and cleared when a password is chosen, so that a link opens only the account it was made
for, and only until it is used or a newer link is sent. Empty for every existing account (no
link of theirs is out: the column is new).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('operators') as batch:
        batch.add_column(sa.Column('invitation_nonce', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('operators') as batch:
        batch.drop_column('invitation_nonce')
