"""The embedded default: Temporal dev server, Postgres, a mail sink — one command brings it all up."""
