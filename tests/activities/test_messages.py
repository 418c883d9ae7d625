"""Every message kind × locale × channel, rendered with every param combination the workflow
passes: no empty placeholder, no template syntax, no code and no English inside uk/ru texts.

No Postgres and no Temporal: the catalog renders from the facts the activity reads.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

import pytest

from activities.messages import (
    BLOCKS,
    LOCALES,
    MANAGER_KINDS,
    ORDERLESS_KINDS,
    Line,
    MessageCatalog,
    MessageParamsMissing,
    OrderMessageFacts,
    RecipientFacts,
    RenderedMessage,
    format_money,
    locales_of,
    sms_segments,
)
from schema.api.customers import CUSTOMER_STOCK_CHOICES, CustomerCancelReason
from schema.contracts import (
    CancelReason,
    CustomerStatus,
    DelayReason,
    DeliveryMethod,
    InspectionFinding,
    MessageKind,
    ParcelOutcome,
    PaymentFailure,
    PaymentMethod,
    PaymentStatus,
    PriceReason,
    RefundReason,
    ReturnDecline,
    ReturnReason,
    ReturnResolution,
    ReturnStatus,
    WaitingFor,
)
from starter.services.errors import ReturnRefusal

# As long as the real ones: SMS must hold them within 3 parts.
# A customer link as messages carry it: a signed token of 73 characters (schema/links.py).
ORDER_URL = "https://orderflow.example/order/IyABwqHdQhOxtIJV9dSHTw.awgUHg.MxKJT_UN-e5XnhTfMX-rhKgUCbpZ8_uQKrTc0v6spkA"
PAY_URL = "https://payments.example/payment/pay/pay_3f0c2a9e7b1d4c6a8e2f"
TRACKING_URL = "https://tracking.example/track/SIM000123456789"
CARRIER, TRACKING_NUMBER = "NovaSim", "SIM000123456789"

ORDER = OrderMessageFacts(
    number="SHOP-4f2a9c1e",
    customer_name="Ірина Коваль",
    currency="UAH",
    total=Decimal("1250.00"),
    delivery_method="courier",
    lines=(
        Line("MUG-01", "Чашка «Ранок»", 2, Decimal("250.00")),
        Line("KETTLE-01", "Чайник скляний", 1, Decimal("750.00")),
    ),
    timezone="Europe/Kyiv",
    masked_email="ir***@example.com",
    masked_phone="+38050***4567",
    support="support@orderflow.example, +380 44 000 00 00",
    feedback_url=f"{ORDER_URL}/feedback",
    choice_url=f"{ORDER_URL}/stock-choice",
    status_url=f"{ORDER_URL}/m",  # the status page, as messages link it
    page_url=ORDER_URL,
)
# A message about no one order: the "my orders" link.
RECIPIENT = RecipientFacts(support=ORDER.support, timezone="Europe/Kyiv")
LIST_URL = "https://orderflow.example/my-orders/GDBPMXlSRW-vM1b4w0Qe0A.awgUHg.lkEOH5uVnHCCrvdMX1M3qk9Tz2aH6xNYodGpHu3tHb8"
BONUS_CODE = "THANKS-7K3MQ9XD"
RETURN = "SHOP-4f2a9c1e-R1"
RETURN_ID = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"


@dataclass(frozen=True)
class Case:
    kind: MessageKind
    label: str
    params: tuple[tuple[str, str], ...] = ()
    payment_method: str = "prepaid"  # the order's (a message may say what that means)
    bonus: bool = False  # a feedback bonus is promised to the order
    delivery: str = "courier"
    total: str = ""  # an operator's final price ("": the lines' sum, ORDER's)
    price_reason: str | None = None

    @property
    def id(self) -> str:
        return f"{self.kind.value}[{self.label}]" if self.label else self.kind.value


def case(
    kind: MessageKind,
    label: str = "",
    payment: str = "prepaid",
    bonus: bool = False,
    delivery: str = "courier",
    total: str = "",
    price_reason: str | None = None,
    **params: str,
) -> Case:
    return Case(kind, label, tuple(params.items()), payment, bonus, delivery, total, price_reason)


# What the workflow passes, kind by kind; "old" rows are what orders already in flight send.
CASES = [
    case(MessageKind.CONFIRMATION, expected_date="2026-03-14"),
    *[
        case(
            MessageKind.CONFIRMATION,
            f"{delivery} {pay}",
            pay,
            delivery=delivery,
            expected_date="2026-03-14",
        )
        for delivery in ("post", "pickup")
        for pay in ("prepaid", "cod")
    ],
    case(MessageKind.CONFIRMATION, "cod courier", "cod", expected_date="2026-03-14"),
    *[
        case(
            MessageKind.CONFIRMATION,
            f"final price {reason}",
            total="1150.00",
            price_reason=reason.value,
            expected_date="2026-03-14",
        )
        for reason in PriceReason
    ],
    case(
        MessageKind.CONFIRMATION,
        "surcharge, no reason",
        total="1300.00",
        expected_date="2026-03-14",
    ),
    case(
        MessageKind.CONFIRMATION,
        "cod pickup, discount",
        "cod",
        delivery="pickup",
        total="1150.00",
        price_reason="agreed_by_phone",
        expected_date="2026-03-14",
    ),
    case(MessageKind.AWAITING_REVIEW),
    case(MessageKind.REJECTED),
    case(MessageKind.STOCK_PARTIAL, "one", missing="KETTLE-01"),
    case(MessageKind.STOCK_PARTIAL, "two", missing="KETTLE-01, MUG-01"),
    case(MessageKind.ITEMS_UNAVAILABLE, "prepaid", missing="KETTLE-01"),
    case(MessageKind.ITEMS_UNAVAILABLE, "cod", payment="cod", missing="KETTLE-01"),
    case(MessageKind.BACKORDERED, expected_date="2026-03-20"),
    case(
        MessageKind.PAYMENT_REQUESTED,
        url=PAY_URL,
        amount="1250.00",
        expires_at="2026-03-11T18:30:00+00:00",
    ),
    case(MessageKind.PAYMENT_REMINDER, url=PAY_URL, amount="1250.00"),
    *[
        case(MessageKind.PAYMENT_FAILED, code.value, reason=code.value, url=PAY_URL)
        for code in PaymentFailure
    ],
    case(MessageKind.PAYMENT_FAILED, "old: card declined", reason="card declined", url=PAY_URL),
    case(
        MessageKind.PAYMENT_FAILED,
        "old: insufficient funds",
        reason="insufficient funds",
        url=PAY_URL,
    ),
    case(MessageKind.PAYMENT_FAILED, "old: unknown text", reason="Do not honor (05)", url=PAY_URL),
    case(MessageKind.PAYMENT_FAILED, "old: no reason", reason="", url=PAY_URL),
    case(MessageKind.PAYMENT_RECEIVED, amount="1250.00"),
    case(MessageKind.PICKING),
    case(MessageKind.PACKED),
    case(
        MessageKind.SHIPPED,
        carrier=CARRIER,
        tracking_number=TRACKING_NUMBER,
        tracking_url=TRACKING_URL,
    ),
    case(MessageKind.IN_TRANSIT, tracking_url=TRACKING_URL),
    case(MessageKind.OUT_FOR_DELIVERY, tracking_url=TRACKING_URL),
    case(MessageKind.DELIVERY_FAILED, tracking_url=TRACKING_URL),
    case(MessageKind.DELIVERY_PROBLEM, tracking_url=TRACKING_URL),
    case(MessageKind.READY_FOR_PICKUP, "carrier's point", tracking_url=TRACKING_URL),
    case(MessageKind.READY_FOR_PICKUP, "shop's counter"),
    case(MessageKind.PICKUP_REMINDER),
    case(MessageKind.DELIVERED),
    case(MessageKind.DELAYED, "carrier_silent", reason="carrier_silent"),
    *[
        case(MessageKind.DELAYED, code.value, reason=code.value, new_date="2026-03-21")
        for code in DelayReason
        if code != DelayReason.CARRIER_SILENT
    ],
    case(MessageKind.DELAYED, "old: no news", reason="no news from the carrier"),
    case(
        MessageKind.DELAYED,
        "old: operator text",
        reason="the warehouse is flooded",
        new_date="2026-03-21",
    ),
    *[case(MessageKind.CANCELLED, code.value, reason=code.value) for code in CancelReason],
    case(MessageKind.CANCELLED, "refund", reason="customer_request", refund="1250.00"),
    case(
        MessageKind.CANCELLED, "old: no refund", reason="rejected", note="rude customer", refund=""
    ),
    case(
        MessageKind.CANCELLED,
        "old: refund",
        reason="out_of_stock",
        note="back-order did not arrive in time",
        refund="1250.00",
    ),
    *[case(MessageKind.INTERIM, code.value, waiting_for=code.value) for code in WaitingFor],
    case(MessageKind.FEEDBACK_REQUEST, "no bonus"),
    case(MessageKind.FEEDBACK_REQUEST, "bonus", bonus=True),
    case(MessageKind.FEEDBACK_REMINDER),
    case(MessageKind.FEEDBACK_THANKS, "no bonus"),
    case(MessageKind.FEEDBACK_THANKS, "bonus", bonus=True, bonus_code=BONUS_CODE),
    case(MessageKind.ORDER_LIST, url=LIST_URL, expires_at="2026-03-11T18:30:00+00:00"),
    # After the parcel leaves (what workflows/delivery.py and workflows/returns.py pass)
    *[
        case(MessageKind.PARCEL_RETURNING, f"{outcome} {pay}", payment=pay, outcome=outcome)
        for outcome in ("refused", "unclaimed", "returning")
        for pay in ("prepaid", "cod")
    ],
    *[
        case(
            MessageKind.PARCEL_RESHIPPED,
            outcome,
            outcome=outcome,
            carrier=CARRIER,
            tracking_number=TRACKING_NUMBER,
            tracking_url=TRACKING_URL,
        )
        for outcome in ("lost", "damaged")
    ],
    *[
        case(MessageKind.REFUND_MADE, code.value, amount="150.00", reason=code.value)
        for code in RefundReason
    ],
    case(MessageKind.RETURN_REQUESTED, return_number=RETURN),
    case(
        MessageKind.RETURN_APPROVED,
        return_number=RETURN,
        return_id=RETURN_ID,
        tracking_url=TRACKING_URL,
    ),
    case(
        MessageKind.RETURN_APPROVED,
        "no label",
        return_number=RETURN,
        return_id=RETURN_ID,
        tracking_url=TRACKING_URL,
        no_label="yes",
    ),
    *[
        case(MessageKind.RETURN_DECLINED, code.value, return_number=RETURN, decline=code.value)
        for code in ReturnDecline
    ],
    case(MessageKind.RETURN_RECEIVED, return_number=RETURN),
    case(
        MessageKind.RETURN_REFUNDED,
        "full",
        return_number=RETURN,
        refund="500.00",
        findings="",
        by_hand="",
    ),
    case(
        MessageKind.RETURN_REFUNDED,
        "partial",
        return_number=RETURN,
        refund="250.00",
        findings="damaged",
        by_hand="",
    ),
    case(
        MessageKind.RETURN_REFUNDED,
        "none",
        return_number=RETURN,
        refund="0",
        findings="used,missing",
        by_hand="",
    ),
    case(
        MessageKind.RETURN_REFUNDED,
        "by hand",
        payment="cod",
        return_number=RETURN,
        refund="500.00",
        findings="",
        by_hand="yes",
    ),
    case(MessageKind.RETURN_REFUNDED, "exchange difference", return_number=RETURN, refund="100.00"),
    case(MessageKind.RETURN_EXCHANGED, return_number=RETURN, exchange_number=f"{RETURN}-X"),
    case(MessageKind.MANAGER_REVIEW_ESCALATED, reasons="total over 10000; new customer"),
    case(MessageKind.MANAGER_PAYMENT_FAILED, "code", reason="insufficient_funds", url=PAY_URL),
    case(
        MessageKind.MANAGER_PAYMENT_FAILED,
        "old: free text",
        reason="Do not honor (05)",
        url=PAY_URL,
    ),
    case(
        MessageKind.MANAGER_INCIDENT,
        summary="carrier reports Exception: parcel damaged",
        cause="external",
    ),
]

RENDERS = [(c, locale) for c in CASES for locale in locales_of(c.kind)]


@functools.cache
def catalog() -> MessageCatalog:
    return MessageCatalog()


@functools.cache
def rendered(c: Case, locale: str, order: OrderMessageFacts = ORDER) -> RenderedMessage:
    if c.kind in ORDERLESS_KINDS:
        return catalog().render(c.kind, locale, dict(c.params), RECIPIENT)
    order = dataclasses.replace(
        order,
        payment_method=c.payment_method,
        bonus=c.bonus,
        delivery_method=c.delivery,
        total=Decimal(c.total) if c.total else order.total,
        price_reason=c.price_reason,
    )
    return catalog().render(c.kind, locale, dict(c.params), order)


def test_the_case_table_covers_every_kind() -> None:
    assert {c.kind for c in CASES} == set(MessageKind)


# --- what a finished text never contains -------------------------------------------------

GAPS = [
    (re.compile(r"\(\s*\)"), "empty brackets"),
    (re.compile(r":[ \u00a0]*[.,;]"), "nothing after a colon"),
    (re.compile(r"\S[ \u00a0]{2,}\S"), "a doubled space"),
    (re.compile(r":[ \u00a0]*$", re.MULTILINE), "a line ending in a colon"),
    (re.compile(r"[ \u00a0][.,;!?]"), "a space before punctuation"),
    (re.compile(r"\b(None|undefined|nan)\b"), "an absent value printed"),
]
RAW_SYNTAX = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")
URLS_AND_ADDRESSES = re.compile(r"https?://\S+|\S+@\S+")
LATIN_PHRASE = re.compile(r"\b[A-Za-z][A-Za-z'’-]*(?:[ \u00a0,]+[A-Za-z][A-Za-z'’-]*)+\b")
CODE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
NOT_THIS_LANGUAGE = {"uk": re.compile(r"[ЫыЭэЪъЁё]"), "ru": re.compile(r"[ІіЇїЄєҐґ]")}
INLINE_TAGS = re.compile(r"</?(?:strong|b|em|i|span|a)\b[^>]*>")
TAGS = re.compile(r"<[^>]+>")


def visible(channel: str, value: str) -> str:
    """What a reader sees: HTML without its tags, one line per block."""
    if channel != "html":
        return value
    text = TAGS.sub("\n", INLINE_TAGS.sub("", value))
    return "\n".join(line.strip() for line in html.unescape(text).splitlines() if line.strip())


def data_removed(text: str) -> str:
    """Drop what is data, not wording: addresses, the order's and carrier's identifiers."""
    text = URLS_AND_ADDRESSES.sub(" ", text)
    for value in (f"{RETURN}-X", RETURN, ORDER.number, TRACKING_NUMBER, CARRIER, BONUS_CODE):
        text = text.replace(value, " ")
    return text


@pytest.mark.parametrize("channel", BLOCKS)
@pytest.mark.parametrize(
    ("c", "locale"), RENDERS, ids=[f"{c.id}-{locale}" for c, locale in RENDERS]
)
def test_every_message_renders_whole(c: Case, locale: str, channel: str) -> None:
    text = visible(channel, getattr(rendered(c, locale), channel))
    assert text.strip(), "empty"
    assert not RAW_SYNTAX.search(text), f"template syntax in:\n{text}"
    for pattern, what in GAPS:
        found = pattern.search(text)
        assert found is None, f"{what} ({found.group()!r}) in:\n{text}"


@pytest.mark.parametrize("channel", BLOCKS)
@pytest.mark.parametrize(
    ("c", "locale"),
    [(c, locale) for c, locale in RENDERS if locale != "en"],
    ids=[f"{c.id}-{locale}" for c, locale in RENDERS if locale != "en"],
)
def test_uk_and_ru_texts_hold_no_english_and_no_other_language(
    c: Case, locale: str, channel: str
) -> None:
    text = data_removed(visible(channel, getattr(rendered(c, locale), channel)))
    latin = LATIN_PHRASE.findall(text)
    assert not latin, f"English in a {locale} text: {latin}\n{text}"
    other = NOT_THIS_LANGUAGE[locale].findall(text.replace(ORDER.customer_name, ""))
    assert not other, f"letters of another language in a {locale} text: {other}\n{text}"


@pytest.mark.parametrize("channel", BLOCKS)
@pytest.mark.parametrize(
    ("c", "locale"),
    [(c, locale) for c, locale in RENDERS if not c.kind.startswith("manager_")],
    ids=[f"{c.id}-{locale}" for c, locale in RENDERS if not c.kind.startswith("manager_")],
)
def test_customers_see_no_codes(c: Case, locale: str, channel: str) -> None:
    text = data_removed(visible(channel, getattr(rendered(c, locale), channel)))
    assert not CODE.findall(text), f"a code in a customer's text: {CODE.findall(text)}\n{text}"
    # The confirmation's line table names the article numbers.
    if c.kind != MessageKind.CONFIRMATION:
        skus = [line.sku for line in ORDER.lines if line.sku in text]
        assert not skus, f"SKUs instead of product names: {skus}\n{text}"
    for free_text in ("rude customer", "back-order did not arrive", "flooded", "Do not honor"):
        assert free_text not in text, "an operator's or provider's free text reached the customer"


@pytest.mark.parametrize(
    ("c", "locale"), RENDERS, ids=[f"{c.id}-{locale}" for c, locale in RENDERS]
)
def test_sms_fits_three_parts_and_push_is_short(c: Case, locale: str) -> None:
    message = rendered(c, locale)
    assert sms_segments(message.sms) <= 3, f"{sms_segments(message.sms)} parts: {message.sms}"
    assert "\n" not in message.push_title and len(message.push_title) <= 80
    assert len(message.push_body) <= 200, message.push_body


def test_html_escapes_what_customers_typed_and_text_keeps_it() -> None:
    typed = "Ірина <b>&amp;</b>"
    order = replace(
        ORDER,
        customer_name=typed,
        lines=tuple(replace(line, name=f"{line.name} <i>") for line in ORDER.lines),
    )
    for c, locale in RENDERS:
        message = rendered(c, locale, order)
        assert "<b>" not in message.html and "<i>" not in message.html, c.id
        if typed in message.text:
            assert "Ірина &lt;b&gt;&amp;amp;&lt;/b&gt;" in message.html, c.id
        assert "&lt;" not in message.text + message.sms + message.push_body, c.id


def test_a_url_in_what_customers_typed_is_never_a_link_in_html() -> None:
    """A name holding a URL arrives as text from the shop's sender, never as a link; the
    message's own links (status page, payment, tracking...) stay clickable."""
    order = replace(
        ORDER,
        customer_name="Olha https://evil.example/claim",
        lines=tuple(replace(line, name=f"{line.name} www.evil.example") for line in ORDER.lines),
    )
    for c, locale in RENDERS:
        message = rendered(c, locale, order)
        assert "evil.example" not in "".join(re.findall(r"<a\b[^>]*>[^<]*</a>", message.html))
        for url in re.findall(r"https://(?!evil)\S+", visible("html", message.html)):
            assert f'href="{html.escape(url.rstrip(".,;:!?)"))}"' in message.html, (c.id, url)


