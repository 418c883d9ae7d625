"""Documents for every order: receipt (invoice), packing list, and the shipping label whose
Code128 barcode carries the tracking number (seed 000); a customer's return gets a return
label the same way (`return_label_<n>`, from the customer to the shop). PDFs are stored with
the order. The receipt and the labels speak the order's language (their words are
`document` in activities/messages/<locale>/_phrases.j2), name the shop (settings
ORDERFLOW_SHOP_*) and are dated the day they are made; the packing list is the warehouse's,
in English.

They print the contacts the order was placed with. An erased customer's order gets a receipt
without a name and no label: nothing is printed from erased data. The customer's link (which
anyone it is forwarded to holds) opens copies rendered again with the contact masked as its
status page masks it (`for_link_holder`); the stored originals are staff's."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date
from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib.pagesizes import A4, A6
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities.carriers.base import Carrier
from activities.messages import (
    BABEL_LOCALES,
    LOCALES,
    MessageCatalog,
    format_money,
    price_adjustment,
)
from activities.orders import load_contact, load_order, load_return, order_lines, timezone_of
from schema.contracts import DocumentsResult, OrderRef, ReturnRef
from schema.database import open_session
from schema.pii import mask_name
from schema.tables import Document, Order, OrderContact, OrderLine, OrderProviderRefs, Return
from settings import Settings

# Cyrillic names need a Unicode font; Debian's fonts-dejavu-core has one.
_DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
FONT = "Helvetica"
if _DEJAVU.exists():
    pdfmetrics.registerFont(TTFont("DejaVuSans", str(_DEJAVU)))
    FONT = "DejaVuSans"

_WORDS = MessageCatalog()


@dataclass(frozen=True)
class Shop:
    """The seller, as its documents name it (settings ORDERFLOW_SHOP_*, the support contacts)."""

    name: str
    legal_name: str
    address: str
    tax_id: str
    phone: str
    email: str
    returns_address: str  # where return parcels go
    timezone: str  # the documents' date where the customer's address says nothing

    @classmethod
    def of(cls, settings: Settings) -> Shop:
        return cls(
            name=settings.shop_name,
            legal_name=settings.shop_legal_name,
            address=settings.shop_address,
            tax_id=settings.shop_tax_id,
            phone=settings.support_phone,
            email=settings.support_email,
            returns_address=settings.returns_address or settings.shop_address,
            timezone=settings.default_timezone,
        )


@dataclass(frozen=True)
class Language:
    """A document's words, money and dates in the order's language (uk, ru, en)."""

    locale: str

    @property
    def words(self) -> dict[str, str]:
        return dict(_WORDS.words(self.locale).document)

    def money(self, amount: Decimal, currency: str) -> str:
        return format_money(amount, currency, BABEL_LOCALES[self.locale])

    def day(self, value: date) -> str:
        return format_date(value, "d MMMM y", locale=BABEL_LOCALES[self.locale])

    @classmethod
    def of(cls, contact: OrderContact) -> Language:
        return cls(contact.locale if contact.locale in LOCALES else "en")


def _pdf(size: tuple[float, float]) -> tuple[Canvas, io.BytesIO]:
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=size, invariant=True)  # invariant: same input, same bytes
    canvas.setFont(FONT, 10)
    return canvas, buffer


def _fit(text: str, width: float, size: float) -> str:
    """`text` cut (with an ellipsis) to fit `width` points in the documents' font."""
    if pdfmetrics.stringWidth(text, FONT, size) <= width:
        return text
    while text and pdfmetrics.stringWidth(f"{text}…", FONT, size) > width:
        text = text[:-1]
    return f"{text.rstrip()}…"


# The receipt's columns: the item from the left margin, the figures right-aligned at their
# right edges (so that amounts stand one under another, whatever their width).
_LEFT, _QTY, _PRICE, _AMOUNT = 20 * mm, 128 * mm, 158 * mm, 190 * mm
_ROW = 6 * mm


def _row(canvas: Canvas, y: float, item: str, *figures: str, size: float = 9) -> float:
    canvas.setFont(FONT, size)
    canvas.drawString(_LEFT, y, _fit(item, _QTY - _LEFT - 14 * mm, size))
    for right, figure in zip((_QTY, _PRICE, _AMOUNT)[-len(figures) :], figures, strict=True):
        canvas.drawRightString(right, y, figure)
    return y - _ROW


