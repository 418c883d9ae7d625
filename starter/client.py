"""The Python client for backend services (and the CLI): typed, async, retried where safe.

    async with OrderflowClient("http://127.0.0.1:8000", api_key) as orderflow:
        accepted = await orderflow.create_order(order)      # idempotent on the order number
        order = await orderflow.get_order(accepted.order_id)

Every answer is the API's own model (schema/api/), read and checked: `ActionOut` for an
action, `RefundOut`, `ReturnOut`, `SubscriptionOut`... (an answer that is not raises
pydantic's ValidationError). Errors are named: Unauthorized (401),
Forbidden (403), NotFound (404), Conflict (409: a used number, or an action the order's
stage refuses), InvalidRequest (422, with the bad fields), Unavailable (5xx or no answer,
after the retries).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, TypeVar

import httpx
from pydantic import TypeAdapter

from schema.api.actions import ActionOut
from schema.api.admin import (
    AccountCreated,
    AccountOut,
    AuditOut,
    ErasureOut,
    KeyIssued,
    KeyOut,
    KeyRevoked,
    SessionsRevoked,
)
from schema.api.connectors import ConnectorOut, IntakeFailureOut
from schema.api.orders import (
    FieldError,
    NoteOut,
    OrderAccepted,
    OrderCreate,
    OrderOut,
    OrderPage,
)
from schema.api.returns import RefundOut, RefundsOut, ReturnOut
from schema.api.subscriptions import (
    DeliveryOut,
    DeliveryPage,
    SubscriptionCreated,
    SubscriptionOut,
)


class OrderflowError(Exception):
    def __init__(self, status: int, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.errors = errors or []


class Unauthorized(OrderflowError):
    pass


class Forbidden(OrderflowError):
    pass


class NotFound(OrderflowError):
    pass


class Conflict(OrderflowError):
    pass


class InvalidRequest(OrderflowError):
    pass


class RateLimited(OrderflowError):
    pass


class Unavailable(OrderflowError):
    pass


_BY_STATUS: dict[int, type[OrderflowError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    422: InvalidRequest,
    429: RateLimited,
}
RETRYABLE = {502, 503, 504}
M = TypeVar("M")


class OrderflowClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )
        self._retries = retries

    async def __aenter__(self) -> OrderflowClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- orders ---------------------------------------------------------------------------

    async def create_order(self, order: OrderCreate | dict[str, Any]) -> OrderAccepted:
        """Safe to retry: the same body under the same number returns the same order."""
        body = order.model_dump(mode="json") if isinstance(order, OrderCreate) else order
        return OrderAccepted.model_validate(
            await self._call("POST", "/v1/orders", json=body, idempotent=True)
        )

    async def get_order(self, order_id: str, *, live: bool = False) -> OrderOut:
        """The stored order; with `live` also the workflow's own `status` (`workflow`)."""
        params = {"live": "true"} if live else None
        return OrderOut.model_validate(
            await self._call("GET", f"/v1/orders/{order_id}", params=params, idempotent=True)
        )

    async def find_orders(self, q: str | None = None, **filters: Any) -> OrderPage:
        params = {key: value for key, value in {"q": q, **filters}.items() if value is not None}
        return OrderPage.model_validate(
            await self._call("GET", "/v1/orders", params=params, idempotent=True)
        )

    # --- operator actions (workflow updates) --------------------------------------------------

    async def confirm(
        self,
        order_id: str,
        *,
        final_price: str | None = None,
        price_reason: str | None = None,
        note: str = "",
    ) -> ActionOut:
        body = {"final_price": final_price, "price_reason": price_reason, "note": note}
        return await self._act(order_id, "confirm", body)

    async def reject(self, order_id: str, reason: str) -> ActionOut:
        return await self._act(order_id, "reject", {"reason": reason})

    async def decide_stock(self, order_id: str, choice: str, note: str = "") -> ActionOut:
        return await self._act(order_id, "stock-decision", {"choice": choice, "note": note})

    async def delay(self, order_id: str, reason: str, new_date: str) -> ActionOut:
        return await self._act(order_id, "delay", {"reason": reason, "new_date": new_date})

    async def cancel(self, order_id: str, reason: str, note: str = "") -> ActionOut:
        return await self._act(order_id, "cancel", {"reason": reason, "note": note})

    async def resolve(self, order_id: str, choice: str) -> ActionOut:
        """Retry a step that failed for good, or skip it."""
        return await self._act(order_id, "resolve", {"choice": choice})

    async def decide_parcel(self, order_id: str, choice: str, note: str = "") -> ActionOut:
        """A lost or damaged parcel: reship, refund or cancel."""
        return await self._act(order_id, "parcel-decision", {"choice": choice, "note": note})

    # --- after delivery: refunds and returns ----------------------------------------------------
    # Each call that makes something sends an Idempotency-Key (a new one unless given), so
    # its retries make nothing twice.

    async def refund(
        self,
        order_id: str,
        *,
        reason: str,
        amount: str | None = None,
        lines: list[dict[str, Any]] | None = None,
        note: str = "",
        key: str | None = None,
    ) -> RefundOut:
        """Refund an amount, or lines ({"sku", "quantity"}), of a paid order."""
        body = {"amount": amount, "lines": lines, "reason": reason, "note": note}
        return _read(
            RefundOut,
            await self._call(
                "POST",
                f"/v1/orders/{order_id}/refunds",
                json={k: v for k, v in body.items() if v is not None},
                key=key or uuid.uuid4().hex,
            ),
        )

    async def refunds(self, order_id: str) -> RefundsOut:
        """The order's refund ledger: paid, refunded, left, every refund."""
        return _read(
            RefundsOut,
            await self._call("GET", f"/v1/orders/{order_id}/refunds", idempotent=True),
        )

    async def open_return(
        self,
        order_id: str,
        *,
        lines: list[dict[str, Any]],
        reason: str,
        resolution: str = "refund",
        replacement: list[dict[str, Any]] | None = None,
        comment: str | None = None,
        key: str | None = None,
    ) -> ReturnOut:
        """Open a return of a delivered order (lines: {"sku", "quantity"})."""
        body = {
            "lines": lines,
            "reason": reason,
            "resolution": resolution,
            "replacement": replacement,
            "comment": comment,
        }
        return _read(
            ReturnOut,
            await self._call(
                "POST",
                f"/v1/orders/{order_id}/returns",
                json={k: v for k, v in body.items() if v is not None},
                key=key or uuid.uuid4().hex,
            ),
        )

    async def returns(self, order_id: str) -> list[ReturnOut]:
        return _read(
            list[ReturnOut],
            await self._call("GET", f"/v1/orders/{order_id}/returns", idempotent=True),
        )

    async def decide_return(
        self, order_id: str, return_id: str, *, approve: bool, note: str = ""
    ) -> ReturnOut:
        """Approve, or refuse, a return awaiting approval."""
        return _read(
            ReturnOut,
            await self._call(
                "POST",
                f"/v1/orders/{order_id}/returns/{return_id}/decision",
                json={"approve": approve, "note": note},
            ),
        )

    async def resolve_return(self, order_id: str, return_id: str, choice: str) -> ReturnOut:
        """Retry a return's step that failed for good, or skip it."""
        return _read(
            ReturnOut,
            await self._call(
                "POST",
                f"/v1/orders/{order_id}/returns/{return_id}/resolve",
                json={"choice": choice},
            ),
        )

    async def add_note(
        self, order_id: str, text: str, *, customer_contact: bool = False
    ) -> NoteOut:
        return _read(
            NoteOut,
            await self._call(
                "POST",
                f"/v1/orders/{order_id}/notes",
                json={"text": text, "customer_contact": customer_contact},
            ),
        )

    # --- administration ------------------------------------------------------------------------

    async def issue_key(self, name: str, role: str) -> KeyIssued:
        return _read(
            KeyIssued, await self._call("POST", "/v1/admin/keys", json={"name": name, "role": role})
        )

    async def list_keys(self) -> list[KeyOut]:
        return _read(list[KeyOut], await self._call("GET", "/v1/admin/keys", idempotent=True))

    async def revoke_key(self, key_id: str) -> KeyRevoked:
        return _read(
            KeyRevoked,
            await self._call("DELETE", f"/v1/admin/keys/{key_id}", idempotent=True),
        )

    async def create_account(self, username: str, password: str, role: str) -> AccountCreated:
        return _read(
            AccountCreated,
            await self._call(
                "POST",
                "/v1/admin/accounts",
                json={"username": username, "password": password, "role": role},
            ),
        )

    async def list_accounts(self) -> list[AccountOut]:
        return _read(
            list[AccountOut], await self._call("GET", "/v1/admin/accounts", idempotent=True)
        )

    async def disable_account(self, username: str) -> AccountOut:
        return _read(
            AccountOut,
            await self._call("POST", f"/v1/admin/accounts/{username}/disable", idempotent=True),
        )

    async def enable_account(self, username: str) -> AccountOut:
        return _read(
            AccountOut,
            await self._call("POST", f"/v1/admin/accounts/{username}/enable", idempotent=True),
        )

    async def revoke_sessions(self, username: str) -> SessionsRevoked:
        return _read(
            SessionsRevoked,
            await self._call("DELETE", f"/v1/admin/accounts/{username}/sessions", idempotent=True),
        )

    async def erase_customer(self, email: str) -> ErasureOut:
        return _read(
            ErasureOut,
            await self._call("POST", "/v1/admin/erasures", json={"email": email}, idempotent=True),
        )

    async def audit_log(self, target: str | None = None, limit: int = 100) -> list[AuditOut]:
        params = {"limit": limit, **({"target": target} if target else {})}
        return _read(
            list[AuditOut],
            await self._call("GET", "/v1/admin/audit", params=params, idempotent=True),
        )

    # --- order events for the shop's backend ---------------------------------------------------

    async def create_subscription(self, url: str, events: list[str]) -> SubscriptionCreated:
        """Subscribe a receiver; the answer holds the signing secret, this once."""
        return _read(
            SubscriptionCreated,
            await self._call(
                "POST", "/v1/webhook-subscriptions", json={"url": url, "events": events}
            ),
        )

    async def list_subscriptions(self) -> list[SubscriptionOut]:
        return _read(
            list[SubscriptionOut],
            await self._call("GET", "/v1/webhook-subscriptions", idempotent=True),
        )

    async def update_subscription(self, subscription_id: str, **changes: Any) -> SubscriptionOut:
        """Change `url`, `events` or `active` (false pauses deliveries)."""
        return _read(
            SubscriptionOut,
            await self._call(
                "PATCH",
                f"/v1/webhook-subscriptions/{subscription_id}",
                json=changes,
                idempotent=True,
            ),
        )

    async def delete_subscription(self, subscription_id: str) -> None:
        await self._call("DELETE", f"/v1/webhook-subscriptions/{subscription_id}", idempotent=True)

    async def deliveries(
        self, subscription_id: str, *, status: str | None = None, limit: int = 50
    ) -> DeliveryPage:
        """The delivery log, newest first."""
        params = {"limit": limit, **({"status": status} if status else {})}
        return _read(
            DeliveryPage,
            await self._call(
                "GET",
                f"/v1/webhook-subscriptions/{subscription_id}/deliveries",
                params=params,
                idempotent=True,
            ),
        )

    async def redeliver(self, subscription_id: str, delivery_id: int) -> DeliveryOut:
        return _read(
            DeliveryOut,
            await self._call(
                "POST",
                f"/v1/webhook-subscriptions/{subscription_id}/deliveries/{delivery_id}/redeliver",
                idempotent=True,
            ),
        )

    # --- intake connectors (admins) and the orders they could not take (operators) -------------

    async def create_connector(self, **connector: Any) -> ConnectorOut:
        """`kind`, `name`, `credentials` (each `env:VAR` or the value), `settings`, `enabled`."""
        return _read(ConnectorOut, await self._call("POST", "/v1/admin/connectors", json=connector))

    async def list_connectors(self) -> list[ConnectorOut]:
        return _read(
            list[ConnectorOut], await self._call("GET", "/v1/admin/connectors", idempotent=True)
        )

    async def update_connector(self, name: str, **changes: Any) -> ConnectorOut:
        """Change `settings` (replaced), `credentials` (those named) or `enabled`."""
        return _read(
            ConnectorOut,
            await self._call(
                "PATCH", f"/v1/admin/connectors/{name}", json=changes, idempotent=True
            ),
        )

    async def delete_connector(self, name: str) -> None:
        await self._call("DELETE", f"/v1/admin/connectors/{name}", idempotent=True)

    async def intake_failures(self) -> list[IntakeFailureOut]:
        return _read(
            list[IntakeFailureOut], await self._call("GET", "/v1/intake/failures", idempotent=True)
        )

    async def resolve_intake_failure(self, failure_id: int) -> None:
        await self._call("POST", f"/v1/intake/failures/{failure_id}/resolve", idempotent=True)

    # --- plumbing ----------------------------------------------------------------------------

    async def _act(self, order_id: str, action: str, body: dict[str, Any]) -> ActionOut:
        body = {key: value for key, value in body.items() if value is not None}
        return _read(
            ActionOut, await self._call("POST", f"/v1/orders/{order_id}/{action}", json=body)
        )

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotent: bool = False,
        key: str | None = None,
    ) -> Any:
        """One request; requests that are safe to repeat (reads, and what an idempotency key
        makes so) are retried on 5xx and lost connections."""
        attempts = self._retries + 1 if idempotent or key else 1
        headers = {"Idempotency-Key": key} if key else None
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self._http.request(
                    method, path, json=json, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                if last:
                    said = str(exc) or type(exc).__name__
                    raise Unavailable(
                        0, f"could not reach orderflow at {exc.request.url} ({said})"
                    ) from exc
            else:
                if response.status_code not in RETRYABLE or last:
                    return _result(response)
            await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
        raise AssertionError("unreachable")


def _read(model: type[M], answer: Any) -> M:
    """The answer as the API's model says it is (a pydantic ValidationError if it is not)."""
    return TypeAdapter(model).validate_python(answer)


def _result(response: httpx.Response) -> Any:
    if response.status_code == 204:
        return None
    if response.is_success:
        return response.json()
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text}
    errors = [FieldError.model_validate(e) for e in body.get("errors", [])]
    error = _BY_STATUS.get(response.status_code, Unavailable)
    raise error(response.status_code, str(body.get("detail", response.reason_phrase)), errors)