# --- one home per kind, and a phrase for every code ----------------------------------------


def test_every_kind_has_a_template_with_every_channel_in_every_locale() -> None:
    found = catalog().kinds_by_locale()
    for locale in LOCALES:
        wanted = {kind for kind in MessageKind if locale in locales_of(kind)}
        assert found[locale] == wanted, locale
    for kind in MessageKind:
        for locale in locales_of(kind):
            assert set(catalog().blocks_of(kind, locale)) >= set(BLOCKS), (kind, locale)


PHRASE_TABLES: dict[str, Iterable[StrEnum]] = {
    "cancel_reason": CancelReason,
    "delay_reason": DelayReason,
    "payment_failure": PaymentFailure,
    "waiting_for": WaitingFor,
    "delivery_method": DeliveryMethod,
    "customer_status": CustomerStatus,
    "payment_status": PaymentStatus,
    "customer_cancel_reason": CustomerCancelReason,
    "stock_choice": CUSTOMER_STOCK_CHOICES,
    "parcel_outcome": ParcelOutcome,
    "return_decline": ReturnDecline,
    "inspection_finding": InspectionFinding,
    "refund_reason": RefundReason,
    "price_reason": PriceReason,
    "promise": DeliveryMethod,
    "promise_short": DeliveryMethod,
    "cod_payment": DeliveryMethod,
    "payment_method": PaymentMethod,
    "return_reason": ReturnReason,
    "return_resolution": ReturnResolution,
    "return_status": ReturnStatus,
    "return_refused": ReturnRefusal,
}


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("table", PHRASE_TABLES)
def test_every_code_has_a_phrase_in_every_locale(table: str, locale: str) -> None:
    phrases = catalog().phrases(locale)[table]
    assert set(phrases) == {code.value for code in PHRASE_TABLES[table]}
    assert all(isinstance(text, str) and text.strip() for text in phrases.values())


