"""reports: order_facts kept by triggers, status_page_visits, customer-contact notes

Revision ID: 9d3c6f0a1b27
Revises: c7d1e2f3a4b5
Create Date: 2026-11-26 11:30:00.000000

`order_facts` holds one row per order with what the reports count. Triggers keep it: a
statement that inserts (or updates) rows of an order recounts, from that table's rows, the
part of the facts the table holds (`order_facts_<part>`, the one place where each fact is
defined); `refresh_order_facts` recounts every part (the backfill below). A bulk load of
100,000 orders is one set-based recount per statement; a workflow's single event recounts
the timeline part of one order.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '9d3c6f0a1b27'
down_revision: str | None = 'c7d1e2f3a4b5'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAGES = (
    'intake', 'validation', 'confirmation', 'stock', 'payment',
    'picking', 'documents', 'handover', 'transit', 'feedback',
)
CHANNELS = {'email': 'emails', 'sms': 'sms', 'push': 'push'}  # channel -> its columns' prefix
# Tables whose rows carry `order_id`: the part of the facts they hold, and whether an update
# of their rows changes it.
FOLLOWED = {
    'order_events': ('timeline', False),
    'notifications': ('messages', True),
    'feedback': ('feedback', True),
    'order_provider_refs': ('carrier', True),
    'status_page_visits': ('visits', False),
    'order_notes': ('contacts', True),
}

TIMELINE = """
    SELECT order_id,
        max(CASE WHEN type = 'order.confirmed' AND pg_input_is_valid(detail->>'expected_date', 'date')
                 THEN (detail->>'expected_date')::date END) AS promised_date,
        min(at) FILTER (WHERE type IN ('order.delivered', 'order.collected')) AS delivered_at,
        min(at) FILTER (WHERE stage = 'cancelled') AS cancelled_at,
        (array_agg(CASE WHEN type = 'order.invalid' THEN 'invalid'
                        ELSE coalesce(nullif(detail->>'reason', ''), 'other') END ORDER BY at, type)
            FILTER (WHERE type IN ('order.cancelled', 'order.invalid')))[1] AS cancel_reason,
        count(*) FILTER (WHERE type = 'sla.silence_breached') AS sla_breaches,
        bool_or(type = 'feedback.requested') AS feedback_requested,
        {stage_seconds}
    FROM (
        SELECT order_id, type, stage, at, detail, lead(at) OVER w AS next_at,
               last_value(stage) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
                   AS stage_now
        FROM order_events WHERE order_id = ANY(ids)
        WINDOW w AS (PARTITION BY order_id ORDER BY at, id)
    ) AS steps
    GROUP BY order_id"""

# Each part: the columns it sets (from `x`, its source's row of the order) and its source.
PARTS = {
    'timeline': (
        [
            'promised_date = x.promised_date',
            'delivered_at = x.delivered_at',
            'cancelled_at = x.cancelled_at',
            'cancel_reason = x.cancel_reason',
            'sla_breaches = coalesce(x.sla_breaches, 0)',
            'feedback_requested = coalesce(x.feedback_requested, false)',
            *(f'{stage}_seconds = x.{stage}_seconds' for stage in STAGES),
        ],
        TIMELINE.format(
            stage_seconds=',\n        '.join(
                f"sum(extract(epoch FROM next_at - at)) FILTER"
                f" (WHERE stage = '{s}' AND stage_now <> '{s}') AS {s}_seconds"
                for s in STAGES
            )
        ),
    ),
    'messages': (
        [
            f'{prefix}_{outcome} = coalesce(x.{channel}_{outcome}, 0)'
            for channel, prefix in CHANNELS.items()
            for outcome in ('sent', 'failed')
        ],
        'SELECT order_id, '
        + ', '.join(
            f"count(*) FILTER (WHERE channel = '{c}' AND status = 'sent') AS {c}_sent, "
            f"count(*) FILTER (WHERE channel = '{c}' AND status = 'undeliverable') AS {c}_failed"
            for c in CHANNELS
        )
        + " FROM notifications WHERE order_id = ANY(ids) AND kind NOT LIKE 'manager\\_%'"
        ' GROUP BY order_id',
    ),
    'feedback': (
        ['rating = x.rating', 'nps = x.nps'],
        'SELECT order_id, rating, nps FROM feedback WHERE order_id = ANY(ids)',
    ),
    'carrier': (
        ['carrier = x.carrier'],
        'SELECT order_id, carrier FROM order_provider_refs WHERE order_id = ANY(ids)',
    ),
    'visits': (
        ['status_page_views = coalesce(x.views, 0)', 'status_link_clicks = coalesce(x.clicks, 0)'],
        "SELECT order_id, count(*) AS views, count(*) FILTER (WHERE source = 'link') AS clicks"
        ' FROM status_page_visits WHERE order_id = ANY(ids) GROUP BY order_id',
    ),
    'contacts': (
        ['support_contacts = coalesce(x.contacts, 0)'],
        'SELECT order_id, count(*) AS contacts FROM order_notes'
        ' WHERE order_id = ANY(ids) AND customer_contact GROUP BY order_id',
    ),
}


def _functions() -> str:
    parts = ''.join(
        f"""
