"""The customer's status page and its JSON twin, over HTTP without credentials, opened from the
link in the customer's real e-mail: what it shows, in which language, what it counts, what
the customer may do there, and what a link that is not ours shows (nothing)."""

from __future__ import annotations

import asyncio
import html
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, update
from sqlmodel import col, select

from schema.database import open_session
from schema.links import LinkPurpose
from schema.tables import OrderNote, StatusPageVisit
from starter.api.limits import limiter
from tests.lifecycle import Journey
from tests.stack import Stack
from tests.support import body_text, eventually, mail_to, sample_order


@pytest.fixture
async def anonymous(dev_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=dev_stack.api.base_url, headers={"Origin": dev_stack.settings.public_url}
    ) as client:
        yield client


async def _visits(stack: Stack, order_id: str) -> list[str]:
    async with open_session(stack.engine) as session:
        rows = await session.exec(
            select(StatusPageVisit.source)
            .where(StatusPageVisit.order_id == uuid.UUID(order_id))
            .order_by(col(StatusPageVisit.id))
        )
        return list(rows.all())


def _text(page: str) -> str:
    """What a reader sees: the body's text, one space between words."""
    body = page[page.index("<body>") :]
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def _tampered(token: str, at: int) -> str:
    return token[:at] + ("B" if token[at] != "B" else "C") + token[at + 1 :]