def receipt(
    order: Order,
    contact: OrderContact,
    lines: list[OrderLine],
    *,
    shop: Shop,
    issued: date,
) -> bytes:
    """The receipt in the order's language: the shop, the date, the customer, a table of the
    lines (an operator's price change as a line of its own), the total."""
    language = Language.of(contact)
    words, money = language.words, language.money
    canvas, buffer = _pdf(A4)
    _, height = A4
    y = height - 20 * mm
    canvas.setFont(FONT, 13)
    canvas.drawString(_LEFT, y, shop.name)
    canvas.setFont(FONT, 9)
    for text in (
        shop.legal_name,
        shop.address,
        f"{words['tax_id']}: {shop.tax_id}",
        f"{shop.phone} · {shop.email}",
    ):
        y -= 4.5 * mm
        canvas.drawString(_LEFT, y, text)
    y -= 12 * mm
    canvas.setFont(FONT, 16)
    canvas.drawString(_LEFT, y, words["receipt"].format(number=order.number))
    canvas.setFont(FONT, 10)
    y -= 8 * mm
    canvas.drawString(_LEFT, y, f"{words['date']}: {language.day(issued)}")
    if contact.name is not None:
        y -= 5.5 * mm
        canvas.drawString(_LEFT, y, f"{words['customer']}: {contact.name}")
    y -= 5.5 * mm
    method = _WORDS.words(language.locale).payment_method[order.payment_method]
    canvas.drawString(_LEFT, y, f"{words['payment']}: {method}")
    y -= 12 * mm
    y = _row(canvas, y, words["item"], words["qty"], words["price"], words["amount"], size=9)
    canvas.line(_LEFT, y + 4 * mm, _AMOUNT, y + 4 * mm)
    for line in lines:
        y = _row(
            canvas,
            y,
            f"{line.name} ({line.sku})",
            str(line.quantity),
            money(line.unit_price, order.currency),
            money(line.unit_price * line.quantity, order.currency),
        )
    adjustment = price_adjustment(
        order.total, ((line.unit_price, line.quantity) for line in lines), order.price_reason
    )
    if adjustment is not None:
        label = adjustment.label(_WORDS.words(language.locale))
        y = _row(canvas, y, label, money(adjustment.amount, order.currency))
    canvas.line(_LEFT, y + 4 * mm, _AMOUNT, y + 4 * mm)
    _row(canvas, y - 1 * mm, words["total"], money(order.total, order.currency), size=12)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def packing_list(order: Order, lines: list[OrderLine]) -> bytes:
    """For the warehouse's pickers (in English): a box to tick per line."""
    canvas, buffer = _pdf(A4)
    _, height = A4
    canvas.setFont(FONT, 16)
    canvas.drawString(_LEFT, height - 25 * mm, f"Packing list — order {order.number}")
    y = _row(canvas, height - 40 * mm, "     SKU / item", "Qty")
    for line in lines:
        y = _row(canvas, y, f"[  ]  {line.sku}  {line.name}", str(line.quantity))
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _label(heading: str, lines: list[str | None], tracking_number: str) -> bytes:
    """An A6 label: the carrier, the addresses, and the tracking number as a Code128 barcode."""
    canvas, buffer = _pdf(A6)
    width, height = A6
    canvas.setFont(FONT, 12)
    canvas.drawString(8 * mm, height - 12 * mm, heading)
    canvas.setFont(FONT, 10)
    y = height - 20 * mm
    for text in lines:
        if text:
            canvas.drawString(8 * mm, y, _fit(text, width - 16 * mm, 10))
            y -= 4.6 * mm
    barcode = Code128(tracking_number, barHeight=16 * mm, barWidth=0.35 * mm, quiet=True)
    barcode.drawOn(canvas, (width - barcode.width) / 2, 13 * mm)
    canvas.drawCentredString(width / 2, 7 * mm, tracking_number)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _destination(contact: OrderContact) -> list[str]:
    """Where the parcel goes, as the label prints it: the address, or the carrier's branch."""
    if contact.branch_ref is not None:
        return [f"{contact.branch_carrier} branch {contact.branch_number or contact.branch_ref}"]
    return contact.address_lines


def shipping_label(
    order: Order, contact: OrderContact, refs: OrderProviderRefs, *, shop: Shop, issued: date
) -> bytes:
    """From the shop to the customer, in the order's language, dated."""
    assert refs.tracking_number is not None
    language = Language.of(contact)
    words = language.words
    return _label(
        f"{refs.carrier} · {refs.service}",
        [
            f"{words['from']}: {shop.name}",
            shop.address,
            f"{words['to']}:",
            contact.name,
            *_destination(contact),
            contact.phone,
            f"{words['order'].format(number=order.number)} · {language.day(issued)}",
        ],
        refs.tracking_number,
    )


def return_label(ret: Return, contact: OrderContact, *, shop: Shop, issued: date) -> bytes:
    """From the customer back to the shop, in the order's language, dated: the return's
    number on it, for the warehouse."""
    assert ret.tracking_number is not None
    language = Language.of(contact)
    words = language.words
    return _label(
        f"{ret.carrier} · {words['return'].format(number=ret.number)}",
        [
            f"{words['from']}:",
            contact.name,
            *contact.address_lines,
            f"{words['to']}: {shop.name}",
            shop.returns_address,
            language.day(issued),
        ],
        ret.tracking_number,
    )


