"""The customer's return request, and the operator's returns and refunds in the console, in a
real browser (Debian's Chromium driven by Playwright). Screenshots go to
.artifacts/screenshots/ (return-request, return-requested, return-refused-uk, console-returns)."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from playwright.async_api import Browser, expect

from activities.messages import LOCALES
from schema.api.fields import Role
from schema.api.returns import ReturnableLine, ReturnableOut, ReturnOut
from schema.contracts import ReturnDecline, ReturnReason, ReturnResolution, ReturnStatus
from schema.database import open_session
from schema.links import LinkPurpose
from schema.tables import Return
from starter.customer.routes import Formats, templates
from starter.services import status_page
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
    order = await Journey.place(dev_stack, lines=TEA_AND_MUGS)  # in Ukrainian, as sample orders
    await order.to_delivery()
    token = order.link(LinkPurpose.STATUS)
    page = await browser.new_page(viewport={"width": 420, "height": 900})  # a phone
    await page.goto(f"{str(dev_stack.api.base_url).rstrip('/')}/order/{token}/return")
    await page.get_by_role("link", name="EN", exact=True).click()  # the language switch
    await expect(page.get_by_role("heading", name="Return items of order")).to_be_visible()
    await expect(page.locator("tbody")).to_contain_text(
        "UAH\xa0250.00"
    )  # money as English writes it

    await page.get_by_label("Mug: how many").fill("1")
    await page.get_by_label("Why are you returning them?").select_option(label="Wrong size")
    await page.get_by_label("The same items again (an exchange)").check()
    await page.get_by_label("Anything to add? (optional)").fill("A bigger one, please")
    await _shot(page, "return-request")
    await page.get_by_role("button", name="Ask for a return").click()

    # The form kept the language chosen: the answer is in English too.
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
        "Mug: only 0 of the 2 ordered can still be sent back."
    )
    await stale.close()
    await page.close()


CUPS_AND_TEA = [
    {"sku": "MUG-01", "name": "Чашка", "quantity": 2, "unit_price": "250.00"},
    {"sku": "TEA-01", "name": "Зелений чай 100 г", "quantity": 3, "unit_price": "60.00"},
]


def _latin(text: str | None) -> set[str]:
    return set(re.findall(r"[A-Za-z]+", text or ""))


async def test_a_ukrainian_order_s_return_page_speaks_ukrainian(
    dev_stack: Stack, browser: Browser
) -> None:
    order = await Journey.place(dev_stack, lines=CUPS_AND_TEA)
    assert order.body["customer"]["locale"] == "uk"
    await order.to_delivery()
    token = order.link(LinkPurpose.STATUS)
    url = f"{str(dev_stack.api.base_url).rstrip('/')}/order/{token}/return"
    page = await browser.new_page(viewport={"width": 420, "height": 900})
    await page.goto(f"{url}?lang=en")
    # Every Latin word on this order's pages that is not its number (or its return's) is
    # English: the English page has plenty of them, the Ukrainian one must have none.
    numbers = _latin(f"{order.body['number']}-R1")
    english = _latin(await page.locator("main").text_content()) - numbers
    assert {"Return", "Why", "reason", "money", "Ask"} <= english

    await page.goto(url)  # no ?lang=: the order's language
    await expect(
        page.get_by_role("heading", name="Повернення товарів із замовлення")
    ).to_be_visible()
    await expect(page.locator("tbody")).to_contain_text("250,00\u00a0₴")  # as Ukrainian writes it
    reason = page.get_by_label("Чому ви їх повертаєте?")
    await expect(reason.locator("option", has_text="Не підійшов розмір")).to_have_count(1)

    # Both cups go back meanwhile (through the page's JSON twin); this form still offers them.
    taken = await dev_stack.api.post(
        f"/v1/customer/orders/{token}/returns",
        json={"lines": [{"sku": "MUG-01", "quantity": 2}], "reason": "defective"},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert taken.status_code == 201, taken.text
    await page.get_by_label("Чашка: скільки повернути").fill("1")
    await reason.select_option(label="Не підійшов розмір")
    async with page.expect_response(lambda r: r.request.method == "POST") as answer:
        await page.get_by_role("button", name="Оформити повернення").click()
    assert (await answer.value).status == 409
    await expect(page.locator("#refused")).to_have_text(
        "Чашка: повернути можна лише 0 з 2 замовлених."
    )
    await expect(page.locator("#returns")).to_contain_text("Схвалено")
    await _shot(page, "return-refused-uk")
    shown = _latin(await page.locator("main").text_content()) | _latin(await page.title())
    assert not shown & english, f"English on the Ukrainian page: {shown & english}"
    assert not shown - numbers, f"Latin words on the Ukrainian page: {shown - numbers}"
    await page.close()
    # A form sent without a reason (the browser would not let it go): said in Ukrainian too.
    incomplete = await dev_stack.api.post(
        f"/order/{token}/return",
        data={"sku": "TEA-01", "quantity": "1", "request_key": uuid.uuid4().hex},
        headers={"Origin": dev_stack.settings.public_url},
    )
    assert incomplete.status_code == 422
    assert "Вкажіть, скільки яких товарів ви повертаєте і чому." in incomplete.text


@pytest.mark.parametrize("locale", LOCALES)
def test_every_return_s_state_is_said_in_the_page_s_language(locale: str) -> None:
    """Each status a return can show (the browser sees only a few), with its refund or
    decline, rendered strictly from the catalog's words."""
    words = status_page.CATALOG.words(locale)
    returns = [
        ReturnOut(
            return_id=str(uuid.uuid4()),
            number=f"SHOP-1-R{n}",
            status=status,
            reason=ReturnReason.WRONG_SIZE,
            resolution=ReturnResolution.REFUND,
            requested_by="customer",
            lines=[],
            decline=ReturnDecline.NOT_SENT if status == ReturnStatus.DECLINED else None,
            needs_action=False,
            tracking_number=None,
            tracking_url=None,
            refunded=Decimal("250.00") if status == ReturnStatus.REFUNDED else None,
            exchange_order_id=None,
            created_at=None,
        )
        for n, status in enumerate(ReturnStatus, 1)
    ]
    fmt = Formats(locale, "UAH", "Europe/Kyiv")
    page = templates.env.get_template("customer/return.html").render(
        t=words,
        locale=locale,
        LOCALES=LOCALES,
        path="/order/t/return",
        token="t",
        view=ReturnableOut(
            number="SHOP-1",
            delivered_at=datetime.now(UTC),
            lines=[ReturnableLine(sku="MUG-01", name="Mug", ordered=2, returnable=0, unit_price=1)],
            reasons=list(ReturnReason),
            returns=returns,
        ),
        fmt=fmt,
        request_key="k" * 16,
        refused=None,
        resolutions=list(ReturnResolution),
    )
    text = html.unescape(re.sub(r"<[^>]+>", " ", page.split("<main>")[1]))
    for status in ReturnStatus:
        assert words.return_status[status] in text
    assert words.page["return_refunded"].format(amount=fmt.money(Decimal("250.00"))) in text
    assert words.return_decline["not_sent"] in text
    assert words.page["return_label"] in text
    if locale != "en":
        assert _latin(text) <= {"SHOP", "R"}, text


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
