"""intake connectors: shop platforms orders arrive from, their deliveries, each order's
source, and the source orders that could not be mapped

Revision ID: 3d9b7c1e5a42
Revises: 28084220a2aa
Create Date: 2026-12-10 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '3d9b7c1e5a42'
down_revision: str | None = '28084220a2aa'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('intake_connectors',
    sa.Column('settings', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('credentials', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('intake_deliveries',
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connector_id', sa.Uuid(), nullable=False),
    sa.Column('delivery_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('source_order_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.ForeignKeyConstraint(['connector_id'], ['intake_connectors.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('connector_id', 'delivery_id')
    )
    op.create_index(op.f('ix_intake_deliveries_connector_id'), 'intake_deliveries', ['connector_id'], unique=False)
    op.create_table('order_sources',
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('connector_id', sa.Uuid(), nullable=False),
    sa.Column('source_order_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.ForeignKeyConstraint(['connector_id'], ['intake_connectors.id'], ),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('order_id'),
    sa.UniqueConstraint('connector_id', 'source_order_id')
    )
    op.create_index(op.f('ix_order_sources_connector_id'), 'order_sources', ['connector_id'], unique=False)
    op.create_table('intake_failures',
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connector_id', sa.Uuid(), nullable=False),
    sa.Column('source_order_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('field', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('message', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('resolved_by', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
    sa.ForeignKeyConstraint(['connector_id'], ['intake_connectors.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_intake_failures_connector_id'), 'intake_failures', ['connector_id'], unique=False)
    op.create_index(op.f('ix_intake_failures_email'), 'intake_failures', ['email'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_intake_failures_email'), table_name='intake_failures')
    op.drop_index(op.f('ix_intake_failures_connector_id'), table_name='intake_failures')
    op.drop_table('intake_failures')
    op.drop_index(op.f('ix_order_sources_connector_id'), table_name='order_sources')
    op.drop_table('order_sources')
    op.drop_index(op.f('ix_intake_deliveries_connector_id'), table_name='intake_deliveries')
    op.drop_table('intake_deliveries')
    op.drop_table('intake_connectors')