@pytest.mark.parametrize(
    "table",
    [
        "page",
        "event",
        "return_reason",
        "return_resolution",
        "return_status",
        "return_refused",
        "document",
        "price_adjustment",
    ],
)
def test_the_pages_words_exist_in_every_locale_and_speak_it(table: str) -> None:
    """The customer pages' words (starter/customer/) live beside the messages' phrases."""
    english = catalog().phrases("en")[table]
    # Templates write `t.page.total`: a key named like a dict's method would be the method.
    assert not [key for key in english if hasattr(dict, key)]
    for locale in ("uk", "ru"):
        words = catalog().phrases(locale)[table]
        assert set(words) == set(english), locale
        for key, text in words.items():
            wording = PLACEHOLDER.sub(" ", text)  # placeholders are filled with data
            assert not LATIN_PHRASE.findall(wording), f"English in {locale} {table}.{key}: {text}"
            assert not NOT_THIS_LANGUAGE[locale].findall(wording), f"{locale} {table}.{key}"
            # The same facts fill every language's sentence (one more would be a KeyError).
            facts = set(PLACEHOLDER.findall(text))
            assert facts == set(PLACEHOLDER.findall(english[key])), f"{locale} {table}.{key}"


# --- the status page, linked from every customer message; the bonus, only when given --------

