"""order price reason (why an operator's final price differs from the lines' sum); the
message link of a status page visit (a link counts as a click once an hour)

Revision ID: 7a3c9e1f5b2d
Revises: 7c3e9a1f2b60
Create Date: 2026-12-04 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '7a3c9e1f5b2d'
down_revision: str | None = '7c3e9a1f2b60'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('orders', sa.Column('price_reason', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
    op.add_column('status_page_visits', sa.Column('link', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column('status_page_visits', 'link')
    op.drop_column('orders', 'price_reason')
