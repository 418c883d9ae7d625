"""return parcels tracked by polling, and returns without a label to print

`tracked_parcels.return_id`: a customer's return parcel booked with a carrier tracked by
polling (Nova Poshta): its news go to the return's workflow. `returns.needs_label`: false
when the carrier's branch issues the return waybill itself (Nova Poshta's return order), so
orderflow makes no label and promises none.

Revision ID: 3b8e5d1c7a92
Revises: 6b2d8e4f1c70
Create Date: 2026-12-04 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '3b8e5d1c7a92'
down_revision: str | None = '6b2d8e4f1c70'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('tracked_parcels', sa.Column('return_id', sa.Uuid(), nullable=True))
    op.create_foreign_key(
        'tracked_parcels_return_id_fkey', 'tracked_parcels', 'returns', ['return_id'], ['id']
    )
    op.add_column(
        'returns', sa.Column('needs_label', sa.Boolean(), server_default='true', nullable=False)
    )


def downgrade() -> None:
    op.drop_column('returns', 'needs_label')
    op.drop_constraint('tracked_parcels_return_id_fkey', 'tracked_parcels', type_='foreignkey')
    op.drop_column('tracked_parcels', 'return_id')
