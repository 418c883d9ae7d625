"""messaging: what a provider says of a message after it took it

`notifications` gains `delivery_status`, `delivered_via` and `delivery_checked_at`: TurboSMS's
word on a message it accepted (asked by the worker: a partial index holds the ones still
open).

Revision ID: a610f05da930
Revises: 8c1d2e3f4a5b
Create Date: 2026-11-28 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = 'a610f05da930'
down_revision: str | None = '8c1d2e3f4a5b'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# schema/tables.py DELIVERY_FINAL, as it was written here
FINAL = (
    'delivered', 'read', 'expired', 'undelivered', 'rejected', 'failed', 'cancelled', 'unknown',
    'bounced', 'complained',
)


def upgrade() -> None:
    op.add_column('notifications', sa.Column('delivery_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
    op.add_column('notifications', sa.Column('delivered_via', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
    op.add_column('notifications', sa.Column('delivery_checked_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        'ix_notifications_delivery_open', 'notifications', ['delivery_checked_at'], unique=False,
        postgresql_where=sa.text(
            'delivery_status IS NOT NULL AND delivery_status NOT IN ('
            + ', '.join(f"'{status}'" for status in FINAL) + ')'
        ),
    )


def downgrade() -> None:
    op.drop_index('ix_notifications_delivery_open', table_name='notifications')
    op.drop_column('notifications', 'delivery_checked_at')
    op.drop_column('notifications', 'delivered_via')
    op.drop_column('notifications', 'delivery_status')
