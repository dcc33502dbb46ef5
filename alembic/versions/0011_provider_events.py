"""provider events: bounces and complaints from SES, Postmark, Mailgun and SendGrid

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-20 00:00:00.000000

- `deliveries.provider_id`: the id a provider's relay gave the message in its final reply to DATA
  (`250 Ok <id>`), by which its bounce and complaint events name the message.
- `provider_events`: each verified provider event once, by (provider, event id): a retry or a
  replay changes nothing.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch): SQLite would otherwise copy the table and drop the tally
    # triggers that store/tallies.py keeps on it.
    op.add_column('deliveries', sa.Column('provider_id', sa.String(length=255), nullable=True))
    op.create_index(
        op.f('ix_deliveries_provider_id'), 'deliveries', ['provider_id'], unique=False
    )
    op.create_table(
        'provider_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('provider', sa.String(length=16), nullable=False),
        sa.Column('event_id', sa.String(length=255), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_events')),
        sa.UniqueConstraint('provider', 'event_id', name=op.f('uq_provider_events_provider')),
    )
    op.create_index(
        op.f('ix_provider_events_received_at'), 'provider_events', ['received_at'], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_provider_events_received_at'), table_name='provider_events')
    op.drop_table('provider_events')
    op.drop_index(op.f('ix_deliveries_provider_id'), table_name='deliveries')
    # SQLite 3.35+ drops a column in place; a batch copy would lose the tally triggers.
    op.drop_column('deliveries', 'provider_id')