CREATE FUNCTION order_facts_{name}(ids uuid[]) RETURNS void LANGUAGE sql AS $$
    UPDATE order_facts f SET {', '.join(assignments)}
    FROM unnest(ids) AS wanted (id) LEFT JOIN ({source}) AS x ON x.order_id = wanted.id
    WHERE f.order_id = wanted.id;
$$;
"""
        for name, (assignments, source) in PARTS.items()
    )
    every = '\n'.join(f'    PERFORM order_facts_{name}(ids);' for name in PARTS)
    follow = '\n'.join(f"        WHEN '{name}' THEN PERFORM order_facts_{name}(ids);" for name in PARTS)
    return f"""
-- The order's own facts, written once: the row every part then updates. A concurrent writer
-- of the same order waits on the row lock until the other commits; the recount after it is
-- a new statement (a new snapshot) and so sees the other's rows too.
CREATE FUNCTION order_facts_lock(ids uuid[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_facts (order_id, created_at, created_on, customer_id, delivery_method,
                             payment_method, returning_customer)
        SELECT o.id, o.created_at, (o.created_at AT TIME ZONE 'UTC')::date, o.customer_id,
               o.delivery_method, o.payment_method,
               EXISTS (SELECT 1 FROM orders p
                       WHERE p.customer_id = o.customer_id AND p.created_at < o.created_at)
        FROM orders o WHERE o.id = ANY(ids)
        ON CONFLICT (order_id) DO NOTHING;
    PERFORM 1 FROM order_facts WHERE order_id = ANY(ids) ORDER BY order_id FOR UPDATE;
END $$;
{parts}
CREATE FUNCTION refresh_order_facts(ids uuid[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM order_facts_lock(ids);
{every}
END $$;

CREATE FUNCTION order_facts_start() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM order_facts_lock(ARRAY(SELECT id FROM changed));
    RETURN NULL;
END $$;

-- TG_ARGV[0]: the part of the facts that the trigger's table holds.
CREATE FUNCTION order_facts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids uuid[] := ARRAY(SELECT DISTINCT order_id FROM changed);
BEGIN
    PERFORM order_facts_lock(ids);
    CASE TG_ARGV[0]
{follow}
    END CASE;
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
    op.execute(_functions())
    op.execute(
        'CREATE TRIGGER order_facts_start AFTER INSERT ON orders'
        ' REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION order_facts_start();'
    )
    for table, (part, on_update) in FOLLOWED.items():
        for event in ('INSERT', 'UPDATE') if on_update else ('INSERT',):
            op.execute(
                f'CREATE TRIGGER order_facts_{event.lower()} AFTER {event} ON {table}'
                ' REFERENCING NEW TABLE AS changed FOR EACH STATEMENT'
                f" EXECUTE FUNCTION order_facts_follow('{part}');"
            )
    op.execute('SELECT refresh_order_facts(ARRAY(SELECT id FROM orders));')


def downgrade() -> None:
    for table, (part, on_update) in FOLLOWED.items():
        for event in ('INSERT', 'UPDATE') if on_update else ('INSERT',):
            op.execute(f'DROP TRIGGER order_facts_{event.lower()} ON {table};')
        op.execute(f'DROP FUNCTION order_facts_{part}(uuid[]);')
    op.execute('DROP TRIGGER order_facts_start ON orders;')
    op.execute(
        'DROP FUNCTION order_facts_follow(); DROP FUNCTION order_facts_start();'
        ' DROP FUNCTION refresh_order_facts(uuid[]); DROP FUNCTION order_facts_lock(uuid[]);'
    )
    op.drop_index('ix_order_events_sla_breaches', table_name='order_events')
    op.drop_index(op.f('ix_order_facts_created_at'), table_name='order_facts')
    op.drop_table('order_facts')
    op.drop_index(op.f('ix_status_page_visits_order_id'), table_name='status_page_visits')
    op.drop_table('status_page_visits')
    op.drop_column('order_notes', 'customer_contact')
