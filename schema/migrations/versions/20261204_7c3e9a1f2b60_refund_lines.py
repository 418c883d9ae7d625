"""refund lines: what an operator refunded by line, so no item is both refunded and returned

Revision ID: 7c3e9a1f2b60
Revises: 7c3e9a1d5b20
Create Date: 2026-12-04 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '7c3e9a1f2b60'
down_revision: str | None = '7c3e9a1d5b20'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('refund_lines',
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('refund_key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('sku', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('refund_key', 'sku')
    )
    op.create_index(op.f('ix_refund_lines_order_id'), 'refund_lines', ['order_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_refund_lines_order_id'), table_name='refund_lines')
    op.drop_table('refund_lines')
