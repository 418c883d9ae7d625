"""scale: keyset indexes for the support lists; provider slots for shared rate limits

Every list of orders is `ORDER BY created_at DESC, id DESC` with a keyset cursor
(`(created_at, id) < (...)`). Without an index on that order Postgres sorted all 100,000
orders for each page (to disk at 4 MB work_mem). One index serves the unfiltered list, one
per stage replaces the plain index on `stage`, and a partial one per flag holds only the
few orders that carry it (needs action, SLA breached, payment failed), so each page reads
its 51 rows from an index. Search by e-mail and phone uses the contacts' own indexes.

`provider_slots`: one row per rate-limited provider (SMS, push), when its next call may go.
Each call takes the next slot in one statement (activities.providers.SharedRate), so N
workers together send no more than the provider's rate.

Revision ID: 5e1f2a3b4c6d
Revises: f51882c3ebb5
Create Date: 2026-11-27 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '5e1f2a3b4c6d'
down_revision: str | None = 'f51882c3ebb5'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FLAGS = ('needs_action', 'sla_breached', 'payment_failed')


def upgrade() -> None:
    op.create_index('ix_orders_newest', 'orders', ['created_at', 'id'], unique=False)
    op.create_index('ix_orders_stage_newest', 'orders', ['stage', 'created_at', 'id'], unique=False)
    op.drop_index(op.f('ix_orders_stage'), table_name='orders')
    for flag in FLAGS:
        op.create_index(
            f'ix_orders_{flag}_newest', 'orders', ['created_at', 'id'], unique=False,
            postgresql_where=sa.text(flag),
        )
    op.create_table('provider_slots',
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('next_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('provider')
    )


def downgrade() -> None:
    op.drop_table('provider_slots')
    for flag in FLAGS:
        op.drop_index(f'ix_orders_{flag}_newest', table_name='orders')
    op.create_index(op.f('ix_orders_stage'), 'orders', ['stage'], unique=False)
    op.drop_index('ix_orders_stage_newest', table_name='orders')
    op.drop_index('ix_orders_newest', table_name='orders')
