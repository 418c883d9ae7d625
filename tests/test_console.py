"""The web console in a real browser (Debian's headless Chromium driven by Playwright).

Screenshots of each step are saved under .artifacts/screenshots/ for a person to look at.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from devstack.fixtures import fixture
from schema.api.fields import Role
from schema.database import open_session
from schema.links import LinkPurpose
from schema.tables import StaffAccount
from starter.services.access import hash_password
from tests.lifecycle import Journey
from tests.stack import Stack

SCREENSHOTS = Path(__file__).resolve().parents[1] / ".artifacts" / "screenshots"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS
        )
        yield chromium
        await chromium.close()


async def _staff(stack: Stack, role: Role) -> tuple[str, str]:
    username, password = f"{role.value}{uuid.uuid4().hex[:6]}", "a long enough password"
    async with open_session(stack.engine) as session:
        session.add(
            StaffAccount(username=username, password_hash=hash_password(password), role=role.value)
        )
        await session.commit()
    return username, password


LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}  # an iPhone 12-15's viewport


async def _sign_in(
    browser: Browser, stack: Stack, role: Role, screen: dict[str, int] = LAPTOP
) -> Page:
    username, password = await _staff(stack, role)
    page = await browser.new_page(viewport=screen)  # type: ignore[arg-type]
    await page.goto(f"{str(stack.api.base_url).rstrip('/')}/console")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Operator queue")).to_be_visible()
    return page


async def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def test_operator_confirms_an_order_from_the_queue(
    dev_stack: Stack, browser: Browser
) -> None:
    order = await Journey.place(dev_stack, note="Leave at the door")
    await order.waiting_for("operator_confirmation")
    page = await _sign_in(browser, dev_stack, Role.OPERATOR)
    await _shot(page, "operator-queue")

    await page.get_by_role("link", name=order.body["number"]).first.click()
    await expect(page.locator("#waiting-for")).to_have_text("operator confirmation")
    await expect(page.locator("#customer-name")).to_have_text(
        "Iryna Koval"
    )  # operators see personal data
    await _shot(page, "operator-order-awaiting-confirmation")
    await page.get_by_role("link", name="Confirm", exact=True).click()
    await expect(
        page.get_by_role("heading", name=f"Confirm order {order.body['number']}?")
    ).to_be_visible()
    await _shot(page, "operator-confirmation-step")
    await page.locator("#confirm-action").click()

    await expect(page.get_by_role("status")).to_have_text("Confirm: done.")
    # The workflow moves on: it reserves stock and sends the payment link.
    await order.waiting_for("payment")
    await page.reload()
    await expect(page.locator("#waiting-for")).to_have_text("payment")
    await expect(page.locator("#timeline")).to_contain_text("review.confirmed")
    await _shot(page, "operator-order-confirmed")
    status = await order.status()
    assert [e.actor for e in status.timeline if e.type == "review.confirmed"] == [
        f"staff:{(await _whoami(page))}"
    ]
    await page.close()


async def _whoami(page: Page) -> str:
    return (await page.locator(".who").inner_text()).split(" · ")[0].removeprefix("staff:")


async def test_support_finds_an_order_by_phone_and_sees_it_masked(
    dev_stack: Stack, browser: Browser
) -> None:
    customer = {
        "name": "Mariia Shevchenko",
        "email": f"mariia.{uuid.uuid4().hex[:6]}@example.com",
        "phone": "+380671234590",
    }
    order = await Journey.place(dev_stack, customer={**customer, "locale": "uk"})
    await order.waiting_for("payment")
    page = await _sign_in(browser, dev_stack, Role.SUPPORT)

    await page.get_by_label("search").fill("+380 67 123 45 90")
    await page.get_by_label("search").press("Enter")
    await expect(page.get_by_role("link", name=order.body["number"])).to_be_visible()
    await expect(page.locator("table")).to_contain_text("Mariia S.")
    await _shot(page, "support-search-by-phone")
    await page.get_by_role("link", name=order.body["number"]).click()

    await expect(page.locator("#customer-phone")).to_have_text("+38067***4590")
    await expect(page.locator("#customer-email")).to_have_text(
        f"{customer['email'][:2]}***@example.com"
    )
    await expect(page.locator("#customer-name")).to_have_text("Mariia S.")
    assert (
        await page.get_by_role("link", name="Cancel", exact=True).count() == 0
    )  # support cannot act
    content = await page.content()
    assert customer["phone"] not in content and customer["email"] not in content
    await _shot(page, "support-order-masked")
    await page.close()


async def test_operator_cancels_with_a_reason_and_sees_the_refusal_afterwards(
    dev_stack: Stack, browser: Browser
) -> None:
    order = await Journey.place(dev_stack)
    await order.waiting_for("payment")
    page = await _sign_in(browser, dev_stack, Role.OPERATOR)
    await page.goto(f"{str(dev_stack.api.base_url).rstrip('/')}/console/orders/{order.order_id}")
    await page.get_by_role("link", name="Cancel", exact=True).click()
    await page.get_by_label("Reason").select_option("customer_request")
    await page.get_by_label("Note").fill("asked by phone")
    await page.locator("#confirm-action").click()
    await expect(page.get_by_role("status")).to_have_text("Cancel: done.")
    await expect(page.locator("#status")).to_have_text("cancelled")
    await _shot(page, "operator-order-cancelled")
    assert (
        await page.get_by_role("link", name="Cancel", exact=True).count() == 0
    )  # nothing left to do
    # A stale page's form posted again is refused with the workflow's reason.
    await page.goto(
        f"{str(dev_stack.api.base_url).rstrip('/')}/console/orders/{order.order_id}/act/cancel"
    )
    await page.locator("#confirm-action").click()
    await expect(page.get_by_role("alert")).to_contain_text("not allowed now")
    await page.close()


async def test_admin_disables_an_account_and_ends_its_sessions(
    dev_stack: Stack, browser: Browser
) -> None:
    operator = await _sign_in(browser, dev_stack, Role.OPERATOR)
    who = await _whoami(operator)
    admin = await _sign_in(browser, dev_stack, Role.ADMIN)
    await admin.get_by_role("link", name="Accounts").click()
    row = admin.locator(f'tr[data-username="{who}"]')
    await expect(row).to_contain_text("active")
    await row.get_by_role("button", name=f"Disable {who}").click()
    await expect(admin.get_by_role("status")).to_have_text(f"{who}: disabled.")
    await expect(admin.locator(f'tr[data-username="{who}"]')).to_contain_text("disabled")
    await _shot(admin, "admin-accounts")
    await operator.reload()  # the operator's session ended with the account
    await expect(operator.get_by_role("heading", name="Sign in")).to_be_visible()
    await (
        admin.locator(f'tr[data-username="{who}"]')
        .get_by_role("button", name=f"Enable {who}")
        .click()
    )
    await expect(admin.locator(f'tr[data-username="{who}"]')).to_contain_text("active")
    await admin.get_by_role("button", name="Sign out").click()
    await expect(admin.get_by_role("heading", name="Sign in")).to_be_visible()
    await operator.close()
    await admin.close()


async def test_admin_adds_a_connector_and_an_operator_settles_an_order_it_could_not_take(
    dev_stack: Stack, browser: Browser
) -> None:
    admin = await _sign_in(browser, dev_stack, Role.ADMIN)
    await admin.get_by_role("link", name="Connectors").click()
    name, secret = f"shop-{uuid.uuid4().hex[:6]}", "a-webhook-secret-of-the-shop-42"
    form = admin.locator("#add-connector")
    await form.get_by_label("Kind").select_option("woocommerce")
    await form.get_by_label("Name").fill(name)
    await form.get_by_label("Webhook secret").fill(secret)
    await form.get_by_role("button", name="Add").click()
    await expect(admin.get_by_role("status")).to_have_text(f"{name} added.")
    row = admin.locator(f'tr[data-connector="{name}"]')
    await expect(row).to_contain_text("webhook_secret: stored")
    await expect(row).to_contain_text(f"/v1/intake/woocommerce/{name}")
    assert secret not in await admin.content()
    await _shot(admin, "admin-connectors")

    # The shop posts an order without a phone: it waits in the operator's queue.
    body = fixture("woocommerce", "order_kyiv_cod")["body"]
    body["billing"]["phone"] = ""
    sent = await dev_stack.sim.post(
        "/woocommerce/sim/orders",
        json={"connector": name, "secret": secret, "fixture": "order_kyiv_cod", "changes": body},
    )
    failure_id = sent.json()["answer"]["failure_id"]
    operator = await _sign_in(browser, dev_stack, Role.OPERATOR)
    failure = operator.locator(f'tr[data-failure="{failure_id}"]')
    await expect(failure).to_contain_text(name)
    await expect(failure).to_contain_text("billing.phone")
    await expect(operator).to_have_title("Queue · orderflow console")  # the table once, below
    await _shot(operator, "queue-intake-failure")
    await failure.get_by_role("button", name=f"Resolve intake failure {failure_id}").click()
    await expect(operator.get_by_role("status")).to_have_text(
        f"Intake failure {failure_id} resolved."
    )
    await expect(operator.locator(f'tr[data-failure="{failure_id}"]')).to_have_count(0)

    await row.get_by_role("button", name=f"Disable {name}").click()
    await expect(admin.locator(f'tr[data-connector="{name}"]')).to_contain_text("disabled")
    await operator.close()
    await admin.close()


async def _fits(page: Page, path: str) -> None:
    """The page opened at `path` is no wider than the screen: nothing to scroll sideways."""
    await page.goto(f"{page.url.split('/console')[0]}{path}")
    width, screen = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= screen, f"{path} is {width} px wide on a {screen} px screen"


async def test_every_console_page_fits_a_phone_and_speaks_words_not_codes(
    dev_stack: Stack, browser: Browser
) -> None:
    # A cash order still awaiting confirmation: nothing was paid, nothing can go back.
    order = await Journey.place(
        dev_stack,
        note="Ring twice; the entrance is from the courtyard",
        payment={"method": "cod"},
        lines=[
            {
                "sku": "KETTLE-01",
                "name": "Чайник скляний з довгою назвою, що не вміщується в рядок",
                "quantity": 1,
                "unit_price": "1499.00",
            }
        ],
    )
    await order.waiting_for("operator_confirmation")
    subscription = await dev_stack.api.post(
        "/v1/webhook-subscriptions",
        json={"url": "http://127.0.0.1:9/shop/events", "events": ["order.shipped"]},
    )
    assert subscription.status_code == 201, subscription.text
    page = await _sign_in(browser, dev_stack, Role.ADMIN, PHONE)

    for path in (
        "/console",
        f"/console/search?q={order.body['number']}",
        f"/console/orders/{order.order_id}",
        f"/console/orders/{order.order_id}/act/confirm",
        "/console/accounts",
        "/console/connectors",
        "/console/subscriptions",
        f"/console/subscriptions/{subscription.json()['id']}",
        "/console/reports?from=2021-05-01&to=2021-05-07",
    ):
        await _fits(page, path)
        await _shot(page, "phone-" + path.strip("/").split("?")[0].replace("/", "-")[:60])

    await page.goto(f"{page.url.split('/console')[0]}/console/orders/{order.order_id}")
    await expect(page.locator("#payment")).to_have_text("cash on delivery · to be paid on delivery")
    assert "cash_on_delivery" not in await page.content()
    assert await page.locator("#refund-form").count() == 0  # nothing was paid
    assert await page.locator("#return-form").count() == 0  # nothing was delivered

    # The customer cancels from the status page: the reason they chose reads as words.
    token = order.link(LinkPurpose.STATUS)
    async with httpx.AsyncClient(base_url=dev_stack.api.base_url) as customer:
        cancelled = await customer.post(
            f"/v1/customer/orders/{token}/cancel", json={"reason": "changed_mind"}
        )
    assert cancelled.status_code == 200, cancelled.text
    await page.reload()
    await expect(page.locator("#notes")).to_contain_text("customer (cancel): changed mind")
    assert "changed_mind" not in await page.locator("#notes").inner_text()
    await page.close()


def test_a_ledger_row_names_its_return_by_number_not_its_id() -> None:
    from schema.api.returns import RefundRow, ReturnOut  # here: the names the console shows
    from starter.console.routes import _refund_source

    def source(key: str, actor: str | None = None) -> str:
        row = RefundRow(
            key=key, amount=1, status="requested", reason=None, actor=actor, requested_at=None
        )
        return _refund_source(row, [ret])

    ret = ReturnOut.model_construct(return_id="6f1c2d3e-4a5b", number="SHOP-7-R1")
    assert source("return:6f1c2d3e-4a5b") == "return SHOP-7-R1"
    assert source("return:6f1c2d3e-4a5b:difference") == "return SHOP-7-R1 (difference)"
    assert source("refund:k-1", actor="staff:olena") == "an operator's refund"
    assert source("refund") == "the order's cancellation"
    assert source("refund:not-packed") == "items that could not be packed"
