"""The console's reports page and the support note that marks a customer contact, in a real
browser (Debian's Chromium). Screenshots go to .artifacts/screenshots/."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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


async def test_the_figures_count_in_words_and_an_empty_median_has_no_unit(
    dev_stack: Stack, browser: Browser, history: Seeded
) -> None:
    """ "1 answer", never "1 answers"; a median of no late deliveries is a dash, not "— d"."""
    days = [f"2021-05-0{day}" for day in range(1, 6)]

    async def summary(day: str) -> dict[str, Any]:
        answer = await dev_stack.api.get(
            "/v1/reports/summary",
            params={"since": f"{day}T00:00:00Z", "until": f"{day}T23:59:59Z"},
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    figures = {day: await summary(day) for day in days}
    one_answer = next(d for d in days if figures[d]["feedback"]["responses"] == 1)
    page = await _sign_in(browser, dev_stack, Role.OPERATOR, test_console.PHONE)
    base = str(dev_stack.api.base_url).rstrip("/")
    await page.goto(f"{base}/console/reports?from={one_answer}&to={one_answer}")
    await expect(page.locator(".figure").nth(3)).to_contain_text("1 answer, CSAT")
    none_late = next(d for d in days if figures[d]["on_time"]["late"] == 0)
    await page.goto(f"{base}/console/reports?from={none_late}&to={none_late}")
    await expect(page.locator("#days-late")).to_contain_text("median —, at worst —.")
    await page.close()
