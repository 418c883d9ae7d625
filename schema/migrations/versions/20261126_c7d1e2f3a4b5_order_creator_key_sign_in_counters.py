"""orders keep the id of the key that created them; rate-limit counters for sign-in; an
order's total holds any lines the API admits

Revision ID: c7d1e2f3a4b5
Revises: d3b8a6f0c2e1
Create Date: 2026-11-26 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = 'c7d1e2f3a4b5'
down_revision: str | None = 'd3b8a6f0c2e1'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('orders', sa.Column('created_by_key_id', sa.Uuid(), nullable=True))
    op.create_index(op.f('ix_orders_created_by_key_id'), 'orders', ['created_by_key_id'], unique=False)
    op.create_foreign_key(None, 'orders', 'api_keys', ['created_by_key_id'], ['id'])
    # Existing orders knew their key by name only: an order gets its key's id where exactly one
    # key ever had that name. Orders under a name two keys share stay without an owner: no
    # service sees them (staff still do).
    op.execute(
        """
        UPDATE orders SET created_by_key_id = keys.id
        FROM (SELECT min(id::text)::uuid AS id, name FROM api_keys GROUP BY name
              HAVING count(*) = 1) AS keys
        WHERE orders.created_by = 'key:' || keys.name
        """
    )
    op.create_table('rate_limit_counters',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_index(op.f('ix_rate_limit_counters_expires_at'), 'rate_limit_counters', ['expires_at'], unique=False)
    op.alter_column('orders', 'total', type_=sa.Numeric(22, 2), existing_type=sa.Numeric(14, 2), existing_nullable=False)


def downgrade() -> None:
    op.alter_column('orders', 'total', type_=sa.Numeric(14, 2), existing_type=sa.Numeric(22, 2), existing_nullable=False)
    op.drop_index(op.f('ix_rate_limit_counters_expires_at'), table_name='rate_limit_counters')
    op.drop_table('rate_limit_counters')
    op.drop_constraint('orders_created_by_key_id_fkey', 'orders', type_='foreignkey')
    op.drop_index(op.f('ix_orders_created_by_key_id'), table_name='orders')
    op.drop_column('orders', 'created_by_key_id')
