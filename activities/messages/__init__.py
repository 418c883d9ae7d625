"""Every message orderflow sends: one template per kind and locale, every channel inside it.

Where a text lives
    activities/messages/<locale>/<kind>.j2, one block per channel. The SMS in Ukrainian
    when an order ships: activities/messages/uk/shipped.j2, block `sms`.
    Locales uk, ru, en; the managers' messages (manager_*) exist in en/ only.
    Blocks: `subject`, `text` (plain e-mail), `html` (e-mail; most build it from the text's
    paragraphs, the confirmation has its own), `sms` (at most 3 parts), `push_title`,
    `push_body`.
Shared pieces
    _email.html.j2   the HTML e-mail made of the text's paragraphs
    _lines.html.j2   the confirmation's table of lines
    _footer.j2       the status-page link and the support contacts closing every order's e-mail
    <locale>/_phrases.j2   the words for every code (reasons, waits, delivery methods, statuses)
                     and the customer pages' words (starter/customer/ reads them too)
What a template gets
    Every order's message: name, number, total, support, masked_email, masked_phone,
    status_url (the order's status page; every customer message links it: in the e-mail's
    footer, in the SMS where it fits within 3 parts, and as the push notification's link),
    feedback_url, choice_url, return_url (the return page), return_period ("14 днів"),
    bonus (a feedback bonus is promised to this order), lines, adjustment (an operator's final
    price against the lines' sum: kind, label, amount; None when they agree), delivery_method,
    payment_method, phrases. A message about no one order (`order_list`) gets support and
    phrases only. Each kind: its PARAMS below, with codes normalised, money and dates
    formatted for the locale, and an absent optional param as None, which the template
    handles with `{% if %}`. Rendering is strict: a name the context lacks is an error, never
    an empty gap (tests/activities/test_messages.py renders every kind, locale and channel).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import structlog
from babel.dates import format_date, format_time
from babel.numbers import format_currency, get_currency_symbol
from babel.units import format_unit
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import escape

from schema.contracts import (
    CancelReason,
    DelayReason,
    DeliveryMethod,
    InspectionFinding,
    MessageKind,
    ParcelOutcome,
    PaymentFailure,
    PaymentMethod,
    PriceReason,
    RefundReason,
    ReturnDecline,
    WaitingFor,
)

log = structlog.get_logger(__name__)

HERE = Path(__file__).resolve().parent
LOCALES = ("uk", "ru", "en")
BABEL_LOCALES = {"uk": "uk_UA", "ru": "ru_RU", "en": "en_GB"}
BLOCKS = ("subject", "text", "html", "sms", "push_title", "push_body")
MANAGER_KINDS = frozenset(kind for kind in MessageKind if kind.value.startswith("manager_"))
# Messages about no one order: rendered with RecipientFacts, never sent by an order's workflow.
ORDERLESS_KINDS = frozenset({MessageKind.ORDER_LIST})


@dataclass(frozen=True)
class Params:
    """What the workflow passes for one kind: params it must give, and params it may leave out."""

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


# The contract with the workflow (workflows/order.py `_notify`); a kind not listed takes none.
# Extra params are ignored: orders in flight still pass `note` with `cancelled`.
PARAMS: dict[MessageKind, Params] = {
    MessageKind.CONFIRMATION: Params(("expected_date",)),
    # SKUs, comma-separated: shown as product names
    MessageKind.STOCK_PARTIAL: Params(("missing",)),
    MessageKind.ITEMS_UNAVAILABLE: Params(("missing",)),  # as for stock_partial
    MessageKind.BACKORDERED: Params(("expected_date",)),
    MessageKind.PAYMENT_REQUESTED: Params(("url", "amount", "expires_at")),
    MessageKind.PAYMENT_REMINDER: Params(("url", "amount")),
    MessageKind.PAYMENT_FAILED: Params(("reason", "url")),  # reason: PaymentFailure
    MessageKind.PAYMENT_RECEIVED: Params(("amount",)),
    # expected_date: the carrier's own estimate (Nova Poshta's EstimatedDeliveryDate)
    MessageKind.SHIPPED: Params(("carrier", "tracking_number", "tracking_url"), ("expected_date",)),
    MessageKind.IN_TRANSIT: Params(("tracking_url",)),
    MessageKind.OUT_FOR_DELIVERY: Params(("tracking_url",)),
    MessageKind.DELIVERY_FAILED: Params(("tracking_url",)),
    MessageKind.DELIVERY_PROBLEM: Params(("tracking_url",)),
    # none at the shop's counter; kept_until: a carrier's branch keeps it free until then
    MessageKind.READY_FOR_PICKUP: Params(optional=("tracking_url", "kept_until")),
    MessageKind.PICKUP_REMINDER: Params(optional=("kept_until",)),  # at a carrier's branch
    # reason: DelayReason; new_date is absent for carrier_silent
    MessageKind.DELAYED: Params(("reason",), ("new_date",)),
    # reason: CancelReason; refund only when money goes back
    MessageKind.CANCELLED: Params(("reason",), ("refund",)),
    MessageKind.INTERIM: Params(("waiting_for",)),  # WaitingFor
    MessageKind.FEEDBACK_THANKS: Params(optional=("bonus_code",)),  # absent when no bonus is given
    MessageKind.ORDER_LIST: Params(("url", "expires_at")),  # the "my orders" link and its end
    MessageKind.PARCEL_RETURNING: Params(("outcome",)),  # ParcelOutcome
    MessageKind.PARCEL_RESHIPPED: Params(("outcome", "carrier", "tracking_number", "tracking_url")),
    MessageKind.REFUND_MADE: Params(("amount", "reason")),  # reason: RefundReason
    MessageKind.RETURN_REQUESTED: Params(("return_number",)),
    # return_id: the template gets `label_url`, the customer's link to the return label;
    # no_label "yes": there is none, the carrier's branch makes out the return (Nova Poshta)
    MessageKind.RETURN_APPROVED: Params(
        ("return_number", "return_id", "tracking_url"), ("no_label",)
    ),
    MessageKind.RETURN_DECLINED: Params(("return_number", "decline")),  # ReturnDecline
    MessageKind.RETURN_RECEIVED: Params(("return_number",)),
    # refund "0": nothing refunded; findings: InspectionFinding codes, comma-separated;
    # by_hand "yes": paid on delivery, a manager returns the money
    MessageKind.RETURN_REFUNDED: Params(("return_number",), ("refund", "findings", "by_hand")),
    MessageKind.RETURN_EXCHANGED: Params(("return_number", "exchange_number")),
    MessageKind.MANAGER_REVIEW_ESCALATED: Params(("reasons",)),
    MessageKind.MANAGER_PAYMENT_FAILED: Params(("reason", "url")),
    MessageKind.MANAGER_INCIDENT: Params(("summary", "cause")),
}

# Reasons are codes; an empty one (a provider that says nothing) reads as `other`.
CODED = {"reason"}
# Free texts that orders started before the codes still pass, and the code they mean.
OLD_DELAY_TEXTS = {"no_news_from_the_carrier": DelayReason.CARRIER_SILENT}


class MessageParamsMissing(ValueError):
    """The workflow did not pass what this kind needs. Retryable on purpose: a fixed worker
    deployed later sends the message and the order goes on."""


@dataclass(frozen=True)
class Line:
    sku: str
    name: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class OrderMessageFacts:
    """What every message may say about the order, read by the activity (masked where needed)."""

    number: str
    customer_name: str
    currency: str
    total: Decimal
    delivery_method: str
    lines: tuple[Line, ...]
    timezone: str  # the customer's, for times such as a payment link's expiry
    masked_email: str
    masked_phone: str
    support: str
    feedback_url: str
    choice_url: str
    status_url: str  # the order's status page, as messages link it (counted as a click)
    payment_method: str = "prepaid"
    bonus: bool = False  # a feedback bonus is promised to this order (never for "none")
    page_url: str = ""  # the order's page, signed, as pages link it: return pages hang off it
    return_days: int = 14  # the return window (policy), as the delivery message states it
    price_reason: str | None = None  # why an operator's final price differs (a PriceReason)


@dataclass(frozen=True)
class PriceAdjustment:
    """An operator's final price against the lines' sum, shown as a line of its own: a
    discount (a negative amount) or a surcharge, with the operator's reason when given."""

    amount: Decimal
    reason: PriceReason | None = None

    @property
    def kind(self) -> str:
        return "discount" if self.amount < 0 else "surcharge"

    def label(self, words: Any) -> str:
        """The line's label, "Discount (agreed by phone)", in the language of `words` (a
        `_phrases.j2`)."""
        kind = words.price_adjustment[self.kind]
        return f"{kind} ({words.price_reason[self.reason.value]})" if self.reason else kind


