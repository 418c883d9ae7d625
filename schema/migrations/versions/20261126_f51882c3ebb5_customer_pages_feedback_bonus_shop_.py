"""customer pages, feedback bonus, shop events outbox

Revision ID: f51882c3ebb5
Revises: 9d3c6f0a1b27
Create Date: 2026-11-26 13:05:58.523669

The shop's order events: subscriptions (`webhook_subscriptions`), the outbox written with
the read model (`shop_events`, one row per event, `seq` orders them) and one delivery row per
event and subscription (`shop_deliveries`: the dispatcher's queue and the delivery log).
The feedback bonus per order (`feedback_bonuses`); feedback gains per-line ratings and the
time an answer was replaced.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'f51882c3ebb5'
down_revision: str | None = '9d3c6f0a1b27'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('webhook_subscriptions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('events', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('secret', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('for_key_id', sa.Uuid(), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['for_key_id'], ['api_keys.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_webhook_subscriptions_for_key_id'), 'webhook_subscriptions', ['for_key_id'], unique=False)
    op.create_table('feedback_bonuses',
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('policy', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('order_id')
    )
    op.create_table('shop_events',
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('id')
    )
    op.create_index(op.f('ix_shop_events_order_id'), 'shop_events', ['order_id'], unique=False)
    op.create_table('shop_deliveries',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('subscription_id', sa.Uuid(), nullable=False),
    sa.Column('event_seq', sa.BigInteger(), nullable=False),
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['event_seq'], ['shop_events.seq'], ),
    sa.ForeignKeyConstraint(['subscription_id'], ['webhook_subscriptions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('subscription_id', 'event_seq')
    )
    op.create_index('ix_shop_deliveries_chain', 'shop_deliveries', ['subscription_id', 'order_id', 'event_seq'], unique=False, postgresql_where=sa.text("status = 'pending'"))
    op.create_index('ix_shop_deliveries_due', 'shop_deliveries', ['next_attempt_at'], unique=False, postgresql_where=sa.text("status = 'pending'"))
    op.create_index('ix_shop_deliveries_log', 'shop_deliveries', ['subscription_id', 'id'], unique=False)
    op.add_column('feedback', sa.Column('line_ratings', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False))
    op.add_column('feedback', sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('feedback', 'updated_at')
    op.drop_column('feedback', 'line_ratings')
    op.drop_index('ix_shop_deliveries_log', table_name='shop_deliveries')
    op.drop_index('ix_shop_deliveries_due', table_name='shop_deliveries', postgresql_where=sa.text("status = 'pending'"))
    op.drop_index('ix_shop_deliveries_chain', table_name='shop_deliveries', postgresql_where=sa.text("status = 'pending'"))
    op.drop_table('shop_deliveries')
    op.drop_index(op.f('ix_shop_events_order_id'), table_name='shop_events')
    op.drop_table('shop_events')
    op.drop_table('feedback_bonuses')
    op.drop_index(op.f('ix_webhook_subscriptions_for_key_id'), table_name='webhook_subscriptions')
    op.drop_table('webhook_subscriptions')
