"""The feedback bonus: what a customer gets for answering the feedback request.

Given for any answer, never depending on its score (review platforms forbid rewarding only
good reviews). The policy (settings `feedback_bonus`): "none" (no message promises one),
"fixed" (one code for everyone) or "unique" (a code per order, generated here). The bonus is
recorded per order (`feedback_bonuses`) when the request promises it, so an order is given
what it was promised even if the policy changes before the answer; an answer that comes
without a promise (the status page's form, before the request) gets what the policy gives
then. The answer's page, the thank-you message and the shop's `feedback.received` event all
show the recorded code.
"""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from schema.tables import FeedbackBonus
from settings import Settings

# No 0/O, 1/I/L: a code read aloud or typed from a phone is typed right.
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def unique_code() -> str:
    """`FB-XXXX-XXXX-XXXX`: 60 random bits, so no two orders share one in practice."""
    groups = ("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(3))
    return "FB-" + "-".join(groups)


async def bonus_of(
    session: AsyncSession, *, order_id: uuid.UUID, settings: Settings
) -> FeedbackBonus | None:
    """The order's bonus: the one recorded (promised) before, else one issued now under the
    policy, else None (policy "none"). Idempotent; the caller commits."""
    if settings.feedback_bonus != "none":
        code = settings.feedback_bonus_code if settings.feedback_bonus == "fixed" else unique_code()
        await session.execute(
            insert(FeedbackBonus)
            .values(order_id=order_id, code=code, policy=settings.feedback_bonus)
            .on_conflict_do_nothing(index_elements=["order_id"])
        )
    return await session.get(FeedbackBonus, order_id)