async def test_the_confirmation_links_a_status_page_that_opens_without_credentials(
    dev_stack: Stack, anonymous: httpx.AsyncClient
) -> None:
    order = await Journey.place(
        dev_stack,
        payment={"method": "cod"},
        lines=[
            {"sku": "MUG-01", "name": "Чашка «Ранок»", "quantity": 2, "unit_price": "250.00"},
            {"sku": "TEA-02", "name": "Чай трав'яний", "quantity": 1, "unit_price": "120.00"},
        ],
    )
    await order.waiting_for("packing")
    token = await order.link_from_mail("m")  # the confirmation's status link, as clicked
    mail = body_text(mail_to(dev_stack.maildir, order.body["customer"]["email"])[0], "plain")
    assert f"/order/{token}/m" in mail and "Статус замовлення" in mail

    page = await anonymous.get(f"/order/{token}/m")
    assert page.status_code == 200
    text = _text(page.text)
    assert f"Замовлення {order.body['number']}" in text
    assert "Чашка «Ранок»" in text and "Чай трав'яний" in text
    assert "620,00" in text  # the total, written the Ukrainian way
    assert 'id="status">Комплектується<' in page.text  # the warehouse is picking it
    assert "склад комплектує посилку" in text  # what it waits for now
    assert "Оплата при отриманні" in text
    assert "support@orderflow.localhost" in text
    # Masked: no full e-mail, phone or street on a page anyone with the link can open.
    customer = order.body["customer"]
    assert customer["email"] not in page.text and customer["phone"] not in page.text
    assert "Iryna K." in text and "Khreshchatyk" not in page.text
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["x-frame-options"] == "DENY"
    # The marker from the message is dropped after counting.
    assert f'history.replaceState(null, "", "/order/{token}")' in page.text

    english = await anonymous.get(f"/order/{token}", params={"lang": "en"})
    assert (
        'id="status">Picking<' in english.text and f"Order {order.body['number']}" in english.text
    )
    twin = await anonymous.get(f"/v1/customer/orders/{token}")
    assert twin.status_code == 200
    view = twin.json()
    assert view["number"] == order.body["number"] and view["status"] == "picking"
    assert view["waiting_for"] == "packing" and view["locale"] == "uk"
    assert view["contact"]["email"].startswith("ir***@")
    assert [line["sku"] for line in view["lines"]] == ["MUG-01", "TEA-02"]
    assert [s["state"] for s in view["steps"]][:4] == ["done", "done", "current", "upcoming"]
    # Each view is counted: the click from the message, then the page, then the JSON twin.
    assert await _visits(dev_stack, order.order_id) == ["link", "page", "json"]

    # The same link with any one character changed shows nothing of the order.
    for at in (0, len(token) // 2, len(token) - 1):
        refused = await anonymous.get(f"/order/{_tampered(token, at)}/m")
        assert refused.status_code == 404, at
        assert order.body["number"] not in refused.text and "Чашка" not in refused.text
        assert (
            await anonymous.get(f"/v1/customer/orders/{_tampered(token, at)}")
        ).status_code == 404
    # Another purpose's link opens no status page.
    feedback = order.link(LinkPurpose.FEEDBACK)
    assert (await anonymous.get(f"/order/{feedback}")).status_code == 404
    assert await _visits(dev_stack, order.order_id) == ["link", "page", "json"]


async def test_the_page_shows_payment_tracking_receipt_history_and_feedback(
    dev_stack: Stack, anonymous: httpx.AsyncClient
) -> None:
    order = await Journey.place(dev_stack)
    await order.waiting_for("payment")
    token = order.link(LinkPurpose.STATUS)
    due = (await anonymous.get(f"/v1/customer/orders/{token}", params={"lang": "en"})).json()
    refs = await order.refs()
    assert due["actions"]["pay"] is True and due["payment"]["url"] == refs.payment_url
    assert due["payment"]["status"] == "awaiting_payment" and due["actions"]["cancel"] is True
    assert due["actions"]["return_items"] is False and due["actions"]["return_until"] is None
    page = await anonymous.get(f"/order/{token}", params={"lang": "en"})
    assert f'href="{refs.payment_url}"' in page.text and "Pay UAH 500.00" in _text(page.text)

    await order.to_delivery()
    done = (await anonymous.get(f"/v1/customer/orders/{token}", params={"lang": "en"})).json()
    refs = await order.refs()
    assert done["status"] == "delivered" and done["payment"] == {"status": "paid", "url": None}
    assert done["tracking"]["tracking_number"] == refs.tracking_number
    assert done["tracking"]["tracking_url"] == refs.tracking_url
    assert done["actions"] == {**done["actions"], "pay": False, "cancel": False, "feedback": True}
    history = [step["event"] for step in done["history"]]
    assert history == [
        "order.received",
        "order.confirmed",
        "payment.succeeded",
        "order.packed",
        "order.shipped",
        "carrier.InTransit",
        "carrier.OutForDelivery",
        "order.delivered",
    ]
    assert all(step["state"] != "upcoming" for step in done["steps"])
    receipt = await anonymous.get(
        done["receipt_url"].removeprefix(str(dev_stack.settings.public_url))
    )
    assert receipt.status_code == 200 and receipt.content.startswith(b"%PDF")
    page = _text((await anonymous.get(f"/order/{token}", params={"lang": "ru"})).text)
    assert refs.tracking_number in page and "Доставлен" in page and "Оценить заказ" in page
    # Delivered: items may go back for the policy's window, from the page's own link.
    delivered = next(step["at"] for step in done["history"] if step["event"] == "order.delivered")
    window = dev_stack.settings.policy_return_window
    assert done["actions"]["return_items"] is True
    assert datetime.fromisoformat(done["actions"]["return_until"]) == (
        datetime.fromisoformat(delivered) + window
    )
    uk_page = (await anonymous.get(f"/order/{token}", params={"lang": "uk"})).text
    assert f'href="/order/{token}/return?lang=uk"' in uk_page and "Повернути товари" in uk_page
    form = await anonymous.get(f"/order/{token}/return", params={"lang": "uk"})
    assert form.status_code == 200 and 'name="quantity"' in form.text


async def test_the_customer_chooses_about_missing_stock_from_the_status_page(
    dev_stack: Stack, anonymous: httpx.AsyncClient
) -> None:
    order = await Journey.place(
        dev_stack,
        lines=[{"sku": "GONE-04", "name": "Sold out", "quantity": 1, "unit_price": "10.00"}],
    )
    await order.waiting_for("stock_decision")
    token = order.link(LinkPurpose.STATUS)
    view = (await anonymous.get(f"/v1/customer/orders/{token}")).json()
    assert view["actions"]["stock_choices"] == ["ship_available", "backorder", "cancel"]
    page = await anonymous.get(f"/order/{token}", params={"lang": "en"})
    assert 'value="backorder"' in page.text and "Wait for the supplier" in page.text
    chosen = await anonymous.post(
        f"/order/{token}/stock-choice", data={"choice": "backorder"}, params={"lang": "en"}
    )
    assert chosen.status_code == 200 and "Thank you!" in chosen.text
    await order.waiting_for("backorder_arrival")
    again = await anonymous.post(f"/order/{token}/stock-choice", data={"choice": "cancel"})
    assert again.status_code == 409 and "замовлення пішло далі" in again.text


async def test_the_customer_cancels_before_handover_with_a_reason_and_not_after(
    dev_stack: Stack, anonymous: httpx.AsyncClient
) -> None:
    order = await Journey.place(dev_stack)
    await order.until_paid()
    await order.waiting_for("packing")
    token = order.link(LinkPurpose.STATUS)
    foreign = await anonymous.post(
        f"/order/{token}/cancel",
        data={"reason": "changed_mind"},
        headers={"Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    assert (await order.status()).stage != "cancelled"  # a cross-site form changes nothing
    unknown = await anonymous.post(f"/order/{token}/cancel", data={"reason": "because"})
    assert unknown.status_code == 422

    cancelled = await anonymous.post(
        f"/v1/customer/orders/{token}/cancel", json={"reason": "found_cheaper"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    view = (await anonymous.get(f"/v1/customer/orders/{token}", params={"lang": "en"})).json()
    assert view["cancellation"]["reason"] == "customer_request"
    assert view["cancellation"]["refund"] == "500.00"
    assert view["actions"]["cancel"] is False and view["waiting_for"] is None
    status = await order.status()
    assert status.timeline[-1].actor == "customer"
    async with open_session(dev_stack.engine) as session:
        notes = await session.exec(
            select(OrderNote).where(OrderNote.order_id == uuid.UUID(order.order_id))
        )
        kept = [(n.author, n.action, n.text) for n in notes.all()]
    assert kept == [("customer", "cancel", "found_cheaper")]  # the reason, as a code

    shipped = await Journey.place(dev_stack, payment={"method": "cod"})
    await shipped.waiting_for("packing")
    await shipped.pack()
    await shipped.waiting_for("carrier")
    late = shipped.link(LinkPurpose.STATUS)
    assert (await anonymous.get(f"/v1/customer/orders/{late}")).json()["actions"]["cancel"] is False
    refused = await anonymous.post(
        f"/order/{late}/cancel", data={"reason": "changed_mind"}, params={"lang": "en"}
    )
    assert refused.status_code == 409 and "no longer possible" in refused.text
    too_late = await anonymous.post(
        f"/v1/customer/orders/{late}/cancel", json={"reason": "changed_mind"}
    )
    assert too_late.status_code == 409 and "carrier" in too_late.json()["detail"]


async def test_my_orders_by_e_mail_link_lists_every_order_of_the_address(
    dev_stack: Stack, anonymous: httpx.AsyncClient
) -> None:
    limiter.reset()  # the per-client limit of this process, shared by every test's requests
    email = f"maria.{uuid.uuid4().hex[:8]}@example.com"
    first = await Journey.place(
        dev_stack, customer={**sample_order()["customer"], "email": email, "locale": "en"}
    )
    second = await Journey.place(
        dev_stack,
        payment={"method": "cod"},
        customer={**sample_order()["customer"], "email": email, "locale": "en"},
    )
    await first.reached("order.confirmed")
    unknown = await anonymous.post("/v1/customer-links", json={"email": "nobody.1@example.com"})
    known = await anonymous.post("/v1/customer-links", json={"email": email.upper()})
    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json()  # nothing tells who is a customer

    async def link() -> str | None:
        for message in mail_to(dev_stack.maildir, email):
            found = re.search(r"/my-orders/([A-Za-z0-9_.-]+)", body_text(message, "plain"))
            if found:
                return found.group(1)
        return None

    token = await eventually(link, 20, what="the my-orders e-mail")
    assert mail_to(dev_stack.maildir, "nobody.1@example.com") == []
    page = await anonymous.get(f"/my-orders/{token}")
    assert page.status_code == 200
    text = _text(page.text)
    assert first.body["number"] in text and second.body["number"] in text
    assert email not in page.text and "ma***@example.com" in text
    statuses = re.findall(r'href="(/order/[^"?]+)', page.text)
    assert len(statuses) == 2
    opened = await anonymous.get(statuses[0])
    assert opened.status_code == 200 and second.body["number"] in opened.text  # newest first
    assert (await anonymous.get(f"/my-orders/{_tampered(token, 5)}")).status_code == 404

    codes = [
        (await anonymous.post("/v1/customer-links", json={"email": "x.1@example.com"})).status_code
        for _ in range(10)
    ]
    assert codes[-1] == 429 and set(codes) == {202, 429}
    limiter.reset()


async def test_every_public_page_of_an_order_is_rate_limited_like_the_status_page(
    anonymous: httpx.AsyncClient, dev_stack: Stack
) -> None:
    """Per client and path, as many views a minute as the status page allows, then 429."""
    limiter.reset()
    order = await Journey.place(dev_stack, payment={"method": "cod"})
    token = order.link(LinkPurpose.STATUS)
    allowed = int(dev_stack.settings.status_page_rate_limit.split("/")[0])
    for path in (
        f"/order/{token}/return",
        f"/order/{token}/feedback",
        f"/order/{token}/receipt.pdf",
        f"/v1/customer/orders/{token}/returns",
    ):
        codes = [(await anonymous.get(path)).status_code for _ in range(allowed + 1)]
        assert 429 not in codes[:allowed] and codes[-1] == 429, (path, set(codes))
    limiter.reset()


async def test_the_status_page_limit_counts_per_order_whatever_the_link(
    anonymous: httpx.AsyncClient, dev_stack: Stack
) -> None:
    """Each message carries a link of its own: views through any of an order's links share
    the order's count (ORDERFLOW_STATUS_PAGE_RATE_LIMIT, per client and order)."""
    limiter.reset()
    order = await Journey.place(dev_stack, payment={"method": "cod"})
    links = dev_stack.settings.customer_links()
    signer = links._signer(LinkPurpose.STATUS)
    tokens = []
    for age in (0, 60, 3600):  # as messages sent at other moments carry them
        signer.get_timestamp = lambda age=age: int(time.time()) - age  # type: ignore[method-assign]
        tokens.append(
            signer.sign(
                links.token(LinkPurpose.STATUS, uuid.UUID(order.order_id)).split(".")[0]
            ).decode()
        )
    assert len(set(tokens)) == 3
    allowed = int(dev_stack.settings.status_page_rate_limit.split("/")[0])
    codes = [
        (await anonymous.get(f"/order/{tokens[n % 3]}")).status_code for n in range(allowed + 1)
    ]
    assert 429 not in codes[:allowed] and codes[-1] == 429, set(codes)
    limiter.reset()


async def test_bad_input_to_the_customer_endpoints_is_a_clear_4xx(
    anonymous: httpx.AsyncClient, dev_stack: Stack
) -> None:
    limiter.reset()
    order = await Journey.place(dev_stack, payment={"method": "cod"})
    token = order.link(LinkPurpose.STATUS)
    cases: list[tuple[str, str, Any, int, str]] = [
        ("post", "/v1/customer-links", {"email": "not an address"}, 422, "email"),
        ("post", "/v1/customer-links", {"email": "a@example.com", "locale": "de"}, 422, "locale"),
        ("post", f"/v1/customer/orders/{token}/cancel", {"reason": "bored"}, 422, "reason"),
        ("post", f"/v1/customer/orders/{token}/feedback", {"rating": 9}, 422, "rating"),
        (
            "post",
            f"/v1/customer/orders/{token}/feedback",
            {"rating": 5, "line_ratings": [{"sku": "NOPE", "rating": 5}]},
            422,
            "line_ratings.0.sku",
        ),
    ]
    for method, url, body, status, field in cases:
        answer = await getattr(anonymous, method)(url, json=body)
        assert answer.status_code == status, (url, answer.text)
        assert field in [e["field"] for e in answer.json()["errors"]], answer.text
    wrong_lang = await anonymous.get(f"/v1/customer/orders/{token}", params={"lang": "de"})
    assert wrong_lang.status_code == 422
    # The HTML form: digits that are no number ("²" is one to str.isdigit) are refused alike.
    for field in ("rating", "nps"):
        page = await anonymous.post(f"/order/{token}/feedback", data={"rating": "5", field: "²"})
        assert page.status_code == 422, page.text
    limiter.reset()


async def test_a_message_link_counts_as_a_click_once_an_hour(
    dev_stack: Stack, anonymous: httpx.AsyncClient
) -> None:
    """A mail scanner's GET and the person's click, or a second tap on the same link, are one
    click: the link opened again within the hour is a page view. Another message's link (a
    link of its own) is a click of its own."""
    order = await Journey.place(dev_stack, payment={"method": "cod"})
    await order.waiting_for("packing")
    token = await order.link_from_mail("m")
    for _ in range(3):
        assert (await anonymous.get(f"/order/{token}/m")).status_code == 200
    assert await _visits(dev_stack, order.order_id) == ["link", "page", "page"]

    links = dev_stack.settings.customer_links()
    other = token
    while other == token:  # signed a second later: another message's link
        await asyncio.sleep(0.2)
        other = links.token(LinkPurpose.STATUS, uuid.UUID(order.order_id))
    assert (await anonymous.get(f"/order/{other}/m")).status_code == 200
    assert await _visits(dev_stack, order.order_id) == ["link", "page", "page", "link"]

    async with open_session(dev_stack.engine) as session:  # an hour later, it counts again
        await session.execute(
            update(StatusPageVisit)
            .where(col(StatusPageVisit.order_id) == uuid.UUID(order.order_id))
            .values(at=func.now() - timedelta(hours=1, minutes=1))
        )
        await session.commit()
    assert (await anonymous.get(f"/order/{token}/m")).status_code == 200
    assert (await _visits(dev_stack, order.order_id))[-1] == "link"
