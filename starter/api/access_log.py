"""The access log without personal data or keys: a search (`GET /v1/orders?q=<e-mail or
phone>`) must not leave a contact in a log line, so every query string is logged with its
parameter names only (`?q=***&limit=***`); and a customer's link opens their order to
whoever holds it, so its token is logged as `***` (`/order/***/m`)."""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl

ACCESS_LOGGER = "uvicorn.access"  # uvicorn's: '%s - "%s %s HTTP/%s" %d', the 3rd is the URL
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")  # a parameter's name; anything else is masked too
# The paths that carry a customer's link token (starter/customer/, the customer API).
_TOKEN = re.compile(r"^(/order/|/my-orders/|/v1/customer/orders/)[^/?]+")


def masked_url(url: str) -> str:
    path, question, query = url.partition("?")
    path = _TOKEN.sub(r"\1***", path)
    if not question or not query:
        return path
    names = [
        name if _NAME.match(name) else "***" for name, _ in parse_qsl(query, keep_blank_values=True)
    ]
    return f"{path}?{'&'.join(f'{name}=***' for name in names) or '***'}"


class MaskedQueries(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, url, version, status = record.args
            record.args = (client, method, masked_url(str(url)), version, status)
        return True


def install() -> None:
    """Mask every query string the access log writes (once per process)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, MaskedQueries) for f in logger.filters):
        logger.addFilter(MaskedQueries())