CUSTOMER_RENDERS = [
    (c, locale)
    for c, locale in RENDERS
    if c.kind not in MANAGER_KINDS and c.kind not in ORDERLESS_KINDS
]


@pytest.mark.parametrize(
    ("c", "locale"),
    CUSTOMER_RENDERS,
    ids=[f"{c.id}-{locale}" for c, locale in CUSTOMER_RENDERS],
)
def test_every_customer_message_links_its_status_page(c: Case, locale: str) -> None:
    message = rendered(c, locale)
    assert ORDER.status_url in message.text
    assert f'href="{ORDER.status_url}"' in message.html
    assert message.link == ORDER.status_url  # a push notification opens it
    if ORDER.status_url not in message.sms:
        # The SMS holds the action's own link (pay, choose, rate), or the status link would
        # take it past 3 parts.
        with_link = f"{message.sms} {ORDER.status_url}"
        assert "://" in message.sms or sms_segments(with_link) > 3, message.sms


BONUS = re.compile(r"bonus|бонус", re.IGNORECASE)


@pytest.mark.parametrize("locale", LOCALES)
def test_a_bonus_is_promised_and_thanked_for_only_when_given(locale: str) -> None:
    def channels(message: RenderedMessage) -> list[str]:
        return [getattr(message, channel) for channel in BLOCKS]

    for kind in (
        MessageKind.FEEDBACK_REQUEST,
        MessageKind.FEEDBACK_REMINDER,
        MessageKind.FEEDBACK_THANKS,
    ):
        plain = rendered(case(kind), locale)
        assert not any(BONUS.search(text) for text in channels(plain)), (kind, locale)
    promised = rendered(case(MessageKind.FEEDBACK_REQUEST, bonus=True), locale)
    assert all(BONUS.search(text) for text in (promised.text, promised.sms, promised.push_body))
    thanked = rendered(case(MessageKind.FEEDBACK_THANKS, bonus=True, bonus_code=BONUS_CODE), locale)
    for text in (thanked.text, thanked.html, thanked.sms, thanked.push_body):
        assert BONUS_CODE in text


