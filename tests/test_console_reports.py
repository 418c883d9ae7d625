"""The console's reports page and the support note that marks a customer contact, in a real
browser (Debian's Chromium). Screenshots go to .artifacts/screenshots/."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.async_api import Browser, expect

from schema.api.fields import Role
from tests import test_console
from tests.lifecycle import Journey
from tests.reports_history import Seeded, seed_history
from tests.stack import Stack
from tests.test_console import _shot, _sign_in

browser = test_console.browser  # the same Chromium fixture


@pytest.fixture(scope="module")
async def history(dev_stack: Stack) -> Seeded:
    return await seed_history(dev_stack.engine, datetime(2021, 5, 1, tzinfo=UTC))


async def test_operator_reads_the_charts_for_a_date_range(
    dev_stack: Stack, browser: Browser, history: Seeded
) -> None:
    page = await _sign_in(browser, dev_stack, Role.OPERATOR)
    await page.get_by_role("link", name="Reports").click()
    await expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    await page.get_by_label("From").fill("2021-05-01")
    await page.get_by_label("To (included)").fill("2021-05-02")
    await page.get_by_role("button", name="Show").click()

    figures = page.locator(".figure")
    await expect(figures.nth(0)).to_contain_text("Orders5")
    await expect(figures.nth(0)).to_contain_text("3 customers, 66.7 % returning")
    await expect(figures.nth(2)).to_contain_text("40.0 %")  # cancelled: 2 of 5
    await expect(figures.nth(3)).to_contain_text("NPS33")
    stages = page.get_by_role(
        "img", name="Time per stage: dot = median, bar to the 90th percentile"
    )
    await expect(stages).to_contain_text("20 min · 2.4 d · n=3")  # payment: 1200 s, 207600 s
    await expect(stages).to_contain_text("no order has left it")  # documents, handover
    cancellations = page.get_by_role("img", name="Cancellations by reason per day")
    await expect(cancellations).to_contain_text("payment_expired")
    await expect(cancellations).to_contain_text("invalid")
    await expect(
        page.get_by_role("img", name="On-time deliveries per day, percent")
    ).to_be_visible()
    await expect(page.get_by_role("img", name="NPS per day")).to_be_visible()
    picking = page.locator("#incidents tr", has_text="picking").locator("td")
    await expect(picking).to_have_text(["picking", "1", "1", "0", "2"])  # human, system, external
    await _shot(page, "manager-reports")

    await page.get_by_label("To (included)").fill("2021-04-01")  # before "From"
    await page.get_by_role("button", name="Show").click()
    await expect(page.get_by_role("alert")).to_contain_text("the last day comes before the first")
    await page.close()


async def test_support_marks_a_note_as_a_customer_contact(
    dev_stack: Stack, browser: Browser
) -> None:
    order = await Journey.place(dev_stack)
    page = await _sign_in(browser, dev_stack, Role.SUPPORT)
    await page.goto(f"{str(dev_stack.api.base_url).rstrip('/')}/console/orders/{order.order_id}")
    await page.get_by_label("note").fill("Asked where the parcel is")
    await page.get_by_label("The customer asked about the order").check()
    await page.get_by_role("button", name="Add note").click()
    await expect(page.get_by_role("status")).to_have_text("Note added.")
    await expect(page.get_by_text("Asked where the parcel is")).to_contain_text("customer contact")
    await _shot(page, "support-note-customer-contact")
    notes = (await dev_stack.api.get(f"/v1/orders/{order.order_id}")).json()["notes"]
    assert [(n["text"], n["customer_contact"]) for n in notes] == [
        ("Asked where the parcel is", True)
    ]
    await page.close()
