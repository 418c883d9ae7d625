"""Migrations on a database of their own (on the embedded server): the tables match the
models, and existing data is carried into each new shape."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import schema.tables  # noqa: F401  (registers the tables)
from devstack.postgres import EmbeddedPostgres
from schema.database import MIGRATIONS

BEFORE_ORDER_CONTACTS = "b4e69794f5e8"
BEFORE_KEY_IDS = "b4e69794f5e8"
BEFORE_PAID_AMOUNTS = "9d3c6f0a1b27"


@pytest.fixture
def database(postgres: EmbeddedPostgres) -> Iterator[str]:
    """An empty database of its own on the test server; its URL."""
    name = f"migration_{uuid.uuid4().hex[:8]}"
    server = create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(postgres.url).set(database=name).render_as_string(hide_password=False)
    with server.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    server.dispose()


def _migrate(url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, revision)


def _order(connection: Connection, customer: uuid.UUID, address: uuid.UUID | None) -> uuid.UUID:
    order_id = uuid.uuid4()
    connection.execute(
        text(
            "INSERT INTO orders (id, number, customer_id, address_id, delivery_method,"
            " payment_method, currency, total, stage, status, request_hash) VALUES"
            " (:id, :number, :customer, :address, 'courier', 'prepaid', 'UAH', 500,"
            " 'payment', 'processing', 'h')"
        ),
        {
            "id": order_id,
            "number": f"SHOP-{order_id.hex[:8]}",
            "customer": customer,
            "address": address,
        },
    )
    return order_id


def test_each_order_gets_the_contacts_it_was_placed_with(database: str) -> None:
    _migrate(database, BEFORE_ORDER_CONTACTS)
    engine = create_engine(database)
    iryna, erased = uuid.uuid4(), uuid.uuid4()
    kyiv, lviv = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO customers (id, email, name, phone, locale, channels, push_token)"
                " VALUES (:iryna, 'iryna@example.com', 'Iryna Koval', '+380501234567', 'uk',"
                " '[\"sms\", \"email\"]', 'tok-1'),"
                " (:erased, :erased_email, 'erased', 'erased', 'en', '[\"email\"]', NULL)"
            ),
            {"iryna": iryna, "erased": erased, "erased_email": f"erased-{erased}@erased.invalid"},
        )
        connection.execute(
            text(
                "INSERT INTO customer_addresses (id, customer_id, country, city, line1,"
                " postal_code) VALUES (:kyiv, :iryna, 'UA', 'Kyiv', 'Khreshchatyk 1', '01001'),"
                " (:lviv, :erased, 'UA', 'erased', 'erased', 'erased')"
            ),
            {"kyiv": kyiv, "lviv": lviv, "iryna": iryna, "erased": erased},
        )
        shipped = _order(connection, iryna, kyiv)
        picked_up = _order(connection, iryna, None)
        in_flight = _order(connection, erased, lviv)

    _migrate(database, "head")

    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT order_id, name, email, phone, push_token, locale, channels, country,"
                " city, line1, postal_code, erased_at IS NOT NULL AS erased FROM order_contacts"
            )
        ).mappings()
        contacts = {row["order_id"]: dict(row) for row in rows}
        identities = connection.execute(text("SELECT id, email FROM customers")).all()
    engine.dispose()
    iryna_contacts = {
        "name": "Iryna Koval",
        "email": "iryna@example.com",
        "phone": "+380501234567",
        "push_token": "tok-1",
        "locale": "uk",
        "channels": ["sms", "email"],
        "erased": False,
    }
    assert contacts[shipped] == {
        "order_id": shipped,
        **iryna_contacts,
        "country": "UA",
        "city": "Kyiv",
        "line1": "Khreshchatyk 1",
        "postal_code": "01001",
    }
    assert contacts[picked_up] == {
        "order_id": picked_up,
        **iryna_contacts,
        "country": None,
        "city": None,
        "line1": None,
        "postal_code": None,
    }
    # Erased before: nothing an activity could parse or send to, the country kept.
    assert contacts[in_flight] == {
        "order_id": in_flight,
        "name": None,
        "email": None,
        "phone": None,
        "push_token": None,
        "locale": "en",
        "channels": ["email"],
        "country": "UA",
        "city": None,
        "line1": None,
        "postal_code": None,
        "erased": True,
    }
    assert sorted(identities) == sorted(
        [(iryna, "iryna@example.com"), (erased, f"erased-{erased}@erased.invalid")]
    )


def test_orders_get_their_creating_keys_id_where_the_name_is_unique(database: str) -> None:
    _migrate(database, BEFORE_KEY_IDS)
    engine = create_engine(database)
    keys = {name: [uuid.uuid4() for _ in range(n)] for name, n in (("solo", 1), ("twin", 2))}
    with engine.begin() as conn:
        for name, ids in keys.items():
            for key_id in ids:
                conn.execute(
                    text(
                        "INSERT INTO api_keys (id, name, role, key_hash, prefix) "
                        "VALUES (:id, :name, 'service', :hash, 'of_x')"
                    ),
                    {"id": key_id, "name": name, "hash": key_id.hex},
                )
        customer = uuid.uuid4()
        conn.execute(
            text(
                "INSERT INTO customers (id, email, name, phone, locale) "
                "VALUES (:id, 'a@example.com', 'A', '+380501234567', 'uk')"
            ),
            {"id": customer},
        )
        for number, creator in (("1", "key:solo"), ("2", "key:twin"), ("3", "staff:olena")):
            conn.execute(
                text(
                    "INSERT INTO orders (id, number, customer_id, delivery_method, payment_method,"
                    " currency, total, stage, status, request_hash, created_by) VALUES (:id, :n,"
                    " :c, 'courier', 'prepaid', 'UAH', 1, 'intake', 'received', 'h', :by)"
                ),
                {"id": uuid.uuid4(), "n": number, "c": customer, "by": creator},
            )

    _migrate(database, "head")

    with engine.connect() as conn:
        owners = dict(conn.execute(text("SELECT number, created_by_key_id FROM orders")).all())
    engine.dispose()
    # The one "solo" key made order 1; "twin" names two keys, so nobody can tell: no service
    # sees order 2 (staff still do); a person's order has no key.
    assert owners == {"1": keys["solo"][0], "2": None, "3": None}


def test_orders_get_what_was_paid_the_refund_ledgers_limit(database: str) -> None:
    """Paid orders get their `payment.succeeded` amount; one paid as it was cancelled (no
    such step) what it was refunded; unpaid ones nothing. Returns already on the timeline
    are counted in the facts."""
    _migrate(database, BEFORE_PAID_AMOUNTS)
    engine = create_engine(database)
    ids = {name: uuid.uuid4() for name in ("paid", "late", "unpaid")}
    with engine.begin() as conn:
        customer = uuid.uuid4()
        conn.execute(
            text("INSERT INTO customers (id, email) VALUES (:id, 'paid@example.com')"),
            {"id": customer},
        )
        for name, order_id in ids.items():
            conn.execute(
                text(
                    "INSERT INTO orders (id, number, customer_id, delivery_method, payment_method,"
                    " currency, total, stage, status, request_hash) VALUES (:id, :n, :c,"
                    " 'courier', 'prepaid', 'UAH', 500, 'payment', 'processing', 'h')"
                ),
                {"id": order_id, "n": name, "c": customer},
            )
        events = [
            (ids["paid"], "payment.succeeded", '{"amount": "500.00", "payment_id": "p1"}'),
            (ids["paid"], "return.requested", '{"return": "paid-R1"}'),
            (ids["unpaid"], "payment.requested", '{"amount": "500.00"}'),
        ]
        for n, (order_id, kind, detail) in enumerate(events):
            conn.execute(
                text(
                    "INSERT INTO order_events (order_id, key, at, type, stage, actor, detail)"
                    " VALUES (:o, :k, now(), :t, 'payment', 'system', CAST(:d AS jsonb))"
                ),
                {"o": order_id, "k": f"{n}", "t": kind, "d": detail},
            )
        conn.execute(
            text(
                "INSERT INTO refunds (order_id, idempotency_key, payment_id, amount, status)"
                " VALUES (:o, 'late:refund', 'p2', 480, 'confirmed')"
            ),
            {"o": ids["late"]},
        )

    _migrate(database, "head")

    with engine.connect() as conn:
        paid = dict(conn.execute(text("SELECT number, paid_amount FROM orders")).all())
        returns = dict(conn.execute(text("SELECT order_id, returns FROM order_facts")).all())
    engine.dispose()
    assert paid == {"paid": Decimal("500.00"), "late": Decimal("480.00"), "unpaid": None}
    assert returns[ids["paid"]] == 1 and returns[ids["unpaid"]] == 0


def test_the_tables_match_the_models(database: str) -> None:
    _migrate(database, "head")
    engine = create_engine(database)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        drift = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert drift == []
