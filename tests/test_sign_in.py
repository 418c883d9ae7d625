"""Staff sign-in, guarded: lockout after failed attempts, the same work for unknown names,
argon2id off the event loop (old scrypt hashes upgraded), sign-out and admin revocation
that end sessions on the server, and console forms that refuse cross-site posts."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import select

from devstack.harness import free_port
from schema.api.fields import Role
from schema.database import open_session
from schema.links import LinkPurpose
from schema.tables import OrderNote, StaffAccount
from starter.api.app import create_app
from starter.services.access import hash_password
from tests.lifecycle import Journey
from tests.stack import Stack, serve
from tests.test_client_cli import _cli

PASSWORD = "a long enough password"


@pytest.fixture(autouse=True)
async def fresh_counters(dev_stack: Stack) -> AsyncIterator[None]:
    """Every test here fails sign-ins from 127.0.0.1: no lockout outlives it."""
    yield
    async with dev_stack.engine.begin() as conn:
        await conn.execute(text("DELETE FROM rate_limit_counters"))


async def _account(stack: Stack, role: Role = Role.OPERATOR, password_hash: str = "") -> str:
    username = f"{role.value}{uuid.uuid4().hex[:8]}"
    async with open_session(stack.engine) as session:
        session.add(
            StaffAccount(
                username=username,
                password_hash=password_hash or hash_password(PASSWORD),
                role=role.value,
            )
        )
        await session.commit()
    return username


def _anonymous(stack: Stack) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.api.base_url, timeout=30)


async def _sign_in(stack: Stack, username: str, password: str = PASSWORD) -> httpx.Response:
    async with _anonymous(stack) as http:
        return await http.post("/v1/sessions", json={"username": username, "password": password})


def _bearer(stack: Stack, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=stack.api.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


async def test_a_burst_of_wrong_passwords_meets_a_lockout(dev_stack: Stack) -> None:
    username = await _account(dev_stack)
    codes = [(await _sign_in(dev_stack, username, "guess")).status_code for _ in range(8)]
    assert codes == [401] * 5 + [429] * 3
    locked = await _sign_in(dev_stack, username)  # even the right password, until it ends
    assert locked.status_code == 429
    assert 800 < int(locked.headers["Retry-After"]) <= 900  # the rest of the 15-minute window
    assert "too many failed sign-ins" in locked.json()["detail"]
    # Unknown usernames are locked the same way: a lockout tells nothing about existence.
    nobody = f"nobody{uuid.uuid4().hex[:8]}"
    assert [(await _sign_in(dev_stack, nobody)).status_code for _ in range(6)][-1] == 429


async def test_one_address_trying_many_accounts_is_locked_out(dev_stack: Stack) -> None:
    codes = [
        (await _sign_in(dev_stack, f"spray{uuid.uuid4().hex[:8]}", "guess")).status_code
        for _ in range(21)
    ]
    assert codes == [401] * 20 + [429]
    username = await _account(dev_stack)
    assert (await _sign_in(dev_stack, username)).status_code == 429


async def test_unknown_and_known_usernames_cost_the_same(dev_stack: Stack) -> None:
    async def timed(username: str) -> float:
        started = time.perf_counter()
        assert (await _sign_in(dev_stack, username, "guess")).status_code == 401
        return time.perf_counter() - started

    known = await _account(dev_stack)
    known_ms = [await timed(known) * 1000 for _ in range(4)]
    unknown_ms = [await timed(f"ghost{uuid.uuid4().hex[:8]}") * 1000 for _ in range(4)]
    print(f"wrong password: known {known_ms}, unknown {unknown_ms} (ms)")
    assert statistics.median(unknown_ms) > 20  # a password hash was checked: argon2id
    assert 0.5 < statistics.median(known_ms) / statistics.median(unknown_ms) < 2


async def test_passwords_are_argon2id_and_old_scrypt_hashes_are_upgraded(dev_stack: Stack) -> None:
    created = await dev_stack.api.post(
        "/v1/admin/accounts",
        json={"username": f"new{uuid.uuid4().hex[:8]}", "password": PASSWORD, "role": "support"},
    )
    assert created.status_code == 201, created.text
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1)
    old = await _account(dev_stack, password_hash=f"scrypt${salt.hex()}${digest.hex()}")

    assert (await _sign_in(dev_stack, old, "guess")).status_code == 401
    assert (await _sign_in(dev_stack, old)).status_code == 200
    async with open_session(dev_stack.engine) as session:
        hashes = {
            a.username: a.password_hash
            for a in (await session.exec(select(StaffAccount))).all()
            if a.username in (old, created.json()["username"])
        }
    assert all(h.startswith("$argon2id$v=19$m=19456,t=2,p=1$") for h in hashes.values()), hashes
    assert (await _sign_in(dev_stack, old)).status_code == 200  # the new hash verifies


async def test_hashing_does_not_stop_the_event_loop(dev_stack: Stack) -> None:
    """Eight sign-ins at once: a cheap request beside them is answered meanwhile."""
    usernames = [await _account(dev_stack) for _ in range(8)]
    signing_in = [asyncio.create_task(_sign_in(dev_stack, u)) for u in usernames]
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    async with _anonymous(dev_stack) as http:
        assert (await http.get("/v1/orders")).status_code == 401
    cheap = time.perf_counter() - started
    assert all(r.status_code == 200 for r in await asyncio.gather(*signing_in))
    everything = time.perf_counter() - started
    print(
        f"cheap request {cheap * 1000:.0f} ms beside 8 sign-ins taking {everything * 1000:.0f} ms"
    )
    assert cheap < everything / 2


async def test_sign_out_ends_the_session_on_the_server(dev_stack: Stack) -> None:
    token = (await _sign_in(dev_stack, await _account(dev_stack))).json()["token"]
    async with _bearer(dev_stack, token) as staff:
        assert (await staff.get("/v1/orders")).status_code == 200
        assert (await staff.delete("/v1/sessions/current")).status_code == 204
        assert (await staff.get("/v1/orders")).status_code == 401
    refused = await dev_stack.api.delete("/v1/sessions/current")  # an API key is no session
    assert refused.status_code == 409 and "API key" in refused.json()["detail"]


async def test_admins_disable_enable_and_revoke_through_api_and_cli(dev_stack: Stack) -> None:
    username = await _account(dev_stack)
    token = (await _sign_in(dev_stack, username)).json()["token"]
    staff = _bearer(dev_stack, token)
    disabled = await dev_stack.api.post(f"/v1/admin/accounts/{username}/disable")
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert (await staff.get("/v1/orders")).status_code == 401  # its session ended
    assert (await _sign_in(dev_stack, username)).status_code == 401
    enabled = await dev_stack.api.post(f"/v1/admin/accounts/{username}/enable")
    assert enabled.json() == {**disabled.json(), "disabled": False}
    token = (await _sign_in(dev_stack, username)).json()["token"]
    listed = (await dev_stack.api.get("/v1/admin/accounts")).json()
    assert [a["sessions"] for a in listed if a["username"] == username] == [1]
    revoked = await dev_stack.api.delete(f"/v1/admin/accounts/{username}/sessions")
    assert revoked.json() == {"username": username, "sessions": 1}
    assert (await _bearer(dev_stack, token).get("/v1/orders")).status_code == 401
    assert (await dev_stack.api.post("/v1/admin/accounts/nobody-here/disable")).status_code == 404
    audit = (await dev_stack.api.get("/v1/admin/audit", params={"target": username})).json()
    assert [row["action"] for row in audit if row["action"].startswith("account.")] == [
        "account.revoke_sessions",
        "account.enable",
        "account.disable",
    ]

    admin = await dev_stack.api.post("/v1/admin/keys", json={"name": "cli", "role": "admin"})
    key = admin.json()["key"]
    token = (await _sign_in(dev_stack, username)).json()["token"]
    for command in ("revoke-sessions", "disable"):
        run = await asyncio.to_thread(_cli, dev_stack, key, "accounts", command, username)
        assert run.returncode == 0, run.stdout + run.stderr
    assert (await _bearer(dev_stack, token).get("/v1/orders")).status_code == 401
    shown = await asyncio.to_thread(_cli, dev_stack, key, "accounts", "list", "--json")
    [row] = [a for a in json_rows(shown.stdout) if a["username"] == username]
    assert row["disabled"] is True
    run = await asyncio.to_thread(_cli, dev_stack, key, "accounts", "enable", username)
    assert run.returncode == 0 and (await _sign_in(dev_stack, username)).status_code == 200


def json_rows(stdout: str) -> list[dict[str, object]]:
    return list(json.loads(stdout))


# --- the console, as a browser would post its forms (httpx keeps the cookies) ---------------


class Console:
    def __init__(self, stack: Stack, origin: str | None = None) -> None:
        self.base = str(stack.api.base_url).rstrip("/")
        self.http = httpx.AsyncClient(base_url=self.base, timeout=30)
        self.origin = origin or self.base

    async def token(self, path: str) -> str:
        page = await self.http.get(path)
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found, page.text[:500]
        return found.group(1)

    async def post(
        self, path: str, data: dict[str, str], csrf: str | None = None
    ) -> httpx.Response:
        return await self.http.post(
            path, data={"csrf_token": csrf or "", **data}, headers={"Origin": self.origin}
        )

    async def sign_in(self, username: str, password: str = PASSWORD) -> httpx.Response:
        csrf = await self.token("/console/login")
        return await self.post("/console/login", {"username": username, "password": password}, csrf)


async def test_console_forms_refuse_cross_site_posts(dev_stack: Stack) -> None:
    order = await Journey.place(dev_stack)
    console = Console(dev_stack)
    assert (await console.sign_in(await _account(dev_stack, Role.SUPPORT))).status_code == 303
    csrf = await console.token(f"/console/orders/{order.order_id}")
    notes = f"/console/orders/{order.order_id}/notes"

    forged = Console(dev_stack, origin="https://evil.example")
    forged.http.cookies = console.http.cookies  # even with the victim's cookies and token
    assert (await forged.post(notes, {"text": "forged"}, csrf)).status_code == 403
    assert (await console.post(notes, {"text": "no token"})).status_code == 403
    assert (await console.post(notes, {"text": "wrong token"}, "x" * 43)).status_code == 403
    no_origin = await console.http.post(notes, data={"csrf_token": csrf, "text": "no origin"})
    assert no_origin.status_code == 403
    assert (await console.post(notes, {"text": "from the page"}, csrf)).status_code == 303
    async with open_session(dev_stack.engine) as session:
        texts = (
            await session.exec(
                select(OrderNote.text).where(OrderNote.order_id == uuid.UUID(order.order_id))
            )
        ).all()
    assert texts == ["from the page"]


async def test_one_same_origin_rule_for_the_console_and_the_customer_forms(
    dev_stack: Stack,
) -> None:
    """The console's forms and the customer's: Origin, else Referer, must be our own; a
    cross-site one, `null`, or neither header is refused with 403 on both."""
    order = await Journey.place(dev_stack)
    console = Console(dev_stack)
    assert (await console.sign_in(await _account(dev_stack, Role.SUPPORT))).status_code == 303
    csrf = await console.token(f"/console/orders/{order.order_id}")
    token = dev_stack.settings.customer_links().token(LinkPurpose.STATUS, uuid.UUID(order.order_id))
    ours, evil = console.base, "https://evil.example"
    cases = [
        ({"Origin": evil}, False),
        ({"Origin": evil, "Referer": f"{ours}/order/{token}"}, False),
        ({"Origin": "null"}, False),
        ({"Referer": f"{evil}/order/{token}"}, False),
        ({}, False),
        ({"Origin": ours}, True),
        ({"Referer": f"{ours}/order/{token}?lang=uk"}, True),
    ]
    for headers, accepted in cases:
        note = await console.http.post(
            f"/console/orders/{order.order_id}/notes",
            data={"csrf_token": csrf, "text": f"note {headers}"},
            headers=headers,
        )
        assert note.status_code == (303 if accepted else 403), (headers, note.status_code)
        # An unknown reason: 422 once the form is let in, and the order is never cancelled.
        cancel = await console.http.post(
            f"/order/{token}/cancel", data={"reason": "bored"}, headers=headers
        )
        assert cancel.status_code == (422 if accepted else 403), (headers, cancel.status_code)
    async with open_session(dev_stack.engine) as session:
        texts = (
            await session.exec(
                select(OrderNote.text).where(OrderNote.order_id == uuid.UUID(order.order_id))
            )
        ).all()
    assert len(texts) == 2


async def test_console_sign_in_is_locked_out_and_sign_out_ends_the_session(
    dev_stack: Stack,
) -> None:
    username = await _account(dev_stack)
    console = Console(dev_stack)
    assert (await console.sign_in(username)).status_code == 303
    session_cookie = console.http.cookies["orderflow_session"]
    csrf = await console.token("/console")
    assert (await console.post("/console/logout", {}, csrf)).status_code == 303
    stale = httpx.AsyncClient(base_url=console.base, cookies={"orderflow_session": session_cookie})
    answer = await stale.get("/console")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/login"

    codes = [(await console.sign_in(username, "guess")).status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]
    locked = await console.sign_in(username)
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
    assert int(locked.headers["Retry-After"]) > 0


async def test_console_errors_are_pages_not_500s(dev_stack: Stack) -> None:
    order = await Journey.place(dev_stack, note="check me")
    await order.waiting_for("operator_confirmation")
    console = Console(dev_stack)
    await console.sign_in(await _account(dev_stack, Role.OPERATOR))
    csrf = await console.token("/console")
    missing = await console.post(f"/console/orders/{uuid.uuid4()}/notes", {"text": "hi"}, csrf)
    assert missing.status_code == 404 and "does not exist" in missing.text
    assert "<html" in missing.text
    assert (await console.http.get(f"/console/orders/{uuid.uuid4()}")).status_code == 404
    assert (await console.http.get("/console/search", params={"q": "a\x00b"})).status_code == 422

    confirm = f"/console/orders/{order.order_id}/act/confirm"
    for price in ("1E+20", "1000000000000", "0"):
        refused = await console.post(confirm, {"final_price": price}, csrf)
        assert refused.status_code == 303 and "error=final_price" in refused.headers["location"]
    assert (await order.status()).waiting_for == "operator_confirmation"


async def test_cookies_are_secure_when_the_public_url_is_https(dev_stack: Stack) -> None:
    settings = dev_stack.settings.model_copy(update={"public_url": "https://orders.example.com"})
    app = create_app(settings)
    username = await _account(dev_stack)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://orders.example.com"
        ) as http,
    ):
        page = await http.get("/console/login")
        assert "secure" in page.headers["set-cookie"].lower()
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        signed_in = await http.post(
            "/console/login",
            data={"csrf_token": csrf.group(1), "username": username, "password": PASSWORD},
            headers={"Origin": "https://orders.example.com"},
        )
    assert signed_in.status_code == 303
    cookie = signed_in.headers["set-cookie"].lower()
    assert "orderflow_session=" in cookie and "secure" in cookie and "samesite=strict" in cookie


async def test_admins_do_not_lock_themselves_out(dev_stack: Stack) -> None:
    admin = await _account(dev_stack, Role.ADMIN)
    token = (await _sign_in(dev_stack, admin)).json()["token"]
    async with _bearer(dev_stack, token) as staff:
        refused = await staff.post(f"/v1/admin/accounts/{admin}/disable")
        assert refused.status_code == 409 and "your own account" in refused.json()["detail"]
        assert (await staff.get("/v1/admin/accounts")).status_code == 200  # still signed in
    console = Console(dev_stack)
    await console.sign_in(admin)
    csrf = await console.token("/console/accounts")
    answer = await console.post(f"/console/accounts/{admin}/disable", {}, csrf)
    assert answer.status_code == 303 and "error=" in answer.headers["location"]
    prefix = dev_stack.api.headers["Authorization"].removeprefix("Bearer ")[:10]
    [key] = [k for k in (await dev_stack.api.get("/v1/admin/keys")).json() if k["prefix"] == prefix]
    refused = await dev_stack.api.delete(f"/v1/admin/keys/{key['id']}")
    assert refused.status_code == 409 and "calling with" in refused.json()["detail"]


async def test_every_sign_in_is_audited_with_its_address(dev_stack: Stack) -> None:
    """Success and failure alike (a wrong password, an unknown name, a disabled account, a
    lockout): the admin reads who tried, from where, and why it was refused."""
    username = await _account(dev_stack, Role.SUPPORT)
    nobody = f"nobody{uuid.uuid4().hex[:8]}"
    assert (await _sign_in(dev_stack, username, "guess")).status_code == 401
    assert (await _sign_in(dev_stack, username)).status_code == 200
    assert (await _sign_in(dev_stack, nobody)).status_code == 401
    for _ in range(5):
        await _sign_in(dev_stack, username, "guess")
    assert (await _sign_in(dev_stack, username)).status_code == 429

    async def audited(target: str) -> list[tuple[str, str, str | None, Any]]:
        rows = await dev_stack.api.get("/v1/admin/audit", params={"target": target})
        return [
            (r["action"], r["actor"], r["ip"], r["detail"].get("why"))
            for r in reversed(rows.json())
        ]

    mine = await audited(username)
    assert mine[:3] == [
        ("session.refused", f"staff:{username}", "127.0.0.1", "password"),
        ("session.open", f"staff:{username}", "127.0.0.1", None),
        ("session.refused", f"staff:{username}", "127.0.0.1", "password"),
    ]
    assert mine[-1] == ("session.refused", f"staff:{username}", "127.0.0.1", "locked")
    assert await audited(nobody) == [("session.refused", "unknown", "127.0.0.1", "unknown")]


async def test_behind_a_trusted_proxy_each_client_counts_by_its_own_address(
    dev_stack: Stack,
) -> None:
    """ORDERFLOW_FORWARDED_ALLOW_IPS names the load balancer (here 127.0.0.2): the client is
    the right-most address of X-Forwarded-For that is not it, so one client's failed sign-ins
    lock out that client, not everyone behind the balancer; a peer that is no trusted proxy
    is believed nothing it forwards."""
    settings = dev_stack.settings.model_copy(update={"forwarded_allow_ips": "127.0.0.2"})
    port = free_port()
    async with (
        serve(create_app(settings), port),
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            transport=httpx.AsyncHTTPTransport(local_address="127.0.0.2"),
            timeout=30,
        ) as balancer,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as direct,
    ):

        async def sign_in(http: httpx.AsyncClient, forwarded: str, username: str, pw: str) -> int:
            answer = await http.post(
                "/v1/sessions",
                json={"username": username, "password": pw},
                headers={"X-Forwarded-For": forwarded},
            )
            return answer.status_code

        # The attacker's own left-most entry is spoofed; the balancer appended the real one.
        sprayed = [
            await sign_in(balancer, "198.51.100.1, 203.0.113.7", f"spray{n}", "guess")
            for n in range(21)
        ]
        assert sprayed == [401] * 20 + [429]
        username = await _account(dev_stack, Role.SUPPORT)
        assert await sign_in(balancer, "203.0.113.7", username, PASSWORD) == 429
        assert await sign_in(balancer, "203.0.113.8", username, PASSWORD) == 200
        # Straight from 127.0.0.1 (no proxy of ours): its X-Forwarded-For is not believed.
        assert await sign_in(direct, "203.0.113.9", username, "guess") == 401
    audit = (await dev_stack.api.get("/v1/admin/audit", params={"target": username})).json()
    assert [row["ip"] for row in reversed(audit)] == ["203.0.113.7", "203.0.113.8", "127.0.0.1"]
