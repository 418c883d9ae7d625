"""The customer's note: an order held for review because of it shows it wherever staff see
the order (the API, the console's order page and confirm step, the CLI), masked for the roles
that see personal data masked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright, expect

from schema.api.fields import Role
from tests.lifecycle import Journey
from tests.stack import Stack
from tests.support import sample_order
from tests.test_client_cli import _cli, _key
from tests.test_console import CHROMIUM_FLAGS, _sign_in

NOTE = "Ring 050 123 45 67 or write olha.k@example.com;\ndeliver after 18:00 on 2026-12-05"
MASKED = "Ring ***67 or write ol***@example.com;\ndeliver after 18:00 on 2026-12-05"


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS
        )
        yield chromium
        await chromium.close()


async def test_the_api_shows_the_note_and_masks_its_contacts_for_masked_roles(
    dev_stack: Stack,
) -> None:
    body = sample_order(note=NOTE)
    placed = await dev_stack.as_role[Role.SERVICE].post("/v1/orders", json=body)
    assert placed.status_code == 202, placed.text
    order = Journey(dev_stack, placed.json()["order_id"], body)
    await order.waiting_for("operator_confirmation")

    for role, seen in [
        (Role.ADMIN, NOTE),
        (Role.OPERATOR, NOTE),
        (Role.SUPPORT, MASKED),
        (Role.SERVICE, MASKED),  # the key that placed it: masked like its other personal data
    ]:
        view = await dev_stack.as_role[role].get(f"/v1/orders/{order.order_id}")
        assert view.status_code == 200, (role, view.text)
        assert view.json()["customer_note"] == seen, role

    without = await Journey.place(dev_stack)
    view = await dev_stack.api.get(f"/v1/orders/{without.order_id}")
    assert view.json()["customer_note"] is None
    schema = (await dev_stack.api.get("/openapi.json")).json()["components"]["schemas"]
    assert "masked" in schema["OrderOut"]["properties"]["customer_note"]["description"]


async def test_the_console_shows_the_note_on_the_order_and_on_the_confirm_step(
    dev_stack: Stack, browser: Browser
) -> None:
    order = await Journey.place(dev_stack, note=NOTE)
    await order.waiting_for("operator_confirmation")
    base = str(dev_stack.api.base_url).rstrip("/")

    page = await _sign_in(browser, dev_stack, Role.OPERATOR)
    await page.goto(f"{base}/console/orders/{order.order_id}")
    await expect(page.locator("#customer-note")).to_contain_text("olha.k@example.com")
    await expect(page.locator("#customer-note")).to_contain_text("deliver after 18:00")
    await page.get_by_role("link", name="Confirm", exact=True).click()
    await expect(page.locator("#customer-note")).to_contain_text("050 123 45 67")
    await page.close()

    page = await _sign_in(browser, dev_stack, Role.SUPPORT)
    await page.goto(f"{base}/console/orders/{order.order_id}")
    await expect(page.locator("#customer-note")).to_contain_text("ol***@example.com")
    assert "050 123 45 67" not in await page.locator("#customer-note").inner_text()
    await page.close()


async def test_the_cli_shows_the_note(dev_stack: Stack) -> None:
    order = await Journey.place(dev_stack, note=NOTE)
    await order.waiting_for("operator_confirmation")
    for role, seen in [(Role.OPERATOR, "050 123 45 67"), (Role.SUPPORT, "Ring ***67")]:
        shown = await asyncio.to_thread(
            _cli, dev_stack, await _key(dev_stack, role), "show", order.order_id
        )
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "customer's note" in shown.stdout and seen in shown.stdout, shown.stdout
