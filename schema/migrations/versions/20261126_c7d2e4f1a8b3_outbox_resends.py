"""outbox resends

Revision ID: c7d2e4f1a8b3
Revises: a1f0c3d2e9b7
Create Date: 2026-11-26 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'c7d2e4f1a8b3'
down_revision: str | None = 'a1f0c3d2e9b7'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('notifications', sa.Column('resends', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    op.drop_column('notifications', 'resends')
