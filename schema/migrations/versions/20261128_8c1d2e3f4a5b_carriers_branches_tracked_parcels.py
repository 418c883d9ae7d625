"""carriers: delivery to a carrier's branch, the carrier's own booking reference, and the
parcels a carrier without webhooks is asked about

`order_contacts.branch_*`: the branch a customer chose (Nova Poshta's відділення), kept with
the order's other delivery data and erased with it. `order_provider_refs.carrier_ref`: the
carrier's reference of the booking (Nova Poshta deletes a waybill by it).
`tracked_parcels`: one row per parcel booked with a polling carrier, with the carrier's last
status code (the tracking schedule tells an order only what changed).

Revision ID: 8c1d2e3f4a5b
Revises: 7a3c9e1f5b2d
Create Date: 2026-11-28 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '8c1d2e3f4a5b'
down_revision: str | None = '7a3c9e1f5b2d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('order_contacts', sa.Column('branch_carrier', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
    op.add_column('order_contacts', sa.Column('branch_ref', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    op.add_column('order_contacts', sa.Column('branch_number', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
    op.add_column('order_provider_refs', sa.Column('carrier_ref', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    op.create_table(
        'tracked_parcels',
        sa.Column('tracking_number', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('carrier_api', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('order_id', sa.Uuid(), nullable=False),
        sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('done', sa.Boolean(), server_default='false', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
        sa.PrimaryKeyConstraint('tracking_number'),
    )
    op.create_index(
        'ix_tracked_parcels_in_flight', 'tracked_parcels',
        ['carrier_api', 'order_id', 'tracking_number'], unique=False,
        postgresql_where=sa.text('NOT done'),
    )


def downgrade() -> None:
    op.drop_index('ix_tracked_parcels_in_flight', table_name='tracked_parcels', postgresql_where=sa.text('NOT done'))
    op.drop_table('tracked_parcels')
    op.drop_column('order_provider_refs', 'carrier_ref')
    op.drop_column('order_contacts', 'branch_number')
    op.drop_column('order_contacts', 'branch_ref')
    op.drop_column('order_contacts', 'branch_carrier')
