"""messaging: the ESP's events about our e-mails, and what they mark on an address

`email_events`: every signed ESP event once, by its token (a replay changes nothing), and
the message it was about, found by its Message-ID (`notifications.provider_message_id`, now
indexed). `email_suppressions`: per customer identity (one e-mail address), the hard bounce
or spam complaint the ESP reported. No address is stored: the identity's id.

Revision ID: f3cb6ad2bd7f
Revises: a610f05da930
Create Date: 2026-11-28 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = 'f3cb6ad2bd7f'
down_revision: str | None = 'a610f05da930'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f('ix_notifications_provider_message_id'), 'notifications', ['provider_message_id'], unique=False)
    op.create_table('email_suppressions',
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('bounced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('complained_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ),
    sa.PrimaryKeyConstraint('customer_id')
    )
    op.create_table('email_events',
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('token', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('event', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('provider', 'token')
    )


def downgrade() -> None:
    op.drop_table('email_events')
    op.drop_table('email_suppressions')
    op.drop_index(op.f('ix_notifications_provider_message_id'), table_name='notifications')
