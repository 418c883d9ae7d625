"""after the parcel leaves: what was paid (the refund ledger's limit), customer returns,
returns in the order facts

Revision ID: 5b8e2c7d4f10
Revises: 5e1f2a3b4c6d
Create Date: 2026-11-27 10:00:00

`orders.paid_amount` is what the payment brought in: the ledger never refunds more in all
(schema/ledger.py). Existing orders get it from their `payment.succeeded` step; an order
paid as it was cancelled has no such step, and gets what it was refunded (it was paid at
least that much).

`order_facts.returns` counts the order's `return.requested` steps: a part of the facts of
its own (`order_facts_returns`), recounted by a trigger on the timeline that looks only at
those rows, so that the ordinary timeline row costs nothing more than a glance.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '5b8e2c7d4f10'
down_revision: str | None = '5e1f2a3b4c6d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The parts of the facts before this one (migration 9d3c6f0a1b27), recounted by refresh.
EARLIER_PARTS = ('timeline', 'messages', 'feedback', 'carrier', 'visits', 'contacts')

RETURNS_PART = """
CREATE FUNCTION order_facts_returns(ids uuid[]) RETURNS void LANGUAGE sql AS $$
    UPDATE order_facts f SET returns = coalesce(x.returns, 0)
    FROM unnest(ids) AS wanted (id) LEFT JOIN (
        SELECT order_id, count(*) AS returns FROM order_events
        WHERE order_id = ANY(ids) AND type = 'return.requested' GROUP BY order_id
    ) AS x ON x.order_id = wanted.id
    WHERE f.order_id = wanted.id;
$$;

CREATE FUNCTION order_facts_returns_follow() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids uuid[] := ARRAY(SELECT DISTINCT order_id FROM changed WHERE type = 'return.requested');
BEGIN
    IF cardinality(ids) > 0 THEN
        PERFORM order_facts_lock(ids);
        PERFORM order_facts_returns(ids);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER order_facts_returns AFTER INSERT ON order_events
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION order_facts_returns_follow();
"""


def _refresh(parts: Sequence[str]) -> str:
    every = '\n'.join(f'    PERFORM order_facts_{name}(ids);' for name in parts)
    return f"""
CREATE OR REPLACE FUNCTION refresh_order_facts(ids uuid[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM order_facts_lock(ids);
{every}
END $$;
"""


def upgrade() -> None:
    op.add_column('orders', sa.Column('paid_amount', sa.Numeric(14, 2), nullable=True))
    op.execute(
        """
        UPDATE orders o SET paid_amount = paid.amount
        FROM (
            SELECT DISTINCT ON (order_id) order_id, (detail->>'amount')::numeric AS amount
            FROM order_events
            WHERE type = 'payment.succeeded' AND pg_input_is_valid(detail->>'amount', 'numeric')
            ORDER BY order_id, at
        ) AS paid
        WHERE paid.order_id = o.id
        """
    )
    op.execute(
        """
        UPDATE orders o SET paid_amount = refunded.amount
        FROM (SELECT order_id, sum(amount) AS amount FROM refunds GROUP BY order_id) AS refunded
        WHERE refunded.order_id = o.id AND o.paid_amount IS NULL
        """
    )
    op.add_column('refunds', sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
    op.add_column('refunds', sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True))
    op.create_table(
        'returns',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('order_id', sa.Uuid(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column('request_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('resolution', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('comment', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column('requested_by', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column('decline', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column('needs_action', sa.Boolean(), server_default='false', nullable=False),
        sa.Column('carrier', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('tracking_number', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('tracking_url', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column('refunded', sa.Numeric(14, 2), nullable=True),
        sa.Column('exchange_order_id', sa.Uuid(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['exchange_order_id'], ['orders.id']),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('number'),
        sa.UniqueConstraint('order_id', 'request_key'),
        sa.UniqueConstraint('order_id', 'seq'),
    )
    op.create_index(op.f('ix_returns_order_id'), 'returns', ['order_id'], unique=False)
    op.create_index(op.f('ix_returns_tracking_number'), 'returns', ['tracking_number'], unique=False)
    op.create_table(
        'return_lines',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('return_id', sa.Uuid(), nullable=False),
        sa.Column('sku', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('unit_price', sa.Numeric(14, 2), nullable=False),
        sa.Column('accepted', sa.Integer(), nullable=True),
        sa.Column('finding', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.ForeignKeyConstraint(['return_id'], ['returns.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_return_lines_return_id'), 'return_lines', ['return_id'], unique=False)
    op.create_index(
        'ix_order_events_returns', 'order_events', ['order_id'], unique=False,
        postgresql_where=sa.text("type = 'return.requested'"),
    )
    op.add_column('order_facts', sa.Column('returns', sa.Integer(), server_default='0', nullable=False))
    op.execute(RETURNS_PART)
    op.execute(_refresh([*EARLIER_PARTS, 'returns']))
    op.execute(
        "SELECT refresh_order_facts(ARRAY(SELECT DISTINCT order_id FROM order_events"
        " WHERE type = 'return.requested'));"
    )


def downgrade() -> None:
    op.execute(_refresh(EARLIER_PARTS))
    op.execute('DROP TRIGGER order_facts_returns ON order_events;')
    op.execute('DROP FUNCTION order_facts_returns_follow(); DROP FUNCTION order_facts_returns(uuid[]);')
    op.drop_column('order_facts', 'returns')
    op.drop_index('ix_order_events_returns', table_name='order_events')
    op.drop_index(op.f('ix_return_lines_return_id'), table_name='return_lines')
    op.drop_table('return_lines')
    op.drop_index(op.f('ix_returns_tracking_number'), table_name='returns')
    op.drop_index(op.f('ix_returns_order_id'), table_name='returns')
    op.drop_table('returns')
    op.drop_column('refunds', 'actor')
    op.drop_column('refunds', 'reason')
    op.drop_column('orders', 'paid_amount')
