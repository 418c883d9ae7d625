"""The customer's return request, and the operator's returns and refunds in the console, in a
real browser (Debian's Chromium driven by Playwright). Screenshots go to
.artifacts/screenshots/ (return-request, return-requested, console-returns)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from playwright.async_api import Browser, expect

from schema.api.fields import Role
from schema.database import open_session
from schema.links import LinkPurpose
from schema.tables import Return
from tests import test_console
from tests.lifecycle import Journey
from tests.stack import Stack
from tests.support import eventually
from tests.test_console import _shot, _sign_in

browser = test_console.browser  # the same Chromium fixture

TEA_AND_MUGS = [
    {"sku": "MUG-01", "name": "Mug", "quantity": 2, "unit_price": "250.00"},
    {"sku": "TEA-01", "name": "Green tea 100 g", "quantity": 3, "unit_price": "60.00"},
]


async def test_the_customer_asks_for_a_return_from_the_status_link(
    dev_stack: Stack, browser: Browser
) -> None:
    order = await Journey.place(dev_stack, lines=TEA_AND_MUGS)
    await order.to_delivery()
    token = order.link(LinkPurpose.STATUS)
    page = await browser.new_page(viewport={"width": 420, "height": 900})  # a phone
    await page.goto(f"{str(dev_stack.api.base_url).rstrip('/')}/order/{token}/return")
    await expect(page.get_by_role("heading", name="Return items of order")).to_be_visible()

    await page.get_by_label("Mug: how many").fill("1")
    await page.get_by_label("Why are you returning them?").select_option(label="Wrong size")
    await page.get_by_label("The same items again (an exchange)").check()
    await page.get_by_label("Anything to add? (optional)").fill("A bigger one, please")
    await _shot(page, "return-request")
    await page.get_by_role("button", name="Ask for a return").click()

    await expect(page.get_by_role("heading", name="Return")).to_contain_text("-R1")
    await expect(page.locator("#return-status")).to_contain_text("Approved")
    await expect(page.get_by_role("link", name="Print the return label")).to_be_visible()
    await _shot(page, "return-requested")
    async with open_session(dev_stack.engine) as session:
        [stored] = await session.run_sync(
            lambda s: list(
                s.query(Return).filter(Return.order_id == uuid.UUID(order.order_id)).all()
            )
        )
    assert (stored.reason, stored.resolution, stored.comment) == (
        "wrong_size",
        "exchange",
        "A bigger one, please",  # in Postgres, never in Temporal
    )
    assert stored.requested_by == "customer"

    # Back on the form: one mug is already on its way back, the rest may still go.
    await page.get_by_role("link", name="Back to your returns").click()
    await expect(page.locator("#returns")).to_contain_text("-R1")
    await expect(page.get_by_label("Mug: how many")).to_have_attribute("max", "1")
    # A form left open while another return took the mug: the server says what is left.
    stale = await browser.new_page()
    await stale.goto(page.url)
    await page.get_by_label("Mug: how many").fill("1")
    await page.get_by_label("Why are you returning them?").select_option(label="I changed my mind")
    await page.get_by_role("button", name="Ask for a return").click()
    await expect(page.locator("#return-status")).to_be_visible()
    await stale.get_by_label("Mug: how many").fill("1")
    await stale.get_by_label("Why are you returning them?").select_option(label="Another reason")
    await stale.get_by_role("button", name="Ask for a return").click()
    await expect(stale.locator("#refused")).to_have_text(
        "0 of Mug can be returned (2 ordered, the rest in other returns)."
    )
    await stale.close()
    await page.close()


async def test_a_link_for_something_else_opens_no_return_page(
    dev_stack: Stack, browser: Browser
) -> None:
    order = await Journey.place(dev_stack)
    page = await browser.new_page()
    feedback_link = order.link(LinkPurpose.FEEDBACK)
    response = await page.goto(
        f"{str(dev_stack.api.base_url).rstrip('/')}/order/{feedback_link}/return"
    )
    assert response is not None and response.status == 404
    await expect(page.get_by_text("not valid")).to_be_visible()
    await page.close()


async def test_an_operator_opens_a_return_approves_one_and_refunds_in_the_console(
    dev_stack: Stack, browser: Browser
) -> None:
    order = await Journey.place(dev_stack, lines=TEA_AND_MUGS)
    await order.to_delivery()
    page = await _sign_in(browser, dev_stack, Role.OPERATOR)
    await page.goto(f"{str(dev_stack.api.base_url).rstrip('/')}/console/orders/{order.order_id}")

    form = page.locator("#return-form")
    await form.get_by_label("Green tea 100 g ×").fill("2")
    await form.get_by_label("Reason").select_option("not_as_described")
    await form.get_by_role("button", name="Open the return").click()
    await expect(page.get_by_role("status")).to_contain_text("-R1: approved")
    await expect(page.locator("#returns")).to_contain_text("Green tea 100 g × 2")

    refund = page.locator("#refund-form")
    await refund.get_by_label("Amount").fill("40.00")
    await refund.get_by_label("Reason (the customer reads it)").select_option("goodwill")
    await refund.get_by_role("button", name="Refund").click()
    await expect(page.get_by_role("status")).to_contain_text("Refund of 40.00: refunded")
    await expect(page.locator("#ledger")).to_contain_text("refunded 40.00 · left 640.00")

    await page.locator("#refund-form").get_by_label("Amount").fill("641.00")
    await page.locator("#refund-form").get_by_role("button", name="Refund").click()
    await expect(page.get_by_role("alert")).to_contain_text("exceeds what is left to refund")
    await _shot(page, "console-returns")

    async def told() -> list[str] | None:
        sent = await order.sent()
        return sent if "refund_made" in sent else None

    assert "refund_made" in await eventually(told, what="the refund told")
    ledger = (await dev_stack.api.get(f"/v1/orders/{order.order_id}/refunds")).json()
    assert Decimal(ledger["refunded"]) == Decimal("40.00")
    await page.close()
