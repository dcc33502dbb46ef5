"""outgoing webhooks: endpoints and the outbox

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-20 00:00:00.000000

- `webhook_endpoints`: where events go (from the settings, or added by `dripcourse webhooks add`),
  each with its `whsec_` secret and the events it wants.
- `webhook_messages`: the outbox, one row per event and endpoint, written in the transaction of
  the change, with its delivery's fate (Standard Webhooks format; see docs/webhooks.md).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'webhook_endpoints',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.Column('secret', sa.String(length=200), nullable=False),
        sa.Column('events', sa.Text(), nullable=False),
        sa.Column('origin', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints')),
        sa.UniqueConstraint('url', name=op.f('uq_webhook_endpoints_url')),
    )
    op.create_table(
        'webhook_messages',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('endpoint_id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.String(length=64), nullable=False),
        sa.Column('event_type', sa.String(length=40), nullable=False),
        sa.Column('subscriber_id', sa.Integer(), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_attempt_at', sa.DateTime(), nullable=True),
        sa.Column('delivered_at', sa.DateTime(), nullable=True),
        sa.Column('response_status', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.String(length=250), nullable=True),
        sa.Column('lease_owner', sa.String(length=64), nullable=True),
        sa.Column('lease_expires_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ['endpoint_id'], ['webhook_endpoints.id'],
            name=op.f('fk_webhook_messages_endpoint_id_webhook_endpoints'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_messages')),
        sa.UniqueConstraint(
            'endpoint_id', 'message_id', name=op.f('uq_webhook_messages_endpoint_id')
        ),
    )
    op.create_index(
        'ix_webhook_messages_status_next_attempt_at', 'webhook_messages',
        ['status', 'next_attempt_at'],
    )
    op.create_index(
        'ix_webhook_messages_endpoint_id_subscriber_id_id', 'webhook_messages',
        ['endpoint_id', 'subscriber_id', 'id'],
    )
    op.create_index(
        'ix_webhook_messages_last_attempt_at', 'webhook_messages', ['last_attempt_at'],
    )
    op.create_index(
        op.f('ix_webhook_messages_subscriber_id'), 'webhook_messages', ['subscriber_id'],
    )


def downgrade() -> None:
    op.drop_table('webhook_messages')
    op.drop_table('webhook_endpoints')
