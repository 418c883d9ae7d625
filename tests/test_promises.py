"""What the confirmation promises and charges, as the customer reads it: the date by delivery
method and speed (a pickup order is ready, never "delivered"; an express courier order has its
own rule), payment on receipt for cash on delivery, and an operator's final price as a
discount or surcharge line — in the e-mail, on the status page and its JSON twin, and on the
receipt. The time-skipping stack: real activities, Postgres, SMTP and simulators."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from schema.contracts import DeliveryMethod
from schema.links import LinkPurpose
from settings import Settings
from tests.lifecycle import Journey
from tests.stack import Stack
from tests.support import body_text, mail_to

KYIV = ZoneInfo("Europe/Kyiv")


@pytest.fixture
def stack(ts_stack: Stack) -> Stack:
    return ts_stack


def _confirmation(order: Journey) -> str:
    [mail] = [
        m
        for m in mail_to(order.stack.maildir, order.body["customer"]["email"])
        if "підтверджено" in str(m["Subject"])
    ]
    return body_text(mail, "plain")


async def _page(order: Journey) -> tuple[str, dict[str, object]]:
    token = order.link(LinkPurpose.STATUS)
    async with httpx.AsyncClient(base_url=order.stack.api.base_url) as customer:
        page = await customer.get(f"/order/{token}")
        twin = await customer.get(f"/v1/customer/orders/{token}")
    assert page.status_code == twin.status_code == 200, page.text
    return page.text, twin.json()


@pytest.mark.parametrize(
    ("confirmed", "expected"),
    [
        (datetime(2026, 12, 7, 9, 30, tzinfo=KYIV), date(2026, 12, 7)),  # before 14:00: today
        (datetime(2026, 12, 7, 13, 59, tzinfo=KYIV), date(2026, 12, 7)),
        (datetime(2026, 12, 7, 14, 0, tzinfo=KYIV), date(2026, 12, 8)),  # after: tomorrow
        (datetime(2026, 12, 7, 23, 30, tzinfo=KYIV), date(2026, 12, 8)),  # 21:30 UTC: Kyiv's day
    ],
)
def test_an_express_courier_order_is_promised_by_its_own_rule(
    confirmed: datetime, expected: date
) -> None:
    from workflows.timing import promised_date  # here: on older code a failure, not an error

    policy = Settings(devstack=True).order_policy()
    at = confirmed.astimezone(UTC)
    assert promised_date(at, "Europe/Kyiv", policy, DeliveryMethod.COURIER, "express") == expected
    standard = promised_date(at, "Europe/Kyiv", policy, DeliveryMethod.COURIER, "standard")
    assert standard == (at + timedelta(days=2)).date()  # the courier's two days, as before
    # Post has no faster service: express changes nothing there.
    post = promised_date(at, "Europe/Kyiv", policy, DeliveryMethod.POST, "express")
    assert post == (at + timedelta(days=5)).date()


async def test_an_express_order_is_confirmed_with_the_express_date(stack: Stack) -> None:
    order = await Journey.place(
        stack,
        delivery={
            "method": "courier",
            "speed": "express",
            "address": {
                "country": "UA",
                "city": "Kyiv",
                "line1": "Khreshchatyk 1",
                "postal_code": "01001",
            },
        },
    )
    status = await order.reached("order.confirmed")
    confirmed_at = next(e.at for e in status.timeline if e.type == "order.confirmed")
    local = confirmed_at.astimezone(KYIV)
    policy = stack.settings.order_policy()
    days = policy.express_delivery_days + (local.hour >= policy.express_cutoff_hour)
    assert status.expected_date == (local + timedelta(days=days)).date()
    assert status.expected_date != (confirmed_at + timedelta(days=2)).date()  # not standard's


async def test_a_pickup_order_paid_on_receipt_is_promised_ready_and_told_it_pays_there(
    stack: Stack,
) -> None:
    order = await Journey.place(
        stack, delivery={"method": "pickup", "pickup_point": "KYIV-01"}, payment={"method": "cod"}
    )
    await order.reached("order.confirmed")
    text = _confirmation(order)
    assert "Буде готове до видачі:" in text and "дата доставки" not in text, text
    assert "Оплата під час отримання: ви платите, коли забираєте замовлення." in text, text

    page, twin = await _page(order)
    assert twin["expected_text"] == "Буде готове до видачі" and twin["expected_date"]
    assert "Буде готове до видачі:" in page and "Очікувана доставка" not in page


async def test_a_final_price_is_shown_as_a_discount_line_everywhere(
    stack: Stack, tmp_path: Path
) -> None:
    order = await Journey.place(
        stack,
        note="Please deliver after 18:00",
        payment={"method": "cod"},
        customer={
            "name": "Iryna Koval",
            "email": f"iryna.discount.{tmp_path.name[-6:]}@example.com",
            "phone": "+380501234567",
            "locale": "ru",
        },
    )
    await order.waiting_for("operator_confirmation")
    confirmed = await order.act(
        "confirm", final_price="450.00", price_reason="agreed_by_phone", note="rang her"
    )
    assert confirmed.status_code == 200, confirmed.text

    await order.reached("order.confirmed")
    [mail] = [
        m
        for m in mail_to(stack.maildir, order.body["customer"]["email"])
        if "подтверждён" in str(m["Subject"])
    ]
    text = body_text(mail, "plain")
    assert "- Скидка (согласовано по телефону): -50,00\xa0₴" in text, text
    assert "Итого: 450,00\xa0₴" in text and "rang her" not in text

    page, twin = await _page(order)
    assert twin["adjustment"] == {
        "kind": "discount",
        "amount": "-50.00",
        "reason": "agreed_by_phone",
        "text": "Скидка (согласовано по телефону)",
    }
    assert twin["total"] == "450.00"
    assert 'id="adjustment"' in page and "Скидка (согласовано по телефону)" in page

    await order.waiting_for("packing")
    await order.pack()
    await order.reached("documents.ready")
    receipt = await stack.api.get(f"/v1/orders/{order.order_id}/documents/receipt.pdf")
    assert receipt.status_code == 200
    (tmp_path / "receipt.pdf").write_bytes(receipt.content)
    read = (
        await asyncio.to_thread(
            subprocess.run,
            ["pdftotext", "-layout", str(tmp_path / "receipt.pdf"), "-"],
            capture_output=True,
            text=True,
            check=True,
        )
    ).stdout.replace("\xa0", " ")
    assert "Скидка (согласовано по телефону)" in read and "-50,00 ₴" in read, read
    assert "Квитанция к заказу" in read and "450,00 ₴" in read, read


async def test_a_price_reason_needs_a_final_price(stack: Stack) -> None:
    order = await Journey.place(stack, note="call first")
    await order.waiting_for("operator_confirmation")
    refused = await order.act("confirm", price_reason="wholesale")
    assert refused.status_code == 422, refused.text
    assert "final_price" in refused.text
