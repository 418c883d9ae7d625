"""Who may do what: every endpoint against every role and no key; the audit log; sessions;
erasure that leaves no trace; limits on size and rate (dev server, real HTTP and Postgres)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import structlog
from sqlalchemy import text
from sqlmodel import col, select

from devstack.mailsink import MailSink
from schema.api.fields import Role
from schema.database import open_session
from schema.links import LinkPurpose
from schema.tables import AuditEntry
from tests.lifecycle import Journey
from tests.stack import Stack
from tests.support import eventually, sample_order

NOBODY = None
ALL = {Role.SERVICE, Role.OPERATOR, Role.SUPPORT, Role.ADMIN}
STAFF = {Role.OPERATOR, Role.SUPPORT, Role.ADMIN}
ACTORS = {Role.OPERATOR, Role.ADMIN}
ADMIN = {Role.ADMIN}


@pytest.fixture(scope="module")
async def cancelled_order(dev_stack: Stack) -> AsyncIterator[str]:
    """An order the service created and an admin cancelled: every action on it is a 409, never a change."""
    service = dev_stack.as_role[Role.SERVICE]
    order = await Journey.place(dev_stack)
    accepted = await service.post(
        "/v1/orders", json={**order.body, "number": order.body["number"] + "-S"}
    )
    order_id = accepted.json()["order_id"]
    await Journey(dev_stack, order_id, order.body).waiting_for("payment")
    cancelled = await dev_stack.api.post(f"/v1/orders/{order_id}/cancel", json={"reason": "other"})
    assert cancelled.status_code == 200, cancelled.text
    yield order_id


def _matrix(order: str) -> list[tuple[str, str, dict[str, Any] | None, set[Role]]]:
    unique = uuid.uuid4().hex[:6]
    return [
        (
            "POST",
            "/v1/orders",
            {"number": "x"},
            {Role.SERVICE, Role.ADMIN},
        ),  # allowed: 422 on the body
        ("GET", f"/v1/orders/{order}", None, ALL),
        ("GET", "/v1/orders?q=SHOP-1", None, STAFF),
        ("POST", f"/v1/orders/{order}/confirm", {}, ACTORS),
        ("POST", f"/v1/orders/{order}/reject", {"reason": "no"}, ACTORS),
        ("POST", f"/v1/orders/{order}/stock-decision", {"choice": "cancel"}, ACTORS),
        (
            "POST",
            f"/v1/orders/{order}/delay",
            {"reason": "supplier_late", "new_date": "2030-01-01"},
            ACTORS,
        ),
        ("POST", f"/v1/orders/{order}/cancel", {"reason": "other"}, ACTORS),
        ("POST", f"/v1/orders/{order}/notes", {"text": "called the customer"}, STAFF),
        ("GET", f"/v1/orders/{order}/documents", None, ACTORS),
        ("GET", "/v1/admin/keys", None, ADMIN),
        ("POST", "/v1/admin/keys", {"name": f"k-{unique}", "role": "support"}, ADMIN),
        (
            "POST",
            "/v1/admin/accounts",
            {"username": f"u{unique}", "password": "x" * 12, "role": "support"},
            ADMIN,
        ),
        ("GET", "/v1/admin/audit", None, ADMIN),
        ("POST", "/v1/admin/erasures", {"email": f"nobody.{unique}@example.com"}, ADMIN),
    ]


@pytest.mark.parametrize("role", [NOBODY, *Role], ids=lambda r: r.value if r else "no-key")
async def test_every_endpoint_against_every_role(
    dev_stack: Stack, cancelled_order: str, role: Role | None
) -> None:
    http = dev_stack.as_role[role] if role else httpx.AsyncClient(base_url=dev_stack.api.base_url)
    wrong: list[str] = []
    for method, path, body, allowed in _matrix(cancelled_order):
        response = await http.request(method, path, json=body)
        expected = "401" if role is None else "allowed" if role in allowed else "403"
        got = str(response.status_code) if response.status_code in (401, 403) else "allowed"
        if got != expected:
            wrong.append(
                f"{method} {path}: expected {expected}, got {response.status_code} {response.text[:120]}"
            )
        if response.status_code in (401, 403):
            assert response.json()["detail"], "a refusal says why"
    assert wrong == []


async def test_public_endpoints_need_no_key(dev_stack: Stack, cancelled_order: str) -> None:
    anonymous = httpx.AsyncClient(base_url=dev_stack.api.base_url)
    assert (await anonymous.get("/healthz")).status_code == 200
    old_link = await anonymous.get(f"/v1/orders/{cancelled_order}/feedback")  # before signing
    assert old_link.status_code == 410 and "expired" in old_link.text
    assert (
        await anonymous.post("/v1/webhooks/payment", json={})
    ).status_code == 401  # signature, not key
    forbidden = await dev_stack.as_role[Role.SUPPORT].post(
        f"/v1/orders/{cancelled_order}/cancel", json={"reason": "other"}
    )
    assert "support" in forbidden.json()["detail"] and "operator" in forbidden.json()["detail"]


async def _audit(dev_stack: Stack, **where: str) -> list[AuditEntry]:
    async with open_session(dev_stack.engine) as session:
        query = select(AuditEntry).order_by(col(AuditEntry.id))
        for field, value in where.items():
            query = query.where(getattr(AuditEntry, field) == value)
        return list((await session.exec(query)).all())


async def test_every_personal_data_read_and_action_is_audited(dev_stack: Stack) -> None:
    order = await Journey.place(dev_stack)
    await order.waiting_for("payment")
    operator, support = dev_stack.as_role[Role.OPERATOR], dev_stack.as_role[Role.SUPPORT]

    full = (await operator.get(f"/v1/orders/{order.order_id}")).json()
    masked = (await support.get(f"/v1/orders/{order.order_id}")).json()
    assert (
        full["customer"]["phone"] == "+380501234567"
        and "Khreshchatyk 1" in full["customer"]["address"]
    )
    assert masked["customer"]["phone"] == "+38050***4567"
    found = (await support.get("/v1/orders", params={"q": "+380 50 123 45 67"})).json()
    assert order.order_id in [item["order_id"] for item in found["items"]]
    await operator.post(
        f"/v1/orders/{order.order_id}/delay", json={"reason": "weather", "new_date": "2030-02-01"}
    )
    await support.post(
        f"/v1/orders/{order.order_id}/notes", json={"text": "customer asked about the delay"}
    )

    rows = await _audit(dev_stack, target=order.order_id)
    assert [(r.actor, r.action) for r in rows] == [
        ("key:admin", "order.create"),
        ("key:operator", "order.read_personal_data"),
        ("key:operator", "order.mark_delayed.requested"),
        ("key:operator", "order.mark_delayed"),
        ("key:support", "order.note"),
    ]
    assert all(r.ip == "127.0.0.1" and r.at is not None for r in rows)
    [search] = [
        r for r in await _audit(dev_stack, action="orders.search") if r.actor == "key:support"
    ][-1:]
    assert search.detail["query"] == "+38050***4567"  # the audit log holds no contact either
    log = (await dev_stack.api.get("/v1/admin/audit", params={"target": order.order_id})).json()
    assert log[0]["action"] == "order.note"  # newest first

    async with open_session(
        dev_stack.engine
    ) as session:  # append-only, even for the database owner
        with pytest.raises(Exception, match="append-only"):
            await session.execute(text("DELETE FROM audit_log"))


async def test_staff_sign_in_with_a_session(dev_stack: Stack) -> None:
    username = f"olena{uuid.uuid4().hex[:6]}"
    created = await dev_stack.api.post(
        "/v1/admin/accounts",
        json={"username": username, "password": "correct horse battery", "role": "operator"},
    )
    assert created.status_code == 201
    anonymous = httpx.AsyncClient(base_url=dev_stack.api.base_url)
    wrong = await anonymous.post("/v1/sessions", json={"username": username, "password": "guess"})
    assert wrong.status_code == 401
    signed_in = await anonymous.post(
        "/v1/sessions", json={"username": username, "password": "correct horse battery"}
    )
    token = signed_in.json()["token"]
    staff = httpx.AsyncClient(
        base_url=dev_stack.api.base_url, headers={"Authorization": f"Bearer {token}"}
    )
    assert (await staff.get("/v1/orders")).status_code == 200
    assert (await staff.get("/v1/admin/keys")).status_code == 403


async def test_revoked_key_is_refused(dev_stack: Stack) -> None:
    issued = (
        await dev_stack.api.post("/v1/admin/keys", json={"name": "temp", "role": "support"})
    ).json()
    holder = httpx.AsyncClient(
        base_url=dev_stack.api.base_url, headers={"Authorization": f"Bearer {issued['key']}"}
    )
    assert (await holder.get("/v1/orders")).status_code == 200
    [key] = [
        k
        for k in (await dev_stack.api.get("/v1/admin/keys")).json()
        if k["prefix"] == issued["key"][:10]
    ]
    assert (await dev_stack.api.delete(f"/v1/admin/keys/{key['id']}")).status_code == 200
    assert (await holder.get("/v1/orders")).status_code == 401


async def test_search_filters_and_pages(dev_stack: Stack) -> None:
    orders = [await Journey.place(dev_stack, note="needs a look") for _ in range(3)]
    for order in orders:
        await order.waiting_for("operator_confirmation")
    support = dev_stack.as_role[Role.SUPPORT]
    first = (await support.get("/v1/orders", params={"needs_action": "true", "limit": 2})).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = (
        await support.get(
            "/v1/orders",
            params={"needs_action": "true", "limit": 2, "cursor": first["next_cursor"]},
        )
    ).json()
    ids = [i["order_id"] for i in first["items"] + second["items"]]
    assert len(ids) == len(set(ids))
    assert {o.order_id for o in orders} <= set(ids)
    assert all(i["flags"]["needs_action"] for i in first["items"])
    by_email = (
        await support.get("/v1/orders", params={"q": orders[0].body["customer"]["email"]})
    ).json()
    assert [i["order_id"] for i in by_email["items"]] == [orders[0].order_id]
    assert by_email["items"][0]["customer"] == "Iryna K."


async def test_erasure_leaves_no_trace_in_postgres(dev_stack: Stack, mail_sink: MailSink) -> None:
    tag = uuid.uuid4().hex[:6]
    person = {
        "name": f"Zoryana Testenko{tag}",
        "email": f"zoryana.{tag}@example.com",
        "phone": "+380671112233",
        "locale": "en",
    }
    address = {
        "country": "UA",
        "city": f"Lviv{tag}",
        "line1": f"Erasure street {tag}",
        "postal_code": "79000",
    }
    mail_sink.refuse(person["email"])  # every e-mail refused: the outbox keeps the failure
    with structlog.testing.capture_logs() as logs:
        order = await Journey.place(
            dev_stack,
            customer=person,
            delivery={"method": "courier", "address": address},
            payment={"method": "cod"},
            note=f"{person['name']} asks to ring twice",  # written by the customer
        )
        await order.waiting_for("operator_confirmation")

        async def refused() -> list[dict[str, Any]]:
            return [e for e in logs if e["event"] == "channel cannot deliver, falling back"]

        [logged] = await eventually(refused, what="the refusal logged")
    assert "refused" in logged["error"] and person["email"] not in json.dumps(logs, default=str)
    confirmed = await order.act("confirm", note=f"{person['name']} confirmed on the phone")
    assert confirmed.status_code == 200, confirmed.text
    await order.waiting_for("packing")
    await order.pack(defects=[f"MUG-01: box for {person['name']} torn"])  # an incident
    await order.until(
        lambda s: Journey.types(s).count("picking.started") == 2 and s.waiting_for == "packing"
    )
    await order.pack()
    await order.waiting_for("carrier")  # receipt, packing list and label exist now
    await order.carrier("InTransit", f"handed to {person['name']} neighbour")
    await dev_stack.as_role[Role.SUPPORT].post(
        f"/v1/orders/{order.order_id}/notes", json={"text": f"{person['name']} called"}
    )
    await order.carrier("Delivered")
    await order.reached("order.delivered")  # rated once delivered
    answered = await order.answer(
        "feedback",
        {"rating": 4, "comment": f"{person['name']} here"},
        token=order.link(LinkPurpose.FEEDBACK),
    )
    assert answered.status_code == 200, answered.text
    needles = [
        person["name"],
        person["email"],
        person["phone"],
        address["line1"],
        address["city"],
        tag,
    ]
    before = await _scan(dev_stack, needles)
    for copy in (
        "orders.customer_note",
        "order_notes.text",  # the operator's confirm note and the support's note
        "order_events.detail",  # the defect and the carrier's words, quoted
        "incidents.summary",
        "feedback.comment",
    ):
        assert f"{copy} holds {tag!r}" in before, f"{copy} holds no copy to erase: {before}"
    undeliverable = [n for n in await order.outbox() if n.status == "undeliverable"]
    assert undeliverable and all(
        n.last_error and "refused" in n.last_error and person["email"] not in n.last_error
        for n in undeliverable
    ), "a refused recipient's address is masked in the error"

    erased = await dev_stack.api.post("/v1/admin/erasures", json={"email": person["email"]})
    assert erased.status_code == 200 and erased.json()["orders"] == [order.order_id]

    traces = await _scan(dev_stack, needles)
    assert traces == [], f"erased values still stored: {traces}"
    view = (await dev_stack.api.get(f"/v1/orders/{order.order_id}")).json()
    assert view["customer"]["name"] == "erased" and view["timeline"]  # history stays
    # The workflow is untouched: the answer ended its feedback stage, and it completed.
    assert (await order.status()).stage == "completed"


async def _scan(dev_stack: Stack, needles: list[str]) -> list[str]:
    """Every text, JSON and binary column of every table, searched for each value."""
    found = []
    async with open_session(dev_stack.engine) as session:
        columns = (
            await session.execute(
                text(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND data_type IN ('character varying', 'text', 'jsonb', 'bytea')"
                )
            )
        ).all()
        for table, column, data_type in columns:
            value = f"encode({column}, 'escape')" if data_type == "bytea" else f"{column}::text"
            for needle in needles:
                hits = await session.execute(
                    text(f'SELECT count(*) FROM "{table}" WHERE {value} ILIKE :needle'),
                    {"needle": f"%{needle}%"},
                )
                if hits.scalar():
                    found.append(f"{table}.{column} holds {needle!r}")
    return found


async def test_oversized_request_is_413(dev_stack: Stack) -> None:
    response = await dev_stack.api.post(
        "/v1/orders",
        content=b"{" + b" " * 2_000_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413 and "bytes" in response.json()["detail"]


async def test_feedback_form_is_rate_limited(dev_stack: Stack, cancelled_order: str) -> None:
    anonymous = httpx.AsyncClient(base_url=dev_stack.api.base_url)
    token = dev_stack.settings.customer_links().token(
        LinkPurpose.FEEDBACK, uuid.UUID(cancelled_order)
    )
    url = f"/v1/customer/orders/{token}/feedback"
    codes = [(await anonymous.post(url, json={"rating": 3})).status_code for _ in range(7)]
    assert codes[0] == 409 and 429 in codes  # a cancelled order is not rated; limited all the same
    limited = await anonymous.post(url, json={"rating": 3})
    assert limited.status_code == 429 and "too many requests" in limited.json()["detail"]


async def test_a_service_key_reads_no_staff_notes_and_is_no_console_session(
    dev_stack: Stack,
) -> None:
    """What support wrote about the customer (a phone, an address) is not the shop's to read;
    and a key is no staff session: as the console's cookie it is sent to sign in."""
    service = dev_stack.as_role[Role.SERVICE]
    accepted = await service.post("/v1/orders", json=sample_order())
    order_id = accepted.json()["order_id"]
    written = await dev_stack.as_role[Role.SUPPORT].post(
        f"/v1/orders/{order_id}/notes",
        json={"text": "Called +380 67 111 22 33, Lviv, Shevchenka 1"},
    )
    assert written.status_code == 201, written.text
    read = await service.get(f"/v1/orders/{order_id}")
    assert read.status_code == 200 and read.json()["notes"] == []
    assert "111 22 33" not in read.text and "Shevchenka" not in read.text
    staff = await dev_stack.as_role[Role.SUPPORT].get(f"/v1/orders/{order_id}")
    assert [n["text"] for n in staff.json()["notes"]] == [
        "Called +380 67 111 22 33, Lviv, Shevchenka 1"
    ]

    for role in (Role.SERVICE, Role.ADMIN):  # even an admin's key: the console is for people
        key = (
            service.headers["Authorization"]
            if role == Role.SERVICE
            else dev_stack.api.headers["Authorization"]
        )
        async with httpx.AsyncClient(
            base_url=dev_stack.api.base_url,
            cookies={"orderflow_session": key.removeprefix("Bearer ")},
        ) as browser:
            for page in (f"/console/orders/{order_id}", "/console/accounts", "/console"):
                answer = await browser.get(page)
                assert answer.status_code == 303, (role, page, answer.status_code)
                assert answer.headers["location"].startswith("/console/login"), answer.headers


async def test_service_keys_see_their_own_orders_by_key_id(dev_stack: Stack) -> None:
    """Two service keys with the same name: each sees the orders it created, not the other's."""
    name = f"shop-{uuid.uuid4().hex[:6]}"
    keys = [
        (await dev_stack.api.post("/v1/admin/keys", json={"name": name, "role": "service"})).json()
        for _ in range(2)
    ]
    shops = [
        httpx.AsyncClient(
            base_url=dev_stack.api.base_url, headers={"Authorization": f"Bearer {k['key']}"}
        )
        for k in keys
    ]
    created = []
    for shop in shops:
        accepted = await shop.post("/v1/orders", json=sample_order())
        assert accepted.status_code == 202, accepted.text
        created.append(accepted.json()["order_id"])
    mine, theirs = created
    assert (await shops[0].get(f"/v1/orders/{mine}")).status_code == 200
    assert (await shops[0].get(f"/v1/orders/{theirs}")).status_code == 404
    assert (await shops[1].get(f"/v1/orders/{theirs}")).status_code == 200
    assert (await shops[1].get(f"/v1/orders/{mine}")).status_code == 404
