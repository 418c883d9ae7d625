"""reports: order_facts kept by triggers, status_page_visits, customer-contact notes

Revision ID: 9d3c6f0a1b27
Revises: b4e69794f5e8
Create Date: 2026-11-26 11:30:00.000000

`order_facts` holds one row per order with what the reports count. Triggers keep it: every
statement that inserts (or updates) rows of an order recounts that order's row from its raw
rows with `refresh_order_facts`, the one place where each fact is defined. A bulk load of
100,000 orders is one recount per statement, set-based; a workflow's single event is a
recount of one order (a handful of index lookups).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '9d3c6f0a1b27'
down_revision: str | None = 'b4e69794f5e8'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAGES = (
    'intake', 'validation', 'confirmation', 'stock', 'payment',
    'picking', 'documents', 'handover', 'transit', 'feedback',
)
CHANNELS = ('email', 'sms', 'push')
# Tables whose rows carry `order_id`, and whether an update of them changes a fact.
FOLLOWED = {
    'order_events': False,
    'notifications': True,
    'feedback': True,
    'order_provider_refs': True,
    'status_page_visits': False,
    'order_notes': True,
}


def _refresh_function() -> str:
    stage_seconds = ',\n'.join(
        f"sum(extract(epoch FROM next_at - at)) FILTER (WHERE stage = '{s}' AND stage_now <> '{s}')"
        f" AS {s}_seconds"
        for s in STAGES
    )
    channel_counts = ',\n'.join(
        f"count(*) FILTER (WHERE channel = '{c}' AND status = 'sent') AS {c}_sent, "
        f"count(*) FILTER (WHERE channel = '{c}' AND status = 'undeliverable') AS {c}_failed"
        for c in CHANNELS
    )
    channel_columns = [f'{name}_{outcome}' for name in ('emails', 'sms', 'push') for outcome in ('sent', 'failed')]
    channel_values = [f'{c}_{outcome}' for c in CHANNELS for outcome in ('sent', 'failed')]
    assignments = ',\n'.join(
        [
            'created_at = o.created_at',
            "created_on = (o.created_at AT TIME ZONE 'UTC')::date",
            'customer_id = o.customer_id',
            'delivery_method = o.delivery_method',
            'payment_method = o.payment_method',
            'returning_customer = EXISTS (SELECT 1 FROM orders p'
            ' WHERE p.customer_id = o.customer_id AND p.created_at < o.created_at)',
            'carrier = r.carrier',
            'promised_date = t.promised_date',
            'delivered_at = t.delivered_at',
            'cancelled_at = t.cancelled_at',
            'cancel_reason = t.cancel_reason',
            'sla_breaches = coalesce(t.sla_breaches, 0)',
            'feedback_requested = coalesce(t.feedback_requested, false)',
            'rating = fb.rating',
            'nps = fb.nps',
            *(f'{s}_seconds = t.{s}_seconds' for s in STAGES),
            *(
                f'{column} = coalesce(n.{value}, 0)'
                for column, value in zip(channel_columns, channel_values, strict=True)
            ),
            'status_page_views = coalesce(v.views, 0)',
            'status_link_clicks = coalesce(v.clicks, 0)',
            'support_contacts = coalesce(s.contacts, 0)',
        ]
    )
    return f"""
