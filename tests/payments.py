"""A running stack whose shop takes money through one real payment provider's API (its
simulator speaking the real shapes), and what tests of every provider share."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment

from schema.database import open_session
from schema.tables import PaymentState, Refund, WebhookEvent
from settings import Settings
from tests.lifecycle import Journey
from tests.stack import Stack, run_stack


@asynccontextmanager
async def provider_stack(
    env: WorkflowEnvironment,
    base: Settings,
    engine: AsyncEngine,
    maildir: Path,
    provider: str,
    *,
    autopilot: bool = False,
) -> AsyncIterator[Stack]:
    """The stack with `provider` chosen; on autopilot, orders run to their end in seconds."""
    changes: dict[str, Any] = {"payment_provider": provider}
    if autopilot:
        changes |= {
            "simulator_autopilot": True,
            "simulator_step_seconds": 0.3,
            "policy_feedback_earliest": timedelta(seconds=1),
            "policy_feedback_latest": timedelta(seconds=2),
            "policy_feedback_reminder": timedelta(seconds=1),
            "policy_feedback_wait": timedelta(seconds=2),
            "policy_quiet_from_hour": 24,  # no night: the feedback request goes at once
            "policy_quiet_until_hour": 0,
        }
    async with run_stack(env, base.model_copy(update=changes), engine, maildir) as stack:
        yield stack


async def webhook_rows(stack: Stack, order: Journey) -> list[WebhookEvent]:
    """The payment provider's callbacks recorded for the order, in arrival order."""
    async with open_session(stack.engine) as session:
        rows = await session.exec(
            select(WebhookEvent)
            .where(
                WebhookEvent.order_id == uuid.UUID(order.order_id),
                col(WebhookEvent.type).startswith("payment."),
            )
            .order_by(col(WebhookEvent.id))
        )
        return list(rows.all())


async def payment_state(stack: Stack, order: Journey) -> PaymentState | None:
    async with open_session(stack.engine) as session:
        rows = await session.exec(
            select(PaymentState).where(PaymentState.order_id == uuid.UUID(order.order_id))
        )
        return rows.first()


async def ledger(stack: Stack, order: Journey) -> list[Refund]:
    async with open_session(stack.engine) as session:
        rows = await session.exec(
            select(Refund).where(Refund.order_id == uuid.UUID(order.order_id)).order_by(Refund.id)
        )
        return list(rows.all())


async def refund(order: Journey, amount: str) -> dict[str, Any]:
    """An operator's partial refund through the API (a RefundWorkflow and the ledger)."""
    from schema.api.fields import Role

    answer = await order.stack.as_role[Role.OPERATOR].post(
        f"/v1/orders/{order.order_id}/refunds",
        json={"amount": amount, "reason": "goodwill"},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body
