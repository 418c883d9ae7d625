"""messaging: Viber messages counted in the reports, beside e-mail, SMS and push

`order_facts` gains `viber_sent` and `viber_failed`, and its messages' part (the function
`order_facts_messages`, first written in 9d3c6f0a1b27) counts the `viber` channel too.

Revision ID: 28084220a2aa
Revises: f3cb6ad2bd7f
Create Date: 2026-11-28 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '28084220a2aa'
down_revision: str | None = 'f3cb6ad2bd7f'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = {'email': 'emails', 'sms': 'sms', 'push': 'push'}  # channel -> its columns' prefix
CHANNELS = {**BEFORE, 'viber': 'viber'}


def _messages(channels: dict[str, str]) -> str:
    """The messages' part of the order's facts (as in 9d3c6f0a1b27), for these channels."""
    assignments = ', '.join(
        f'{prefix}_{outcome} = coalesce(x.{channel}_{outcome}, 0)'
        for channel, prefix in channels.items()
        for outcome in ('sent', 'failed')
    )
    counts = ', '.join(
        f"count(*) FILTER (WHERE channel = '{c}' AND status = 'sent') AS {c}_sent, "
        f"count(*) FILTER (WHERE channel = '{c}' AND status = 'undeliverable') AS {c}_failed"
        for c in channels
    )
    return f"""
CREATE OR REPLACE FUNCTION order_facts_messages(ids uuid[]) RETURNS void LANGUAGE sql AS $$
    UPDATE order_facts f SET {assignments}
    FROM unnest(ids) AS wanted (id) LEFT JOIN (
        SELECT order_id, {counts}
        FROM notifications WHERE order_id = ANY(ids) AND kind NOT LIKE 'manager\\_%'
        GROUP BY order_id
    ) AS x ON x.order_id = wanted.id
    WHERE f.order_id = wanted.id;
$$;
"""


def upgrade() -> None:
    for outcome in ('sent', 'failed'):
        op.add_column('order_facts', sa.Column(f'viber_{outcome}', sa.Integer(), nullable=False, server_default='0'))
    op.execute(_messages(CHANNELS))
    op.execute(
        "SELECT refresh_order_facts(ARRAY(SELECT DISTINCT order_id FROM notifications"
        " WHERE channel = 'viber'));"
    )


def downgrade() -> None:
    op.execute(_messages(BEFORE))
    for outcome in ('sent', 'failed'):
        op.drop_column('order_facts', f'viber_{outcome}')