def test_the_order_list_link_is_no_order_s_message() -> None:
    listed = rendered(
        case(MessageKind.ORDER_LIST, url=LIST_URL, expires_at="2026-03-11T18:30:00Z"), "uk"
    )
    assert LIST_URL in listed.text and listed.link == LIST_URL
    assert "11 березня 2026, 20:30" in listed.text  # the link's end, in the customer's time
    assert ORDER.number not in listed.text and ORDER.customer_name not in listed.text
    with pytest.raises(ValueError, match="rendered with"):
        catalog().render(
            MessageKind.ORDER_LIST, "uk", {"url": LIST_URL, "expires_at": "2026-03-11"}, ORDER
        )


# --- codes in, the customer's language out --------------------------------------------------


def _render(kind: MessageKind, locale: str = "uk", **params: str) -> RenderedMessage:
    return catalog().render(kind, locale, params, ORDER)


@pytest.mark.parametrize("locale", LOCALES)
def test_old_free_text_reasons_read_as_codes(locale: str) -> None:
    def failed(reason: str) -> RenderedMessage:
        return _render(MessageKind.PAYMENT_FAILED, locale, reason=reason, url=PAY_URL)

    assert failed("card declined") == failed("card_declined")
    assert failed("Insufficient funds") == failed("insufficient_funds")
    assert failed("Do not honor (05)") == failed("other") == failed("")

    def delayed(reason: str, **new_date: str) -> RenderedMessage:
        return _render(MessageKind.DELAYED, locale, reason=reason, **new_date)

    assert delayed("no news from the carrier") == delayed("carrier_silent")
    assert delayed("flooded", new_date="2026-03-21") == delayed("other", new_date="2026-03-21")

    def cancelled(**params: str) -> RenderedMessage:
        return _render(MessageKind.CANCELLED, locale, reason="out_of_stock", **params)

    assert cancelled(note="back-order did not arrive in time", refund="") == cancelled()
    assert cancelled(note="x", refund="1250.00") == cancelled(refund="1250.00")


