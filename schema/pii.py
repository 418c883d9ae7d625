"""Masking of personal data wherever a message, log or API answer shows it (seed 000)."""


def mask_email(email: str) -> str:
    """`iryna@example.com` -> `ir***@example.com`."""
    local, _, domain = email.partition("@")
    return f"{local[:2]}***@{domain}"


def mask_phone(phone: str) -> str:
    """`+380501234567` -> `+38050***4567`."""
    if len(phone) <= 8:
        return "***"
    return f"{phone[:6]}***{phone[-4:]}"


def mask_name(name: str) -> str:
    """`Iryna Koval` -> `Iryna K.`."""
    first, _, rest = name.strip().partition(" ")
    return f"{first} {rest[0]}." if rest else first
