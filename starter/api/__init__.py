"""The HTTP API (FastAPI): `app.py` builds it, `routes/` holds one module per resource,
`deps.py` the dependencies, `errors.py` the error answers, `limits.py` size and rate limits.
Run it with `python -m starter.api`."""
