"""A connector's credentials: each either a reference to the environment (`env:VAR`, read
when used) or sealed with Fernet under a key derived from ORDERFLOW_CONNECTOR_SECRET.
Stored as `{name: {"env": VAR}}` or `{name: {"sealed": token}}`; never shown back."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from typing import Literal

from cryptography.fernet import Fernet, InvalidToken

ENV_REFERENCE = re.compile(r"^env:([A-Z_][A-Z0-9_]{0,127})$")


class CredentialUnusable(Exception):
    """A credential cannot be read: its variable is unset, or it was sealed under another
    key. The connector cannot verify its source until an admin sets it again."""


def _fernet(secret: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))


def seal(value: str, *, secret: str) -> dict[str, str]:
    """What is stored for a credential as an admin gave it."""
    reference = ENV_REFERENCE.match(value)
    if reference:
        return {"env": reference.group(1)}
    return {"sealed": _fernet(secret).encrypt(value.encode()).decode()}


def unseal(stored: dict[str, str], *, secret: str) -> str:
    if "env" in stored:
        value = os.environ.get(stored["env"], "")
        if not value:
            raise CredentialUnusable(f"the variable {stored['env']} is unset")
        return value
    try:
        return _fernet(secret).decrypt(stored["sealed"].encode()).decode()
    except (InvalidToken, KeyError):
        raise CredentialUnusable("sealed under another ORDERFLOW_CONNECTOR_SECRET") from None


def where(stored: dict[str, str]) -> Literal["environment", "stored"]:
    """How a credential is kept, which is all an admin is shown of it."""
    return "environment" if "env" in stored else "stored"
