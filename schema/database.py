"""The one way to reach Postgres: an async engine on psycopg 3, and Alembic upgrades."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(database_url: str, *, pre_ping: bool = True) -> AsyncEngine:
    """`pre_ping` tests each pooled connection before use (a round trip per checkout): the
    API's requests need it to survive a database restart; the worker's activities need not,
    a failed statement is retried with its activity."""
    return create_async_engine(database_url, pool_size=10, max_overflow=10, pool_pre_ping=pre_ping)


def upgrade_database(database_url: str) -> None:
    """`alembic upgrade head` against the given database (blocking; run at start-up)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, "head")


def open_session(engine: AsyncEngine) -> AsyncSession:
    """A session whose objects stay readable after commit (no lazy I/O outside `await`)."""
    return AsyncSession(engine, expire_on_commit=False)
