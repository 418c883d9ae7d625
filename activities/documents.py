"""Documents for every order: receipt (invoice), packing list, and the shipping label whose
Code128 barcode carries the tracking number (seed 000); a customer's return gets a return
label the same way (`return_label_<n>`, from the customer to the shop). PDFs are stored with
the order.

They print the contacts the order was placed with. An erased customer's order gets a receipt
without a name and no label: nothing is printed from erased data."""

from __future__ import annotations

import io
import uuid
from decimal import Decimal
from pathlib import Path

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib.pagesizes import A4, A6
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities.carriers.base import Carrier
from activities.orders import load_contact, load_order, load_return, order_lines
from schema.contracts import DocumentsResult, OrderRef, ReturnRef
from schema.database import open_session
from schema.tables import Document, Order, OrderContact, OrderLine, OrderProviderRefs, Return

# Cyrillic names need a Unicode font; Debian's fonts-dejavu-core has one.
_DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
FONT = "Helvetica"
if _DEJAVU.exists():
    pdfmetrics.registerFont(TTFont("DejaVuSans", str(_DEJAVU)))
    FONT = "DejaVuSans"


def _pdf(size: tuple[float, float]) -> tuple[Canvas, io.BytesIO]:
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=size, invariant=True)  # invariant: same input, same bytes
    canvas.setFont(FONT, 10)
    return canvas, buffer


def _lines_table(canvas: Canvas, lines: list[OrderLine], y: float, with_prices: bool) -> float:
    canvas.setFont(FONT, 9)
    for line in lines:
        text = f"{line.sku:<12} {line.name[:40]:<40} x{line.quantity}"
        if with_prices:
            text += f"   {line.unit_price} = {line.unit_price * line.quantity}"
        else:
            text = "[  ]  " + text
        canvas.drawString(20 * mm, y, text)
        y -= 6 * mm
    return y


def receipt(order: Order, contact: OrderContact, lines: list[OrderLine]) -> bytes:
    canvas, buffer = _pdf(A4)
    _, height = A4
    canvas.setFont(FONT, 16)
    canvas.drawString(20 * mm, height - 25 * mm, f"Invoice / receipt — order {order.number}")
    canvas.setFont(FONT, 10)
    if contact.name is not None:
        canvas.drawString(20 * mm, height - 35 * mm, f"Customer: {contact.name}")
    canvas.drawString(
        20 * mm, height - 41 * mm, f"Payment: {order.payment_method}   Currency: {order.currency}"
    )
    y = _lines_table(canvas, lines, height - 55 * mm, with_prices=True)
    computed = sum((line.unit_price * line.quantity for line in lines), Decimal("0"))
    canvas.setFont(FONT, 12)
    canvas.drawString(20 * mm, y - 6 * mm, f"Total: {order.total} {order.currency}")
    if computed != order.total:
        canvas.setFont(FONT, 9)
        canvas.drawString(
            20 * mm, y - 12 * mm, f"(price set by the shop; lines add up to {computed})"
        )
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def packing_list(order: Order, lines: list[OrderLine]) -> bytes:
    canvas, buffer = _pdf(A4)
    _, height = A4
    canvas.setFont(FONT, 16)
    canvas.drawString(20 * mm, height - 25 * mm, f"Packing list — order {order.number}")
    _lines_table(canvas, lines, height - 40 * mm, with_prices=False)
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
    y = height - 22 * mm
    for text in lines:
        if text:
            canvas.drawString(8 * mm, y, text)
            y -= 5 * mm
    barcode = Code128(tracking_number, barHeight=18 * mm, barWidth=0.35 * mm, quiet=True)
    barcode.drawOn(canvas, (width - barcode.width) / 2, 14 * mm)
    canvas.drawCentredString(width / 2, 8 * mm, tracking_number)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _destination(contact: OrderContact) -> list[str]:
    """Where the parcel goes, as the label prints it: the address, or the carrier's branch."""
    if contact.branch_ref is not None:
        return [f"{contact.branch_carrier} branch {contact.branch_number or contact.branch_ref}"]
    return contact.address_lines


def shipping_label(order: Order, contact: OrderContact, refs: OrderProviderRefs) -> bytes:
    assert refs.tracking_number is not None
    return _label(
        f"{refs.carrier} · {refs.service}",
        [contact.name, *_destination(contact), contact.phone, f"Order {order.number}"],
        refs.tracking_number,
    )


def return_label(ret: Return, contact: OrderContact, returns_address: str) -> bytes:
    """From the customer back to the shop: the return's number on it, for the warehouse."""
    assert ret.tracking_number is not None
    return _label(
        f"{ret.carrier} · RETURN {ret.number}",
        ["From:", contact.name, *contact.address_lines, "To:", returns_address],
        ret.tracking_number,
    )


class DocumentActivities:
    def __init__(
        self, engine: AsyncEngine, returns_address: str = "", carrier: Carrier | None = None
    ) -> None:
        self._engine = engine
        self._returns_address = returns_address
        self._carrier = carrier  # its own sticker, when it prints one (Nova Poshta's)

    @activity.defn
    async def generate_documents(self, input: OrderRef) -> DocumentsResult:
        """Render every document the order needs now and store it (again, on a retry: same
        bytes); the carrier's own sticker beside our label, when it prints one."""
        lines = await order_lines(self._engine, input.order_id)
        async with open_session(self._engine) as session:
            order = await load_order(session, input.order_id)
            contact = await load_contact(session, order)
            refs = await session.get(OrderProviderRefs, uuid.UUID(input.order_id))
        documents = {
            "receipt": receipt(order, contact, lines),
            "packing_list": packing_list(order, lines),
        }
        # No label without an address to print: a pickup order's, or an erased one.
        if refs is not None and refs.tracking_number and _destination(contact):
            documents["label"] = shipping_label(order, contact, refs)
            if self._carrier is not None and refs.carrier_ref:
                sticker = await self._carrier.sticker(refs.tracking_number, refs.carrier_ref)
                if sticker is not None:
                    documents["carrier_label"] = sticker
        async with open_session(self._engine) as session:
            await _store(session, order.id, documents)
        return DocumentsResult(kinds=sorted(documents))

    @activity.defn
    async def generate_return_label(self, input: ReturnRef) -> DocumentsResult:
        """The return label (again, on a retry: same bytes); none without an address."""
        async with open_session(self._engine) as session:
            ret = await load_return(session, input.return_id)
            order = await load_order(session, str(ret.order_id))
            contact = await load_contact(session, order)
            if not contact.address_lines:
                return DocumentsResult(kinds=[])
            label = return_label(ret, contact, self._returns_address)
            await _store(session, order.id, {ret.label_kind: label})
        return DocumentsResult(kinds=[ret.label_kind])


async def _store(session: AsyncSession, order_id: uuid.UUID, documents: dict[str, bytes]) -> None:
    """Keep the documents with the order (a retry replaces them with the same bytes)."""
    for kind, content in documents.items():
        await session.execute(
            insert(Document)
            .values(order_id=order_id, kind=kind, content=content)
            .on_conflict_do_update(index_elements=["order_id", "kind"], set_={"content": content})
        )
    await session.commit()
