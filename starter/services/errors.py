"""The named failures of the order services; each room (API, console, customer pages) turns
them into its own answer: the API's status codes are beside each one."""

from __future__ import annotations

from datetime import date
from enum import StrEnum


class OrderServiceError(Exception):
    """Base of the failures a caller can act on."""


class OrderNotFound(OrderServiceError):  # 404
    def __init__(self, order_id: object) -> None:
        super().__init__(f"order {order_id} does not exist")


class ReturnNotFound(OrderServiceError):  # 404
    def __init__(self, what: object) -> None:
        super().__init__(f"return {what} does not exist")


class OrderNumberConflict(OrderServiceError):  # 409
    """The number is taken by an order with a different body."""

    def __init__(self, number: str) -> None:
        super().__init__(f"order number {number} is already used by a different order")


class InputRefused(OrderServiceError):  # 422
    """Input of the right shape that this order (or this deployment) does not admit: a SKU
    the order has not, an http:// receiver outside the devstack. Names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"invalid request: {field}: {message}")
        self.field = field
        self.message = message


class SubscriptionNotFound(OrderServiceError):  # 404
    def __init__(self, subscription_id: object, what: str = "subscription") -> None:
        super().__init__(f"{what} {subscription_id} does not exist (or is not yours)")


class ActionRefused(OrderServiceError):  # 409
    """The order's stage does not allow this now; the message says why."""


class OrderFinished(ActionRefused):  # 409
    """The order's workflow has ended: nothing can change it any more."""


class RefundRefused(ActionRefused):  # 409
    """The ledger refused a refund: it would exceed what is left of the payment (or
    nothing was paid through the provider)."""


class ReturnRefusal(StrEnum):
    """Why a return cannot be opened, as a code: the customer's page says it in the order's
    language (`return_refused` in activities/messages/<locale>/_phrases.j2)."""

    NOT_DELIVERED = "not_delivered"
    NOT_AN_ITEM = "not_an_item"
    NAMED_TWICE = "named_twice"
    TOO_MANY = "too_many"
    WINDOW_CLOSED = "window_closed"
    REPLACEMENT_WORTH_MORE = "replacement_worth_more"


class ReturnRefused(ActionRefused):  # 409
    """A return that cannot be opened: not delivered, outside the window, items that are
    not the order's or already on their way back. `reason` is the API's English; `code` and
    `facts` (an item, counts, a date) are what a page puts into its own language."""

    def __init__(
        self,
        reason: str,
        field: str | None = None,
        *,
        code: ReturnRefusal,
        **facts: str | int | date,
    ) -> None:
        super().__init__(f"{field}: {reason}" if field else f"return refused: {reason}")
        self.reason = reason
        self.code = code
        self.facts = facts


class TemporalUnavailable(OrderServiceError):  # 503
    """Temporal did not answer; the same request may be retried."""


class WorkflowUnanswered(OrderServiceError):
    """The live status did not come in time: readers answer from the read model instead."""


class ConnectorNotFound(OrderServiceError):  # 404
    def __init__(self, name: str) -> None:
        super().__init__(f"no intake connector {name}")


class IntakeFailureNotFound(OrderServiceError):  # 404
    def __init__(self, failure_id: int) -> None:
        super().__init__(f"no intake failure {failure_id}")
