"""order progress in the read model

Revision ID: d3b8a6f0c2e1
Revises: e0a55b2bb3bf
Create Date: 2026-11-26 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = 'd3b8a6f0c2e1'
down_revision: str | None = 'e0a55b2bb3bf'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('orders', sa.Column('waiting_for', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
    op.add_column('orders', sa.Column('next_deadline', sa.DateTime(timezone=True), nullable=True))
    op.add_column('orders', sa.Column('allowed_actions', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False))
    op.add_column('orders', sa.Column('payment_status', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
    op.add_column('orders', sa.Column('fulfilment_status', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))


def downgrade() -> None:
    for column in ('fulfilment_status', 'payment_status', 'allowed_actions', 'next_deadline', 'waiting_for'):
        op.drop_column('orders', column)
