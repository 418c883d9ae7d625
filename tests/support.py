"""Helpers shared by the tests: sample orders, polling, reading mail, the order's workflow."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowHandle

import schema.api.orders
from devstack.mailsink import read_maildir
from schema.contracts import OrderResult, OrderStatus, workflow_id_for
from workflows.order import OrderWorkflow

T = TypeVar("T")


def sample_order(**overrides: Any) -> dict[str, Any]:
    """The order from the foundation issue, with a number and e-mail unique to the test."""
    return schema.api.orders.sample_order(uuid.uuid4().hex[:8], **overrides)


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout: float = 30.0, what: str = "condition"
) -> T:
    """Poll `probe` until it returns something truthy; fail after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.05)


def mail_to(maildir: Path, address: str) -> list[EmailMessage]:
    return [m for m in read_maildir(maildir) if address in str(m["To"])]


async def wait_for_mail(maildir: Path, address: str, timeout: float = 15.0) -> list[EmailMessage]:
    async def arrived() -> list[EmailMessage]:
        return mail_to(maildir, address)

    return await eventually(arrived, timeout, what=f"mail to {address}")


def body_text(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    return str(part.get_content())  # type: ignore[attr-defined]


def decoded_history(history_json: str) -> str:
    """A workflow history as text with every payload decoded, so that a search sees its data."""
    decoded: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "data" and isinstance(value, str):
                    decoded.append(base64.b64decode(value).decode("utf-8", "replace"))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(history_json))
    return history_json + "\n" + "\n".join(decoded)


def order_handle(client: Client, order_id: str) -> WorkflowHandle[OrderWorkflow, OrderResult]:
    return client.get_workflow_handle_for(OrderWorkflow.run, workflow_id_for(order_id))


async def order_status(client: Client, order_id: str) -> OrderStatus:
    return await order_handle(client, order_id).query(OrderWorkflow.status)


async def until_status(
    client: Client, order_id: str, holds: Callable[[OrderStatus], bool], timeout: float = 20.0
) -> OrderStatus:
    """Poll the workflow's `status` query until `holds(status)` (real time: no timer is skipped)."""

    async def check() -> OrderStatus | None:
        status = await order_status(client, order_id)
        return status if holds(status) else None

    return await eventually(check, timeout, what=f"status of order {order_id}")


async def scan_barcode(pdf: bytes, folder: Path) -> str:
    """What a handheld scanner reads off a label: Debian's poppler-utils renders the PDF,
    zbar-tools scans it."""
    (folder / "label.pdf").write_bytes(pdf)
    render = ["pdftoppm", "-r", "300", "-png", "label.pdf", "label"]
    await asyncio.to_thread(subprocess.run, render, cwd=folder, check=True)
    [png] = list(folder.glob("label*.png"))
    scan = ["zbarimg", "--quiet", "--raw", str(png)]
    scanned = await asyncio.to_thread(
        subprocess.run, scan, capture_output=True, text=True, check=True
    )
    return scanned.stdout.strip()
