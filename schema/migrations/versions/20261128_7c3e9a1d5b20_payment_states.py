"""payment states: the latest news of each payment from its provider

Revision ID: 7c3e9a1d5b20
Revises: 5b8e2c7d4f10
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '7c3e9a1d5b20'
down_revision: str | None = '5b8e2c7d4f10'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'payment_states',
        sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('payment_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('order_id', sa.Uuid(), nullable=False),
        sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('provider_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            'updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False
        ),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id']),
        sa.PrimaryKeyConstraint('provider', 'payment_id'),
    )
    op.create_index(op.f('ix_payment_states_order_id'), 'payment_states', ['order_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_payment_states_order_id'), table_name='payment_states')
    op.drop_table('payment_states')