def _masked(contact: OrderContact) -> OrderContact:
    """The contact as a link holder sees it: the name as the status page shows it
    (`Iryna K.`); no street, postcode, phone or e-mail."""
    kept = contact.model_dump(exclude={"line1", "line2", "postal_code", "phone", "email"})
    if contact.name is not None:
        kept["name"] = mask_name(contact.name)
    return OrderContact(**kept)


async def for_link_holder(
    session: AsyncSession, order_id: uuid.UUID, kind: str, shop: Shop
) -> bytes | None:
    """The order's receipt or a return's label (`return_label_<n>`) as the customer's link
    serves it: rendered from the order again, its contact masked, dated as the stored one
    was made; None while the document has not been made (or was erased with its customer)."""
    made = (
        await session.exec(
            select(Document.created_at).where(Document.order_id == order_id, Document.kind == kind)
        )
    ).first()
    if made is None:
        return None
    order = await load_order(session, str(order_id))
    full = await load_contact(session, order)
    zone = ZoneInfo(timezone_of(full.country, shop.timezone))
    issued = made.astimezone(zone).date()
    contact = _masked(full)
    if kind == "receipt":
        lines = (
            await session.exec(
                select(OrderLine).where(OrderLine.order_id == order_id).order_by("position")
            )
        ).all()
        return receipt(order, contact, list(lines), shop=shop, issued=issued)
    ret = (
        await session.exec(
            select(Return).where(Return.order_id == order_id, Return.seq == _seq_of(kind))
        )
    ).one()
    return return_label(ret, contact, shop=shop, issued=issued)


def _seq_of(kind: str) -> int:
    if not kind.startswith("return_label_"):
        raise ValueError(f"a link holder gets no {kind}")
    return int(kind.removeprefix("return_label_"))


class DocumentActivities:
    def __init__(self, engine: AsyncEngine, shop: Shop, carrier: Carrier | None = None) -> None:
        self._engine = engine
        self._shop = shop
        self._carrier = carrier  # its own sticker, when it prints one (Nova Poshta's)

    @activity.defn
    async def generate_documents(self, input: OrderRef) -> DocumentsResult:
        """Render every document the order needs now and store it (again on a retry: the
        same, dated the day it is made); the carrier's own sticker beside our label, when it
        prints one."""
        lines = await order_lines(self._engine, input.order_id)
        async with open_session(self._engine) as session:
            order = await load_order(session, input.order_id)
            contact = await load_contact(session, order)
            refs = await session.get(OrderProviderRefs, uuid.UUID(input.order_id))
        issued = _today(contact, self._shop)
        documents = {
            "receipt": receipt(order, contact, lines, shop=self._shop, issued=issued),
            "packing_list": packing_list(order, lines),
        }
        # No label without an address to print: a pickup order's, or an erased one.
        if refs is not None and refs.tracking_number and _destination(contact):
            documents["label"] = shipping_label(
                order, contact, refs, shop=self._shop, issued=issued
            )
            if self._carrier is not None and refs.carrier_ref:
                sticker = await self._carrier.sticker(refs.tracking_number, refs.carrier_ref)
                if sticker is not None:
                    documents["carrier_label"] = sticker
        async with open_session(self._engine) as session:
            await _store(session, order.id, documents)
        return DocumentsResult(kinds=sorted(documents))

    @activity.defn
    async def generate_return_label(self, input: ReturnRef) -> DocumentsResult:
        """The return label (again on a retry); none without an address, nor when the
        carrier's branch makes out the return's waybill (Nova Poshta's return order)."""
        async with open_session(self._engine) as session:
            ret = await load_return(session, input.return_id)
            order = await load_order(session, str(ret.order_id))
            contact = await load_contact(session, order)
            if not contact.address_lines or not ret.needs_label:
                return DocumentsResult(kinds=[])
            label = return_label(ret, contact, shop=self._shop, issued=_today(contact, self._shop))
            await _store(session, order.id, {ret.label_kind: label})
        return DocumentsResult(kinds=[ret.label_kind])


def _today(contact: OrderContact, shop: Shop) -> date:
    """The date a document is made, in the customer's time zone."""
    return datetime.now(ZoneInfo(timezone_of(contact.country, shop.timezone))).date()


async def _store(session: AsyncSession, order_id: uuid.UUID, documents: dict[str, bytes]) -> None:
    """Keep the documents with the order (a retry replaces them with the same bytes)."""
    for kind, content in documents.items():
        await session.execute(
            insert(Document)
            .values(order_id=order_id, kind=kind, content=content)
            .on_conflict_do_update(index_elements=["order_id", "kind"], set_={"content": content})
        )
    await session.commit()
