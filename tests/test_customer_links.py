"""Customer links are signed, single-purpose and expiring: the order id alone opens and
decides nothing; a tampered, borrowed or old link is refused and changes nothing."""

from __future__ import annotations

import re
import string
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlmodel import select

from schema.database import open_session
from schema.links import BadLink, CustomerLinks, ExpiredLink, LinkPurpose
from schema.tables import Feedback
from tests.lifecycle import Journey
from tests.stack import Stack


def _tampered(token: str) -> str:
    """The same link with the signature's first character changed.

    Not the last one: base64 spends its last character's low bits on padding, so
    two different last characters can decode to the same signature."""
    head, _, signature = token.rpartition(".")
    first = "A" if signature[0] != "A" else "B"
    return f"{head}.{first}{signature[1:]}"


@pytest.fixture
def anonymous(dev_stack: Stack) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=dev_stack.api.base_url, headers={"Origin": dev_stack.settings.public_url}
    )


async def _feedback_rows(stack: Stack, order_id: str) -> int:
    async with open_session(stack.engine) as session:
        rows = await session.exec(select(Feedback).where(Feedback.order_id == uuid.UUID(order_id)))
        return len(rows.all())


async def test_a_tampered_or_borrowed_link_decides_nothing(
    dev_stack: Stack, anonymous: httpx.AsyncClient
) -> None:
    order = await Journey.place(
        dev_stack,
        lines=[{"sku": "GONE-04", "name": "Sold out", "quantity": 1, "unit_price": "10.00"}],
    )
    await order.waiting_for("stock_decision")
    token = await order.link_from_mail("stock-choice")

    page = await anonymous.get(f"/order/{_tampered(token)}/stock-choice")
    assert page.status_code == 404 and "not valid" in page.text
    assert order.body["number"] not in page.text  # the page shows nothing of the order
    refused = await order.answer("stock-choice", {"choice": "cancel"}, token=_tampered(token))
    assert refused.status_code == 404 and "not valid" in refused.json()["detail"]
    # A link for another purpose opens nothing here, even for the same order.
    borrowed = await order.answer(
        "stock-choice", {"choice": "cancel"}, token=order.link(LinkPurpose.FEEDBACK)
    )
    assert borrowed.status_code == 404
    # The bare order id, as links were before they were signed, decides nothing either.
    bare = await anonymous.post(
        f"/v1/orders/{order.order_id}/stock-choice", json={"choice": "cancel"}
    )
    assert bare.status_code in (401, 404, 405)
    assert (await order.status()).waiting_for == "stock_decision"  # nothing changed

    page = await anonymous.get(f"/order/{token}/stock-choice")
    assert page.status_code == 200 and order.body["number"] in page.text
    # A stock-choice link opens its own page and no other: no way on to the status page.
    assert set(re.findall(r"/order/([^/?\"]+)", page.text)) == {token}
    chosen = await anonymous.post(f"/order/{token}/stock-choice", data={"choice": "backorder"})
    assert chosen.status_code == 200 and "Дякуємо!" in chosen.text  # the order's language
    assert set(re.findall(r"/order/([^/?\"]+)", chosen.text)) <= {token}
    # Opened by the status link, the same page leads back to it.
    status = order.link(LinkPurpose.STATUS)
    back = await anonymous.get(f"/order/{status}/stock-choice")
    assert f'href="/order/{status}?lang=' in back.text
    await order.waiting_for("backorder_arrival")


async def test_an_old_link_is_refused_with_a_clear_page(
    dev_stack: Stack, anonymous: httpx.AsyncClient
) -> None:
    order = await Journey.place(dev_stack, payment={"method": "cod"})
    page = await anonymous.get(f"/v1/orders/{order.order_id}/feedback")
    assert page.status_code == 410 and "expired" in page.text
    assert "text/html" in page.headers["content-type"]

    links = dev_stack.settings.customer_links()
    signer = links._signer(LinkPurpose.FEEDBACK)
    signer.get_timestamp = lambda: int(time.time()) - int(timedelta(days=365).total_seconds())  # type: ignore[method-assign]
    old = signer.sign(links.token(LinkPurpose.FEEDBACK, uuid.UUID(order.order_id)).split(".")[0])
    expired = await order.answer("feedback", {"rating": 5}, token=old.decode())
    assert expired.status_code == 410 and "expired" in expired.json()["detail"]
    form = await anonymous.get(f"/order/{old.decode()}/feedback")
    assert form.status_code == 410 and "expired" in form.text
    assert await _feedback_rows(dev_stack, order.order_id) == 0

    # A fresh link opens the order: answered "not before delivery" (409), not "expired".
    fresh = await order.answer("feedback", {"rating": 5}, token=order.link(LinkPurpose.FEEDBACK))
    assert fresh.status_code == 409 and "delivered" in fresh.json()["detail"], fresh.text


def test_links_survive_a_rotation_of_the_secret_until_they_expire() -> None:
    order_id, week = uuid.uuid4(), timedelta(days=7)
    before = CustomerLinks("old-secret-" + "x" * 32, [], week)
    after = CustomerLinks("new-secret-" + "y" * 32, ["old-secret-" + "x" * 32], week)
    token = before.token(LinkPurpose.STATUS, order_id)
    assert after.order_of(LinkPurpose.STATUS, token) == order_id  # still opens
    assert after.token(LinkPurpose.STATUS, order_id) != token  # new links use the new key
    dropped = CustomerLinks("new-secret-" + "y" * 32, [], week)
    with pytest.raises(BadLink):
        dropped.order_of(LinkPurpose.STATUS, token)
    with pytest.raises(BadLink):
        after.order_of(LinkPurpose.FEEDBACK, token)  # single purpose
    with pytest.raises(BadLink):
        after.order_of(LinkPurpose.STATUS, "not a token at all ✓")
    short = CustomerLinks("s" * 40, [], timedelta(seconds=-1))
    with pytest.raises(ExpiredLink):
        short.order_of(LinkPurpose.STATUS, short.token(LinkPurpose.STATUS, order_id))


def test_a_link_with_any_one_character_changed_opens_nothing() -> None:
    """Every position, every character a URL could carry there: base64 leaves spare bits in
    the signature's last character, and a link differing only in them must not open."""
    links = CustomerLinks("s" * 40, [], timedelta(days=1))
    token = links.token(LinkPurpose.STATUS, uuid.uuid4())
    alphabet = string.ascii_letters + string.digits + "-_."
    opened = []
    for at, kept in enumerate(token):
        for other in alphabet.replace(kept, ""):
            changed = token[:at] + other + token[at + 1 :]
            try:
                links.order_of(LinkPurpose.STATUS, changed)
                opened.append(changed)
            except BadLink:
                pass
    assert opened == []
    assert links.customer_of(links.token(LinkPurpose.ORDER_LIST, uuid.UUID(int=7))) == uuid.UUID(
        int=7
    )
    with pytest.raises(BadLink):  # an order's link lists nobody's orders
        links.customer_of(token)
