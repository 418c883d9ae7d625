"""Migrations on a database of their own: the tables match the models, and existing orders
learn the id of the key that created them wherever its name says which key that was."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel

import schema.tables  # noqa: F401  (registers the tables)
from devstack.postgres import EmbeddedPostgres
from schema.database import MIGRATIONS

BEFORE_KEY_IDS = "b4e69794f5e8"


@pytest.fixture
def empty_database(postgres: EmbeddedPostgres) -> Iterator[str]:
    name = f"migrations_{uuid.uuid4().hex[:8]}"
    plain = postgres.url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres.url.replace(f"/{postgres.database}?", f"/{name}?", 1)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _alembic(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def test_orders_get_their_creating_keys_id_where_the_name_is_unique(empty_database: str) -> None:
    config = _alembic(empty_database)
    command.upgrade(config, BEFORE_KEY_IDS)
    engine = create_engine(empty_database)
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

    command.upgrade(config, "head")

    with engine.connect() as conn:
        owners = dict(conn.execute(text("SELECT number, created_by_key_id FROM orders")).all())
    engine.dispose()
    # The one "solo" key made order 1; "twin" names two keys, so nobody can tell: no service
    # sees order 2 (staff still do); a person's order has no key.
    assert owners == {"1": keys["solo"][0], "2": None, "3": None}


def test_the_tables_match_the_models(empty_database: str) -> None:
    command.upgrade(_alembic(empty_database), "head")
    engine = create_engine(empty_database)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        drift = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert drift == []
