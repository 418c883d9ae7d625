"""The named failures of the order services; each room (API, console, customer pages) turns
them into its own answer: the API's status codes are beside each one."""

from __future__ import annotations


class OrderServiceError(Exception):
    """Base of the failures a caller can act on."""


class OrderNotFound(OrderServiceError):  # 404
    def __init__(self, order_id: object) -> None:
        super().__init__(f"order {order_id} does not exist")


class OrderNumberConflict(OrderServiceError):  # 409
    """The number is taken by an order with a different body."""

    def __init__(self, number: str) -> None:
        super().__init__(f"order number {number} is already used by a different order")


class ActionRefused(OrderServiceError):  # 409
    """The order's stage does not allow this now; the message says why."""


class OrderFinished(ActionRefused):  # 409
    """The order's workflow has ended: nothing can change it any more."""


class TemporalUnavailable(OrderServiceError):  # 503
    """Temporal did not answer; the same request may be retried."""


class WorkflowUnanswered(OrderServiceError):
    """The live status did not come in time: readers answer from the read model instead."""