CREATE FUNCTION refresh_order_facts(ids uuid[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_facts (order_id, created_at, created_on, customer_id, delivery_method,
                             payment_method)
        SELECT id, created_at, (created_at AT TIME ZONE 'UTC')::date, customer_id,
               delivery_method, payment_method
        FROM orders WHERE id = ANY(ids)
        ON CONFLICT (order_id) DO NOTHING;
    -- A concurrent writer of the same order waits here until the other commits; the recount
    -- below is a new statement (a new snapshot) and so sees the other's rows too.
    PERFORM 1 FROM order_facts WHERE order_id = ANY(ids) ORDER BY order_id FOR UPDATE;
    WITH steps AS (
        SELECT order_id, type, stage, at, detail,
               lead(at) OVER w AS next_at,
               last_value(stage) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
                   AS stage_now
        FROM order_events WHERE order_id = ANY(ids)
        WINDOW w AS (PARTITION BY order_id ORDER BY at, id)
    ), timeline AS (
        SELECT order_id,
            max(CASE WHEN type = 'order.confirmed'
                      AND pg_input_is_valid(detail->>'expected_date', 'date')
                     THEN (detail->>'expected_date')::date END) AS promised_date,
            min(at) FILTER (WHERE type IN ('order.delivered', 'order.collected')) AS delivered_at,
            min(at) FILTER (WHERE stage = 'cancelled') AS cancelled_at,
            (array_agg(CASE WHEN type = 'order.invalid' THEN 'invalid'
                            ELSE coalesce(nullif(detail->>'reason', ''), 'other') END
                       ORDER BY at, type)
                FILTER (WHERE type IN ('order.cancelled', 'order.invalid')))[1] AS cancel_reason,
            count(*) FILTER (WHERE type = 'sla.silence_breached') AS sla_breaches,
            bool_or(type = 'feedback.requested') AS feedback_requested,
{stage_seconds}
        FROM steps GROUP BY order_id
    ), sent AS (
        SELECT order_id,
{channel_counts}
        FROM notifications
        WHERE order_id = ANY(ids) AND kind NOT LIKE 'manager\\_%'
        GROUP BY order_id
    ), visits AS (
        SELECT order_id, count(*) AS views, count(*) FILTER (WHERE source = 'link') AS clicks
        FROM status_page_visits WHERE order_id = ANY(ids) GROUP BY order_id
    ), contacts AS (
        SELECT order_id, count(*) AS contacts
        FROM order_notes WHERE order_id = ANY(ids) AND customer_contact GROUP BY order_id
    )
    UPDATE order_facts f SET
{assignments}
    FROM orders o
    LEFT JOIN order_provider_refs r ON r.order_id = o.id
    LEFT JOIN feedback fb ON fb.order_id = o.id
    LEFT JOIN timeline t ON t.order_id = o.id
    LEFT JOIN sent n ON n.order_id = o.id
    LEFT JOIN visits v ON v.order_id = o.id
    LEFT JOIN contacts s ON s.order_id = o.id
    WHERE f.order_id = o.id AND o.id = ANY(ids);
END $$;

CREATE FUNCTION order_facts_start() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refresh_order_facts(ARRAY(SELECT id FROM changed));
    RETURN NULL;
END $$;

CREATE FUNCTION order_facts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refresh_order_facts(ARRAY(SELECT DISTINCT order_id FROM changed));
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.add_column('order_notes', sa.Column('customer_contact', sa.Boolean(), server_default='false', nullable=False))
    op.create_table('status_page_visits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_status_page_visits_order_id'), 'status_page_visits', ['order_id'], unique=False)
    op.create_table('order_facts',
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_on', sa.Date(), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('returning_customer', sa.Boolean(), nullable=False, server_default='false'),
    sa.Column('delivery_method', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('payment_method', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('carrier', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('promised_date', sa.Date(), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_reason', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('sla_breaches', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('feedback_requested', sa.Boolean(), nullable=False, server_default='false'),
    sa.Column('rating', sa.Integer(), nullable=True),
    sa.Column('nps', sa.Integer(), nullable=True),
    *(sa.Column(f'{stage}_seconds', sa.Float(), nullable=True) for stage in STAGES),
    *(
        sa.Column(f'{channel}_{outcome}', sa.Integer(), nullable=False, server_default='0')
        for channel in ('emails', 'sms', 'push')
        for outcome in ('sent', 'failed')
    ),
    sa.Column('status_page_views', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('status_link_clicks', sa.Integer(), nullable=False, server_default='0'),
    sa.Column('support_contacts', sa.Integer(), nullable=False, server_default='0'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('order_id'),
    # Rows are rewritten on every step of their order: room on the page keeps updates in place.
    postgresql_with={'fillfactor': 80},
    )
    op.create_index(op.f('ix_order_facts_created_at'), 'order_facts', ['created_at'], unique=False)
    # SLA breaches by what the order waited for are read from the timeline: rare rows.
    op.create_index(
        'ix_order_events_sla_breaches', 'order_events', ['order_id'], unique=False,
        postgresql_where=sa.text("type = 'sla.silence_breached'"),
    )
    op.execute(_refresh_function())
    op.execute(
        'CREATE TRIGGER order_facts_start AFTER INSERT ON orders'
        ' REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION order_facts_start();'
    )
    for table, on_update in FOLLOWED.items():
        for event in ('INSERT', 'UPDATE') if on_update else ('INSERT',):
            op.execute(
                f'CREATE TRIGGER order_facts_{event.lower()} AFTER {event} ON {table}'
                ' REFERENCING NEW TABLE AS changed FOR EACH STATEMENT'
                ' EXECUTE FUNCTION order_facts_follow();'
            )
    op.execute('SELECT refresh_order_facts(ARRAY(SELECT id FROM orders));')


def downgrade() -> None:
    for table, on_update in FOLLOWED.items():
        for event in ('INSERT', 'UPDATE') if on_update else ('INSERT',):
            op.execute(f'DROP TRIGGER order_facts_{event.lower()} ON {table};')
    op.execute('DROP TRIGGER order_facts_start ON orders;')
    op.execute(
        'DROP FUNCTION order_facts_follow(); DROP FUNCTION order_facts_start();'
        ' DROP FUNCTION refresh_order_facts(uuid[]);'
    )
    op.drop_index('ix_order_events_sla_breaches', table_name='order_events')
    op.drop_index(op.f('ix_order_facts_created_at'), table_name='order_facts')
    op.drop_table('order_facts')
    op.drop_index(op.f('ix_status_page_visits_order_id'), table_name='status_page_visits')
    op.drop_table('status_page_visits')
    op.drop_column('order_notes', 'customer_contact')
