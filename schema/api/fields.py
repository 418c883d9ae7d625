"""Field types every request model shares: money, whole numbers, printable text,
e-mail addresses, the locale, staff roles, and the strict base that refuses unknown fields."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from babel.core import get_global
from babel.numbers import get_territory_currencies
from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue, JsonValue
from pydantic_core import CoreSchema, core_schema

_MONEY = re.compile(r"^\d{1,12}(\.\d{1,2})?$")
_POSITIVE = r"^(?!0*(\.0*)?$)"  # at least one digit that is not 0
MAX_MONEY = Decimal("999999999999.99")  # an amount: NUMERIC(14, 2)
MAX_LINES, MAX_QUANTITY = 500, 100_000
# An order's total holds any lines the API admits (500 × 100,000 × MAX_MONEY < 10^20):
# NUMERIC(22, 2), so that every order the OpenAPI calls valid is one the database can keep.


def _active_currencies() -> frozenset[str]:
    """The ISO 4217 codes that are legal tender in some territory today, as CLDR (through
    Babel) keeps them: an obsolete code (UAK, DEM) or a fund's (XAU, XDR) is no price."""
    today = date.today()
    return frozenset(
        code
        for territory in get_global("territory_currencies")
        for code in get_territory_currencies(territory, start_date=today, tender=True)
    )


CURRENCIES = _active_currencies()
CURRENCY_CODES: list[JsonValue] = [*sorted(CURRENCIES)]


def currency_refusal(value: str) -> str | None:
    """Why `value` is no currency an order may be priced in (None: it is one)."""
    if value in CURRENCIES:
        return None
    if value.upper() in CURRENCIES:
        return f"use upper case: {value.upper()}"
    return "not an ISO 4217 currency in use today (e.g. UAH, EUR, USD)"


Locale = Literal["uk", "ru", "en"]


class Role(StrEnum):
    """Who a caller is, and so what they may do (starter/services/access.py has the grants)."""

    SERVICE = "service"  # creates orders, reads its own (personal data masked)
    OPERATOR = "operator"  # confirms, rejects, edits, delays, cancels; sees personal data
    SUPPORT = "support"  # finds and reads orders, personal data masked; notes
    ADMIN = "admin"  # everything, plus keys, accounts, erasure and the audit log


def _money_string(value: Any) -> Any:
    if not isinstance(value, str) or not _MONEY.match(value):
        raise ValueError('money must be a decimal string such as "250.00" (at most 12 digits)')
    return value


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be more than 0")
    return value


_MONEY_SCHEMA = {
    "type": "string",
    "pattern": _MONEY.pattern,
    "description": 'Decimal string, e.g. "250.00": at most 12 digits before the point, 2 after',
    "examples": ["250.00"],
}

# An amount of money as the API takes it: a decimal string, never a float; at most what the
# money columns hold (NUMERIC(14, 2)).
Money = Annotated[Decimal, BeforeValidator(_money_string), WithJsonSchema(_MONEY_SCHEMA)]
PositiveMoney = Annotated[
    Decimal,
    BeforeValidator(_money_string),
    AfterValidator(_positive),
    WithJsonSchema({**_MONEY_SCHEMA, "pattern": _POSITIVE + _MONEY.pattern[1:]}),
]


def _whole(value: Any) -> Any:
    """JSON's integers: 3 and 3.0 alike; never a string or a boolean."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer as JSON Schema's `integer` means it (strict otherwise: "3" and true are refused).
WholeNumber = Annotated[int, BeforeValidator(_whole), Field(strict=True)]

# What no text field takes: control characters (C0, DEL, C1), lone surrogates and the Unicode
# line and paragraph separators; text that may run over lines keeps tab, LF and CR.
_REFUSED = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
_REFUSED_IN_LINES = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029"


@dataclass(frozen=True)
class Printable:
    """Printable text, never only whitespace; the same rule is the field's OpenAPI `pattern`."""

    lines: bool

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        refused = _REFUSED_IN_LINES if self.lines else _REFUSED
        json_schema["pattern"] = rf"^(|[^{refused}]*[^\s{refused}][^{refused}]*)$"
        return json_schema

    def _check(self, value: str) -> str:
        allowed = "\t\n\r" if self.lines else ""
        for char in value:
            if char not in allowed and unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp"):
                where = "" if self.lines else " (one line of text)"
                raise ValueError(f"control character U+{ord(char):04X} is not allowed{where}")
        if value.isspace():
            raise ValueError("must not be blank")
        return value


# One line of text: names, SKUs, addresses, reasons, search terms. Newlines would break the
# headers and one-line places (e-mail subjects, SMS, labels) such a value goes into.
OneLine = Annotated[str, Printable(lines=False)]
# Text that may run over lines: notes and comments, read by people on a page.
MultiLine = Annotated[str, Printable(lines=True)]


def _any_case(name: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in name)


# An e-mail address that can receive mail: what `format: email` says, less the special-use
# domains (.test, .localhost, .invalid…) that the address validator refuses.
Email = Annotated[
    EmailStr,
    Field(
        json_schema_extra={
            "pattern": "^(?!.*@(.*\\.)?("
            + "|".join(_any_case(name) for name in SPECIAL_USE_DOMAIN_NAMES)
            + ")\\.?$)"
        }
    ),
]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