def test_optional_parts_appear_only_when_given() -> None:
    refunded = _render(MessageKind.CANCELLED, reason="customer_request", refund="1250.00")
    kept = _render(MessageKind.CANCELLED, reason="payment_expired")
    assert "1\xa0250,00\xa0₴" in refunded.text and "повернемо" in refunded.text
    assert "повернемо" not in kept.text

    at_point = _render(MessageKind.READY_FOR_PICKUP, tracking_url=TRACKING_URL)
    at_counter = _render(MessageKind.READY_FOR_PICKUP)
    assert TRACKING_URL in at_point.text and TRACKING_URL not in at_counter.text

    silent = _render(MessageKind.DELAYED, reason="carrier_silent")
    late = _render(MessageKind.DELAYED, reason="supplier_late", new_date="2026-03-21")
    assert "21 березня 2026" in late.text and "березня" not in silent.text


def test_stock_partial_names_the_products() -> None:
    message = _render(MessageKind.STOCK_PARTIAL, missing="KETTLE-01, MUG-01")
    for channel in ("text", "html"):  # the SMS keeps to the link: names can be long
        assert "Чайник скляний, Чашка «Ранок»" in getattr(message, channel)
    assert "KETTLE-01" not in message.text + message.sms + message.push_body


def test_payment_link_expiry_is_shown_in_the_customers_time() -> None:
    message = _render(
        MessageKind.PAYMENT_REQUESTED,
        url=PAY_URL,
        amount="1250.00",
        expires_at="2026-03-11T18:30:00Z",
    )
    assert "11 березня 2026" in message.text and "20:30" in message.text  # Kyiv: UTC+2


