"""Masking of personal data wherever a message, log or API answer shows it (seed 000)."""

import re

# What stands where erased personal data was.
ERASED = "erased"
# An erased customer's identity row keeps a unique address that reaches nobody.
ERASED_DOMAIN = "@erased.invalid"


def erased_email(customer_id: object) -> str:
    return f"erased-{customer_id}{ERASED_DOMAIN}"


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+\d{7,15}")  # E.164: what we send, so what a provider quotes
# A phone number as a person types it: 7 or more digits, with spaces, dots, dashes or brackets.
_TYPED_PHONE = re.compile(r"\+?\(?\d(?:[\s().-]*\d){6,}")
_NOT_DIGITS = re.compile(r"\D")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}[./]\d{1,2}[./]\d{2,4}")  # a wish's date stays


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
    """`Iryna Koval` -> `Iryna K.` (split at any whitespace: a no-break space too)."""
    parts = name.split(maxsplit=1)
    if not parts:
        return ""
    return f"{parts[0]} {parts[1][0]}." if len(parts) > 1 else parts[0]


def mask_addresses(text: str) -> str:
    """Every e-mail address and phone number in a free text (a provider's error) masked."""
    text = _EMAIL.sub(lambda found: mask_email(found.group()), text)
    return _PHONE.sub(lambda found: mask_phone(found.group()), text)


def mask_typed_text(text: str) -> str:
    """What a person typed (the customer's note), as roles that see personal data masked
    read it: every e-mail address masked, and every phone number in any notation ("050 123
    45 67", "+38 (050) 123-45-67") down to its last two digits."""

    def masked(found: re.Match[str]) -> str:
        typed = found.group()
        return typed if _DATE.fullmatch(typed) else "***" + _NOT_DIGITS.sub("", typed)[-2:]

    text = _EMAIL.sub(lambda found: mask_email(found.group()), text)
    return _TYPED_PHONE.sub(masked, text)
