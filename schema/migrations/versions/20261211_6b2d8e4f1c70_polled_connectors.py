"""polled connectors: each one's cursor, and its write-back as a subscription of its own

Revision ID: 6b2d8e4f1c70
Revises: 3d9b7c1e5a42
Create Date: 2026-12-11 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '6b2d8e4f1c70'
down_revision: str | None = '3d9b7c1e5a42'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        'intake_connectors', sa.Column('polled_to', sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column('webhook_subscriptions', sa.Column('connector_id', sa.Uuid(), nullable=True))
    op.create_index(
        op.f('ix_webhook_subscriptions_connector_id'),
        'webhook_subscriptions',
        ['connector_id'],
        unique=False,
    )
    op.create_foreign_key(
        'webhook_subscriptions_connector_id_fkey',
        'webhook_subscriptions',
        'intake_connectors',
        ['connector_id'],
        ['id'],
        ondelete='CASCADE',
    )


def downgrade() -> None:
    op.drop_constraint(
        'webhook_subscriptions_connector_id_fkey', 'webhook_subscriptions', type_='foreignkey'
    )
    op.drop_index(op.f('ix_webhook_subscriptions_connector_id'), table_name='webhook_subscriptions')
    op.drop_column('webhook_subscriptions', 'connector_id')
    op.drop_column('intake_connectors', 'polled_to')