def test_a_missing_param_is_an_error_not_an_empty_gap() -> None:
    with pytest.raises(MessageParamsMissing, match="tracking_number"):
        _render(MessageKind.SHIPPED, carrier=CARRIER, tracking_url=TRACKING_URL)
    with pytest.raises(MessageParamsMissing, match="url"):
        _render(MessageKind.PAYMENT_REMINDER, amount="1250.00", url="")


def test_a_return_label_link_opens_the_label_of_that_return() -> None:
    message = _render(
        MessageKind.RETURN_APPROVED,
        return_number=RETURN,
        return_id=RETURN_ID,
        tracking_url=TRACKING_URL,
    )
    assert f"{ORDER_URL}/returns/{RETURN_ID}/label.pdf" in message.text
    assert "label.pdf" not in message.sms  # too long for a text: it is in the e-mail


@pytest.mark.parametrize("locale", LOCALES)
def test_a_return_without_a_label_promises_none(locale: str) -> None:
    """Nova Poshta's return order: its branch makes out the waybill, nothing is printed."""
    params = {"return_number": RETURN, "return_id": RETURN_ID, "tracking_url": TRACKING_URL}
    labelled = _render(MessageKind.RETURN_APPROVED, locale, **params)
    message = _render(MessageKind.RETURN_APPROVED, locale, **params, no_label="yes")
    assert "label.pdf" in labelled.text and "label.pdf" not in message.text
    assert TRACKING_URL in message.text
    for words in (message.subject, message.text, message.sms, message.push_body):
        assert not any(w in words.lower() for w in ("етикет", "этикет", "label")), words


def test_a_return_refunded_says_what_was_refunded_and_why_not_the_rest() -> None:
    partial = _render(
        MessageKind.RETURN_REFUNDED, return_number=RETURN, refund="250.00", findings="damaged"
    )
    assert "250,00\xa0₴" in partial.text and "пошкоджено після доставки" in partial.text
    nothing = _render(
        MessageKind.RETURN_REFUNDED, return_number=RETURN, refund="0", findings="used,missing"
    )
    assert "₴" not in nothing.text
    assert "був у вжитку, немає в посилці" in nothing.text
    by_hand = _render(
        MessageKind.RETURN_REFUNDED, return_number=RETURN, refund="500.00", by_hand="yes"
    )
    assert "менеджер зв'яжеться" in by_hand.text.lower() and "картку" not in by_hand.text


def test_a_refused_parcel_says_whether_money_comes_back() -> None:
    order = dataclasses.replace(ORDER, payment_method="cod")
    cod = catalog().render(MessageKind.PARCEL_RETURNING, "uk", {"outcome": "refused"}, order)
    prepaid = _render(MessageKind.PARCEL_RETURNING, outcome="refused")
    assert "повернемо кошти" in prepaid.text and "нічого не винні" in cod.text


