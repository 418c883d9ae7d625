"""The customer's status page in a real browser (Debian's Chromium driven by Playwright), at a
phone's size, as a customer opens it from the link in their e-mail; and the console's page
of the shop's event deliveries. Screenshots go to .artifacts/screenshots/."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Browser, Page, expect

from schema.api.fields import Role
from schema.links import LinkPurpose
from tests import test_console
from tests.lifecycle import Journey
from tests.stack import Stack
from tests.support import eventually
from tests.test_console import _shot, _sign_in

browser = test_console.browser  # the same Chromium fixture

PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


async def _phone(browser: Browser) -> Page:
    context = await browser.new_context(**PHONE)
    return await context.new_page()


async def _fits_the_screen(page: Page) -> None:
    """Nothing wider than the phone: no sideways scrolling."""
    wide = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"{wide} px wider than the screen"


async def test_the_status_page_on_a_phone_in_ukrainian_and_english(
    dev_stack: Stack, browser: Browser
) -> None:
    order = await Journey.place(
        dev_stack,
        lines=[
            {"sku": "MUG-01", "name": "Чашка «Ранок»", "quantity": 2, "unit_price": "250.00"},
            {"sku": "TEA-02", "name": "Чай чорний, 100 г", "quantity": 1, "unit_price": "120.00"},
        ],
    )
    await order.to_delivery()
    token = await order.link_from_mail("m")
    base = str(dev_stack.api.base_url).rstrip("/")
    page = await _phone(browser)
    await page.goto(f"{base}/order/{token}/m")

    number = order.body["number"]
    await expect(page.get_by_role("heading", name=f"Замовлення {number}")).to_be_visible()
    await expect(page.locator("#status")).to_have_text("Доставлено")
    await expect(page.locator("ol.steps li")).to_have_count(7)
    await expect(page.locator("ol.steps li[aria-current=step]")).to_have_text("Доставлено")
    await expect(page.locator("#total")).to_have_text("620,00\xa0₴")
    await expect(page.locator("#tracking-number")).to_have_text(
        (await order.refs()).tracking_number or ""
    )
    await expect(page.get_by_role("link", name="Оцінити замовлення")).to_be_visible()
    await expect(page.get_by_role("link", name="Чек (PDF)")).to_be_visible()
    assert page.url == f"{base}/order/{token}"  # the message's marker is gone once counted
    await _fits_the_screen(page)
    await _shot(page, "status-page-phone-uk")

    await page.get_by_role("link", name="EN").click()
    await expect(page.get_by_role("heading", name=f"Order {number}")).to_be_visible()
    assert page.url == f"{base}/order/{token}?lang=en"  # a view of the page, not another click
    await expect(page.locator("#status")).to_have_text("Delivered")
    await expect(page.get_by_role("heading", name="History")).to_be_visible()
    await expect(page.locator("ul.history li").first).to_contain_text("Delivered")
    await _fits_the_screen(page)
    await _shot(page, "status-page-phone-en")
    await page.context.close()


async def test_a_link_with_one_character_changed_shows_nothing(
    dev_stack: Stack, browser: Browser
) -> None:
    order = await Journey.place(dev_stack, payment={"method": "cod"})
    await order.reached("order.confirmed")
    token = order.link(LinkPurpose.STATUS)
    tampered = token[:10] + ("x" if token[10] != "x" else "y") + token[11:]
    page = await _phone(browser)
    answer = await page.goto(f"{str(dev_stack.api.base_url).rstrip('/')}/order/{tampered}/m")
    assert answer is not None and answer.status == 404
    await expect(page.get_by_role("heading", name="This link is not valid")).to_be_visible()
    await expect(page.locator("body")).not_to_contain_text(order.body["number"])
    await _shot(page, "status-page-tampered-link")
    await page.context.close()


async def test_the_customer_cancels_before_handover_and_sees_the_refund(
    dev_stack: Stack, browser: Browser
) -> None:
    order = await Journey.place(dev_stack)
    await order.until_paid()
    await order.waiting_for("packing")
    page = await _phone(browser)
    await page.goto(
        f"{str(dev_stack.api.base_url).rstrip('/')}/order/{order.link(LinkPurpose.STATUS)}"
    )
    await expect(page.locator("#status")).to_have_text("Комплектується")
    await page.get_by_text("Скасувати замовлення").first.click()  # opens the form
    await page.get_by_label("Чому ви хочете скасувати?").select_option("changed_mind")
    await _shot(page, "status-page-cancel-form")
    await page.get_by_role("button", name="Скасувати замовлення").click()

    await expect(page.locator("#status")).to_have_text("Скасовано")
    await expect(page.locator("#cancellation")).to_contain_text("Це зроблено на ваше прохання.")
    # Asked of the payment provider, or confirmed by it already: either way the sum is told.
    await expect(page.locator("#refund")).to_contain_text(
        re.compile("(Повертаємо 500,00\xa0₴|500,00\xa0₴ повернено) на картку")
    )
    await expect(page.locator("#actions")).to_have_count(0)  # nothing left to do
    await _fits_the_screen(page)
    await _shot(page, "status-page-cancelled")
    assert (await order.status()).stage == "cancelled"
    await page.context.close()


async def test_an_admin_redelivers_an_event_from_the_console(
    dev_stack: Stack, browser: Browser
) -> None:
    receiver = f"{str(dev_stack.sim.base_url).rstrip('/')}/shop/events"
    created = await dev_stack.api.post(
        "/v1/webhook-subscriptions", json={"url": receiver, "events": ["order.confirmed"]}
    )
    subscription = created.json()
    try:
        order = await Journey.place(dev_stack, payment={"method": "cod"})

        async def delivered() -> bool:
            log = await dev_stack.api.get(
                f"/v1/webhook-subscriptions/{subscription['id']}/deliveries",
                params={"status": "delivered"},
            )
            return bool(log.json()["items"])

        await eventually(delivered, 20, what="the confirmed event delivered")
        page = await _sign_in(browser, dev_stack, Role.ADMIN)
        await page.get_by_role("link", name="Order events").click()
        await page.get_by_role("link", name=receiver).first.click()
        row = page.locator("#deliveries tbody tr").filter(has_text=order.order_id)
        await expect(row).to_contain_text("delivered")
        await row.get_by_role("button", name="Redeliver").click()
        await expect(page.get_by_role("status")).to_contain_text("queued again")
        await _shot(page, "console-order-events")
        log = await dev_stack.api.get(
            f"/v1/webhook-subscriptions/{subscription['id']}/deliveries",
            params={"order_id": order.order_id},
        )
        [item] = log.json()["items"]

        async def sent_again() -> bool:
            again = await dev_stack.api.get(
                f"/v1/webhook-subscriptions/{subscription['id']}/deliveries",
                params={"order_id": order.order_id},
            )
            return again.json()["items"][0]["attempts"] == 2

        await eventually(sent_again, 20, what="the redelivery")
        assert item["type"] == "order.confirmed"
    finally:
        await dev_stack.api.delete(f"/v1/webhook-subscriptions/{subscription['id']}")
