"""contacts belong to the order: a snapshot per order, an identity row per e-mail

Each order gets its own row in `order_contacts` (name, e-mail, phone, push token, locale,
channels and delivery address), copied from its customer row and its address as they are
now; `customers` keeps only the identity (the e-mail). Customers erased before this
revision (name and phone "erased") become erased snapshots: every personal field empty,
`erased_at` set, so no activity parses a placeholder again. Operator notes learn which
action they explain (`order_notes.action`).

Revision ID: e0a55b2bb3bf
Revises: c7d2e4f1a8b3
Create Date: 2026-11-26 11:19:04.997311
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'e0a55b2bb3bf'
down_revision: str | None = 'c7d2e4f1a8b3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# How the erasure before this revision left a customer row.
_WAS_ERASED = "c.email LIKE 'erased-%@erased.invalid'"


def upgrade() -> None:
    op.create_table('order_contacts',
    sa.Column('order_id', sa.Uuid(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('push_token', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True),
    sa.Column('locale', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('channels', postgresql.JSONB(astext_type=sa.Text()), server_default='["email"]', nullable=False),
    sa.Column('country', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True),
    sa.Column('city', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
    sa.Column('line1', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('line2', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('postal_code', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('order_id')
    )
    op.create_index(op.f('ix_order_contacts_email'), 'order_contacts', ['email'], unique=False)
    op.create_index(op.f('ix_order_contacts_phone'), 'order_contacts', ['phone'], unique=False)
    op.execute(
        f"""
        INSERT INTO order_contacts (order_id, name, email, phone, push_token, locale, channels,
                                    country, city, line1, line2, postal_code, erased_at)
        SELECT o.id,
               CASE WHEN {_WAS_ERASED} THEN NULL ELSE c.name END,
               CASE WHEN {_WAS_ERASED} THEN NULL ELSE c.email END,
               CASE WHEN {_WAS_ERASED} THEN NULL ELSE c.phone END,
               CASE WHEN {_WAS_ERASED} THEN NULL ELSE c.push_token END,
               c.locale, c.channels, a.country,
               CASE WHEN {_WAS_ERASED} THEN NULL ELSE a.city END,
               CASE WHEN {_WAS_ERASED} THEN NULL ELSE a.line1 END,
               CASE WHEN {_WAS_ERASED} THEN NULL ELSE a.line2 END,
               CASE WHEN {_WAS_ERASED} THEN NULL ELSE a.postal_code END,
               CASE WHEN {_WAS_ERASED} THEN now() END
        FROM orders o
        JOIN customers c ON c.id = o.customer_id
        LEFT JOIN customer_addresses a ON a.id = o.address_id
        """
    )
    op.drop_constraint(op.f('orders_address_id_fkey'), 'orders', type_='foreignkey')
    op.drop_column('orders', 'address_id')
    op.drop_index(op.f('ix_customer_addresses_customer_id'), table_name='customer_addresses')
    op.drop_table('customer_addresses')
    op.drop_column('customers', 'push_token')
    op.drop_column('customers', 'locale')
    op.drop_column('customers', 'channels')
    op.drop_column('customers', 'phone')
    op.drop_column('customers', 'name')
    op.add_column('order_notes', sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))


def downgrade() -> None:
    """Back to one contact row per customer: each takes the contacts of its latest order."""
    op.drop_column('order_notes', 'action')
    op.add_column('customers', sa.Column('name', sa.VARCHAR(length=200), nullable=True))
    op.add_column('customers', sa.Column('phone', sa.VARCHAR(length=20), nullable=True))
    op.add_column('customers', sa.Column('channels', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text('\'["email"]\'::jsonb'), nullable=False))
    op.add_column('customers', sa.Column('locale', sa.VARCHAR(length=8), nullable=True))
    op.add_column('customers', sa.Column('push_token', sa.VARCHAR(length=256), nullable=True))
    op.execute(
        """
        UPDATE customers c
        SET name = coalesce(latest.name, 'erased'), phone = coalesce(latest.phone, 'erased'),
            locale = latest.locale, channels = latest.channels, push_token = latest.push_token
        FROM (
            SELECT DISTINCT ON (o.customer_id) o.customer_id, k.*
            FROM orders o JOIN order_contacts k ON k.order_id = o.id
            ORDER BY o.customer_id, o.created_at DESC
        ) latest
        WHERE latest.customer_id = c.id
        """
    )
    op.execute(
        "UPDATE customers SET name = coalesce(name, ''), phone = coalesce(phone, ''), "
        "locale = coalesce(locale, 'uk')"
    )
    for column in ('name', 'phone', 'locale'):
        op.alter_column('customers', column, nullable=False)
    op.create_table('customer_addresses',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('customer_id', sa.UUID(), nullable=False),
    sa.Column('country', sa.VARCHAR(length=2), nullable=False),
    sa.Column('city', sa.VARCHAR(length=120), nullable=False),
    sa.Column('line1', sa.VARCHAR(length=200), nullable=False),
    sa.Column('line2', sa.VARCHAR(length=200), nullable=True),
    sa.Column('postal_code', sa.VARCHAR(length=20), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('customer_addresses_customer_id_fkey')),
    sa.PrimaryKeyConstraint('id', name=op.f('customer_addresses_pkey'))
    )
    op.create_index(op.f('ix_customer_addresses_customer_id'), 'customer_addresses', ['customer_id'], unique=False)
    op.add_column('orders', sa.Column('address_id', sa.UUID(), nullable=True))
    op.create_foreign_key(op.f('orders_address_id_fkey'), 'orders', 'customer_addresses', ['address_id'], ['id'])
    # The order's id doubles as its address's id: one address per order, as before.
    op.execute(
        """
        INSERT INTO customer_addresses (id, customer_id, country, city, line1, line2, postal_code)
        SELECT o.id, o.customer_id, k.country, coalesce(k.city, 'erased'),
               coalesce(k.line1, 'erased'), k.line2, coalesce(k.postal_code, 'erased')
        FROM orders o JOIN order_contacts k ON k.order_id = o.id
        WHERE k.country IS NOT NULL
        """
    )
    op.execute(
        "UPDATE orders SET address_id = id WHERE id IN (SELECT id FROM customer_addresses)"
    )
    op.drop_index(op.f('ix_order_contacts_phone'), table_name='order_contacts')
    op.drop_index(op.f('ix_order_contacts_email'), table_name='order_contacts')
    op.drop_table('order_contacts')