@pytest.mark.parametrize("locale", LOCALES)
def test_the_delivery_message_links_the_return_page_with_the_window(locale: str) -> None:
    order = dataclasses.replace(ORDER, return_days=21)
    message = catalog().render(MessageKind.DELIVERED, locale, {}, order)
    assert f"{ORDER_URL}/return" in message.text
    assert {"uk": "21 день", "ru": "21 день", "en": "21 days"}[locale] in message.text


@pytest.mark.parametrize(
    ("currency", "locale", "written"),
    [
        ("UAH", "en_GB", "UAH\xa01,999.00"),  # CLDR's spacing: letters apart from the digits
        ("PLN", "en_GB", "PLN\xa01,999.00"),
        ("EUR", "en_GB", "€1,999.00"),  # a sign stays close
        ("UAH", "uk_UA", "1\xa0999,00\xa0₴"),
        ("EUR", "uk_UA", "1\xa0999,00\xa0EUR"),
        ("UAH", "ru_RU", "1\xa0999,00\xa0₴"),
    ],
)
def test_money_is_written_as_the_locale_writes_it(currency: str, locale: str, written: str) -> None:
    assert format_money(Decimal("1999.00"), currency, locale) == written


def test_english_messages_keep_the_currency_apart_from_the_amount() -> None:
    message = _render(MessageKind.PAYMENT_RECEIVED, "en", amount="1999.00")
    assert "UAH\xa01,999.00" in message.text and "UAH1,999.00" not in message.html
    assert "UAH 1,999.00" in message.sms  # GSM-7 has no no-break space: a plain one


# --- what the confirmation promises, and what it charges --------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_a_pickup_order_is_promised_ready_for_pickup_never_delivered(locale: str) -> None:
    pickup = rendered(
        case(MessageKind.CONFIRMATION, delivery="pickup", expected_date="2026-03-14"), locale
    )
    courier = rendered(case(MessageKind.CONFIRMATION, expected_date="2026-03-14"), locale)
    delivery_date = {"en": "delivery date", "uk": "дата доставки", "ru": "дата доставки"}[locale]
    ready = {"en": "Ready for pickup", "uk": "готове до видачі", "ru": "готов к выдаче"}[locale]
    for channel in ("text", "html", "sms", "push_body"):
        said = getattr(pickup, channel)
        assert delivery_date not in said.lower() and ready.lower() in said.lower(), said
    assert delivery_date in courier.text.lower()


@pytest.mark.parametrize("locale", LOCALES)
def test_a_cash_on_delivery_confirmation_says_payment_is_on_receipt(locale: str) -> None:
    on_receipt = {"en": "on receipt", "uk": "під час отримання", "ru": "при получении"}[locale]
    for delivery in DeliveryMethod:
        cod = rendered(
            case(
                MessageKind.CONFIRMATION,
                "",
                "cod",
                delivery=delivery.value,
                expected_date="2026-03-14",
            ),
            locale,
        )
        for channel in ("text", "html", "sms", "push_body"):
            assert on_receipt in getattr(cod, channel).lower(), (delivery, channel)
        prepaid = rendered(
            case(MessageKind.CONFIRMATION, delivery=delivery.value, expected_date="2026-03-14"),
            locale,
        )
        assert on_receipt not in prepaid.text.lower()


@pytest.mark.parametrize(
    ("locale", "line"),
    [
        ("en", "- Discount (agreed by phone): -UAH\xa0100.00"),
        ("uk", "- Знижка (погоджено телефоном): -100,00\xa0₴"),
        ("ru", "- Скидка (согласовано по телефону): -100,00\xa0₴"),
    ],
)
def test_a_final_price_below_the_lines_shows_its_discount_line(locale: str, line: str) -> None:
    confirmed = rendered(
        case(
            MessageKind.CONFIRMATION,
            total="1150.00",
            price_reason="agreed_by_phone",
            expected_date="2026-03-14",
        ),
        locale,
    )
    assert line in confirmed.text.splitlines()
    assert line.removeprefix("- ").split(": ")[0] in html.unescape(confirmed.html)
    discount = {"en": "(discount)", "uk": "(знижка)", "ru": "(скидка)"}[locale]
    assert discount in confirmed.sms and discount in confirmed.push_body
    plain = rendered(case(MessageKind.CONFIRMATION, expected_date="2026-03-14"), locale)
    assert discount not in plain.sms and line not in plain.text


def test_a_surcharge_without_a_reason_is_a_line_too() -> None:
    confirmed = rendered(
        case(MessageKind.CONFIRMATION, total="1300.00", expected_date="2026-03-14"), "en"
    )
    assert "- Surcharge: UAH\xa050.00" in confirmed.text.splitlines()