def price_adjustment(
    total: Decimal, lines: Iterable[tuple[Decimal, int]], reason: str | None
) -> PriceAdjustment | None:
    """The difference between the order's total and its lines' sum (`lines`: unit price and
    quantity), or None when they agree."""
    amount = total - sum((price * quantity for price, quantity in lines), Decimal("0"))
    if amount == 0:
        return None
    return PriceAdjustment(amount, PriceReason(reason) if reason else None)


@dataclass(frozen=True)
class RecipientFacts:
    """What a message about no one order may say: the shop's support contacts, and the time
    zone for the times it names."""

    support: str
    timezone: str


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str
    sms: str
    push_title: str
    push_body: str
    link: str = ""  # where a push notification opens: the status page (or the message's link)


def format_money(amount: Decimal, currency: str, babel_locale: str) -> str:
    """An amount as the locale writes it (Babel), with CLDR's currency spacing that Babel
    leaves out: a symbol of letters stands apart from the digits by a no-break space
    ("UAH 1,999.00" rather than "UAH1,999.00"; "€1,999.00" and "1 999,00 ₴" stay as they are)."""
    text = format_currency(amount, currency, locale=babel_locale)
    symbol = get_currency_symbol(currency, babel_locale)
    if symbol[-1:].isalpha():
        text = re.sub(f"{re.escape(symbol)}(?=\\d)", f"{symbol}\xa0", text)
    if symbol[:1].isalpha():
        text = re.sub(f"(?<=\\d){re.escape(symbol)}", f"\xa0{symbol}", text)
    return text


GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def sms_segments(text: str) -> int:
    """How many SMS parts `text` takes: GSM-7 fits 160 (153 per part), UCS-2 (Cyrillic) 70 (67)."""
    single, part = (160, 153) if set(text) <= GSM7 else (70, 67)
    return 1 if len(text) <= single else -(-len(text) // part)


SMS_PARTS = 3  # what an SMS may take


def fit_sms(text: str, max_segments: int = SMS_PARTS) -> str:
    """Shorten to at most `max_segments` parts, ending with an ellipsis when cut."""
    if sms_segments(text) <= max_segments:
        return text
    part = 153 if set(text) <= GSM7 else 67
    return text[: part * max_segments - 1].rstrip() + "…"


def locales_of(kind: MessageKind) -> tuple[str, ...]:
    return ("en",) if kind in MANAGER_KINDS else LOCALES


E = TypeVar("E", PaymentFailure, DelayReason, CancelReason, RefundReason)


def _as_code(codes: type[E], value: str, fallback: E) -> E:
    """`"Card declined"` -> card_declined; anything unknown -> `fallback`."""
    normalised = "_".join(value.lower().split())
    try:
        return codes(normalised)
    except ValueError:
        return fallback


def payment_failure(value: str) -> PaymentFailure:
    return _as_code(PaymentFailure, value, PaymentFailure.OTHER)


def delay_reason(value: str) -> DelayReason:
    old = OLD_DELAY_TEXTS.get("_".join(value.lower().split()))
    return old or _as_code(DelayReason, value, DelayReason.OTHER)


def cancel_reason(value: str) -> CancelReason:
    return _as_code(CancelReason, value, CancelReason.OTHER)


class MessageCatalog:
    """The templates, rendered strictly: one Environment, autoescaping HTML only.

    HTML is escaped in `*.html.j2` templates (by name) and inside `{% autoescape true %}`
    (the confirmation's own `html` block); text, SMS and push are never escaped.
    """

    def __init__(self, root: Path = HERE) -> None:
        self._root = root
        self._env = Environment(
            loader=FileSystemLoader(root),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(
        self,
        kind: MessageKind,
        locale: str,
        params: Mapping[str, str],
        facts: OrderMessageFacts | RecipientFacts,
    ) -> RenderedMessage:
        if locale not in locales_of(kind):
            raise ValueError(f"{kind.value} has no {locale} text")
        if (kind in ORDERLESS_KINDS) == isinstance(facts, OrderMessageFacts):
            raise ValueError(f"{kind.value} is rendered with {type(facts).__name__}")
        template = self._env.get_template(f"{locale}/{kind.value}.j2")
        values = self._values(kind, locale, params, facts)

        def block(name: str) -> str:
            return "".join(template.blocks[name](template.new_context(values))).strip()

        sms = block("sms").replace("\xa0", " ")  # GSM-7 has no no-break space
        if isinstance(facts, OrderMessageFacts) and kind not in MANAGER_KINDS:
            sms = _with_status_link(sms, values["phrases"].status_label, facts.status_url)
        return RenderedMessage(
            subject=block("subject"),
            text=block("text") + "\n",
            html=_linked(block("html"), values),
            sms=sms,
            push_title=block("push_title"),
            push_body=block("push_body"),
            link=(
                facts.status_url if isinstance(facts, OrderMessageFacts) else values.get("url", "")
            ),
        )

    def phrases(self, locale: str) -> dict[str, dict[str, str]]:
        """The code-to-words tables of `<locale>/_phrases.j2`."""
        module = self.words(locale)
        return {name: value for name, value in vars(module).items() if isinstance(value, dict)}

    def words(self, locale: str) -> Any:
        """`<locale>/_phrases.j2` as templates use it (`words.page.title`): the customer's
        pages read their words here too, so each locale's words live in one place."""
        return self._env.get_template(f"{locale}/_phrases.j2").module

    def kinds_by_locale(self) -> dict[str, set[MessageKind]]:
        """Which kinds have a template in each locale (a file that names no kind is an error)."""
        return {
            locale: {
                MessageKind(path.stem)
                for path in (self._root / locale).glob("*.j2")
                if not path.name.startswith("_")
            }
            for locale in LOCALES
        }

    def blocks_of(self, kind: MessageKind, locale: str) -> list[str]:
        return list(self._env.get_template(f"{locale}/{kind.value}.j2").blocks)

    def _values(
        self,
        kind: MessageKind,
        locale: str,
        params: Mapping[str, str],
        facts: OrderMessageFacts | RecipientFacts,
    ) -> dict[str, Any]:
        babel = BABEL_LOCALES[locale]
        spec = PARAMS.get(kind, Params())
        absent = [
            name
            for name in spec.required
            if name not in params or (name not in CODED and not params[name].strip())
        ]
        if absent:
            raise MessageParamsMissing(f"{kind.value} needs {', '.join(absent)}")

        currency = facts.currency if isinstance(facts, OrderMessageFacts) else ""

        def money(amount: Decimal) -> str:
            return format_money(amount, currency, babel)

        values: dict[str, Any] = {
            "support": facts.support,
            "phrases": self.words(locale),
        }
        order = facts if isinstance(facts, OrderMessageFacts) else None
        if order is not None:
            adjustment = price_adjustment(
                order.total,
                ((line.unit_price, line.quantity) for line in order.lines),
                order.price_reason,
            )
            values |= {
                "name": order.customer_name,
                "number": order.number,
                "total": money(order.total),
                "masked_email": order.masked_email,
                "masked_phone": order.masked_phone,
                "status_url": order.status_url,
                "feedback_url": order.feedback_url,
                "choice_url": order.choice_url,
                "return_url": f"{order.page_url}/return",
                "return_period": format_unit(order.return_days, "duration-day", locale=babel),
                "bonus": order.bonus,
                "delivery_method": DeliveryMethod(order.delivery_method).value,
                "payment_method": PaymentMethod(order.payment_method).value,
                "adjustment": adjustment
                and {
                    "kind": adjustment.kind,
                    "label": adjustment.label(values["phrases"]),
                    "amount": money(adjustment.amount),
                },
                "lines": [
                    {
                        "sku": line.sku,
                        "name": line.name,
                        "quantity": line.quantity,
                        "unit_price": money(line.unit_price),
                        "amount": money(line.unit_price * line.quantity),
                    }
                    for line in order.lines
                ],
            }
        for name in (*spec.required, *spec.optional):
            raw = params.get(name, "").strip()
            if not raw and name not in CODED:
                values[name] = None  # only optional params get here
                continue
            if name == "refund" and Decimal(raw) == 0:
                values[name] = None  # nothing refunded: the template says so
            elif name in ("amount", "refund"):
                values[name] = money(Decimal(raw))
            elif name in ("expected_date", "new_date", "kept_until"):
                values[name] = format_date(date.fromisoformat(raw), "d MMMM y", locale=babel)
            elif name == "expires_at":
                values[name] = _local_time(raw, facts.timezone, babel)
            elif name == "missing":
                values[name] = _product_names(raw, order.lines if order else ())
            elif name == "waiting_for":
                values[name] = WaitingFor(raw).value
            elif name == "outcome":
                values[name] = ParcelOutcome(raw).value
            elif name == "decline":
                values[name] = ReturnDecline(raw).value
            elif name == "findings":
                values[name] = [InspectionFinding(code).value for code in raw.split(",")]
            elif name == "by_hand":
                values[name] = raw == "yes"
            elif name == "return_id" and order is not None:
                labelled = params.get("no_label") != "yes"
                values["label_url"] = (
                    f"{order.page_url}/returns/{raw}/label.pdf" if labelled else None
                )
            elif name == "reason":
                values.update(_reason(kind, raw))
            else:
                values[name] = raw
        return values


def _linked(html: str, values: Mapping[str, Any]) -> str:
    """The HTML e-mail with the message's own links clickable: the URLs it was given (status
    page, payment, tracking, label...), wherever the text shows one. Nothing else is linked:
    a customer's name holding a URL stays text, never a link from the shop's sender."""
    ours = {
        str(escape(value))
        for name, value in values.items()
        if (name == "url" or name.endswith("_url")) and isinstance(value, str) and "://" in value
    }
    if not ours:
        return html
    # Longest first, whole URLs only, and not where the template already made a link.
    alternatives = "|".join(re.escape(url) for url in sorted(ours, key=len, reverse=True))
    shown = re.compile(rf'(?<![="\w/])({alternatives})(?=[\s<".,;:!?)]|$)')
    return shown.sub(lambda found: f'<a href="{found[1]}">{found[1]}</a>', html)


def _with_status_link(sms: str, label: str, status_url: str) -> str:
    """Every customer SMS links the order's status page where it fits: most templates place
    the link; an SMS that holds no link (its text is a long reason) gets it appended when the
    whole still fits in 3 parts (labelled, or bare when only that fits). An SMS that holds the action's own link (pay, choose, rate)
    keeps to that one."""
    if "://" in sms:
        return sms
    for linked in (f"{sms} {label}: {status_url}", f"{sms} {status_url}"):
        if sms_segments(linked) <= SMS_PARTS:
            return linked
    return sms


def _reason(kind: MessageKind, raw: str) -> dict[str, str]:
    if kind in (MessageKind.PAYMENT_FAILED, MessageKind.MANAGER_PAYMENT_FAILED):
        code = payment_failure(raw)
        # Managers also see what the provider said when it is no known code.
        said = raw if code == PaymentFailure.OTHER and raw.lower() != "other" else ""
        return {"reason": code.value, "provider_reason": said}
    if kind == MessageKind.DELAYED:
        return {"reason": delay_reason(raw).value}
    if kind == MessageKind.CANCELLED:
        return {"reason": cancel_reason(raw).value}
    if kind == MessageKind.REFUND_MADE:
        return {"reason": _as_code(RefundReason, raw, RefundReason.OTHER).value}
    raise ValueError(f"{kind.value} takes no reason")


def _local_time(iso: str, zone: str, babel: str) -> str:
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(ZoneInfo(zone))
    return f"{format_date(local, 'd MMMM y', locale=babel)}, {format_time(local, 'HH:mm', locale=babel)}"


def _product_names(skus: str, lines: tuple[Line, ...]) -> list[str]:
    """The names customers know for the SKUs the workflow passes (codes are never shown)."""
    wanted = [sku.strip() for sku in skus.split(",") if sku.strip()]
    names = {line.sku: line.name for line in lines}
    unknown = [sku for sku in wanted if sku not in names]
    if unknown:
        log.warning("missing SKUs are no line of the order", skus=unknown)
    found = list(dict.fromkeys(names[sku] for sku in wanted if sku in names))
    if not found:
        raise MessageParamsMissing(f"stock_partial: no line of the order has SKU {skus}")
    return found
