"""A step that fails for good (workflows/failures.py): the incident, the managers' alert, the
order waiting flagged, and the operator's retry or skip — on the time-skipping server with
stand-in activities. The real-stack versions are tests/test_failures.py."""

from __future__ import annotations

from datetime import timedelta

from schema.contracts import (
    CustomerStatus,
    IncidentCause,
    MessageKind,
    PaymentMethod,
    Stage,
    StepChoice,
    TrackingStatus,
    WaitingFor,
)
from tests.support import eventually
from tests.workflows.order_run import OrderDesk, OrderRun, refusal, types
from tests.workflows.standins import OrderStandIns


async def _stopped_at_a_failed_step(order: OrderRun) -> None:
    status = await order.waiting_for("incident_resolution")
    assert {"resolve_step", "cancel"} <= set(status.allowed_actions)

    # Flagged for the operator queue: the read model's progress says what it waits for (a
    # local activity just after the wait began, so a moment after the status says it).
    async def flagged() -> bool:
        rows = order.standins.inputs("record_progress")
        return bool(rows) and rows[-1].progress.waiting_for == WaitingFor.INCIDENT_RESOLUTION

    await eventually(flagged, timeout=10, what="the order flagged")


async def test_a_failed_step_opens_an_incident_alerts_the_managers_and_waits_flagged(
    desk: OrderDesk,
) -> None:
    standins = OrderStandIns()
    standins.fail("create_payment_link", "ProviderRejected")
    order = await desk.place(standins)

    await _stopped_at_a_failed_step(order)

    [incident] = standins.inputs("record_incident")
    assert incident.cause == IncidentCause.EXTERNAL  # a provider refused
    assert incident.stage == Stage.PAYMENT and incident.resolution == ""
    assert "create_payment_link failed for good (ProviderRejected)" in incident.summary
    [alert] = [i for i in standins.inputs("notify") if i.kind == MessageKind.MANAGER_INCIDENT]
    assert alert.params["cause"] == "external" and incident.key in alert.key
    failed = (await order.status()).timeline[-1]
    assert failed.type == "step.failed"
    assert failed.detail == {
        "activity": "create_payment_link",
        "error": "ProviderRejected",
        "incident": incident.key,
    }
    assert "payment_requested" not in standins.sent()  # nothing went on past the step


async def test_resolve_retry_runs_the_step_again_and_the_order_goes_on(desk: OrderDesk) -> None:
    standins = OrderStandIns()
    refusing = standins.fail("create_payment_link", "ProviderRejected")
    order = await desk.place(standins)
    await _stopped_at_a_failed_step(order)

    refusing.heal()  # the provider is fixed
    await order.resolve(StepChoice.RETRY)

    await order.waiting_for("payment")
    assert len(standins.inputs("create_payment_link")) == 2
    assert standins.sent()[-1] == "payment_requested"
    closed = standins.inputs("record_incident")[-1]
    assert closed.resolution == "retry"
    timeline = types(await order.status())
    assert timeline.index("step.failed") < timeline.index("step.resolved")
    assert standins.inputs("record_progress")[-1].progress.waiting_for == WaitingFor.PAYMENT


async def test_resolve_skip_goes_on_without_a_skippable_step(desk: OrderDesk) -> None:
    standins = OrderStandIns()
    standins.fail("send_confirmation", "MessageBroken")  # a message that cannot be rendered
    order = await desk.place(standins)
    await _stopped_at_a_failed_step(order)
    [incident] = standins.inputs("record_incident")
    assert incident.cause == IncidentCause.SYSTEM  # ours, not a provider's

    await order.resolve(StepChoice.SKIP)

    await order.waiting_for("payment")
    assert "confirmation" not in standins.sent()
    confirmed = next(e for e in (await order.status()).timeline if e.type == "order.confirmed")
    assert confirmed.detail["channel"] == "skipped"
    assert standins.inputs("record_incident")[-1].resolution == "skip"


async def test_resolve_skip_is_refused_for_a_step_that_may_not_be_skipped(
    desk: OrderDesk,
) -> None:
    standins = OrderStandIns()
    standins.fail("create_payment_link", "ProviderRejected")
    order = await desk.place(standins)
    await _stopped_at_a_failed_step(order)

    reason = await refusal(order.resolve(StepChoice.SKIP))

    assert reason == "create_payment_link cannot be skipped: retry it, or cancel the order"
    await _stopped_at_a_failed_step(order)  # still waiting, nothing skipped
    assert len(standins.inputs("create_payment_link")) == 1
    assert len(standins.inputs("record_incident")) == 1


async def test_a_pick_task_never_packed_opens_an_incident_at_its_deadline(desk: OrderDesk) -> None:
    """The warehouse lost the task (a restart): with the real policy (a day), the order does not
    wait in silence — an incident, the managers told, the order flagged; the operator's retry
    creates the task again, and its checklist moves the order on."""
    order = await desk.place(OrderStandIns())
    await order.paid()
    await order.waiting_for("packing")
    await order.sleep(timedelta(hours=23))
    assert (await order.status()).waiting_for == "packing"  # within the policy's day

    await order.sleep(timedelta(hours=2))
    await _stopped_at_a_failed_step(order)
    [incident] = order.standins.inputs("record_incident")
    assert incident.cause == IncidentCause.EXTERNAL and incident.stage == Stage.PICKING
    assert "pick task task-1 not packed within 1 day" in incident.summary
    assert "manager_incident" in order.standins.sent()
    assert "cannot be skipped" in await refusal(order.resolve(StepChoice.SKIP))

    await order.resolve(StepChoice.RETRY)
    await order.waiting_for("packing")
    assert len(order.standins.inputs("create_pick_task")) == 2
    await order.pack()
    status = await order.reached("order.packed")
    assert types(status).index("step.resolved") < types(status).index("order.packed")


async def test_a_pick_task_packed_late_closes_its_incident(desk: OrderDesk) -> None:
    order = await desk.place(OrderStandIns())
    await order.paid()
    await order.waiting_for("packing")
    await order.sleep(timedelta(days=1, hours=1))
    await _stopped_at_a_failed_step(order)

    await order.pack()  # the warehouse answers after all: nobody needs to decide

    await order.reached("order.packed")
    [*_, closed] = order.standins.inputs("record_incident")
    assert closed.resolution == "answered"
    assert len(order.standins.inputs("create_pick_task")) == 1


async def test_a_silent_carrier_opens_an_incident_at_the_policys_limit(desk: OrderDesk) -> None:
    """The carrier says nothing more of a parcel on its way: with the real policy (delayed
    notices every 3 days, an incident after 9), the order does not wait in silence forever —
    an incident, the managers told, the order flagged; the carrier's late news closes it."""
    order = await desk.place(OrderStandIns(payment=PaymentMethod.COD))
    await order.packed()
    await order.waiting_for("carrier")
    await order.carrier(TrackingStatus.IN_TRANSIT)
    await order.reached("carrier.InTransit")
    await order.sleep(timedelta(days=8, hours=23))
    assert (await order.status()).waiting_for == "carrier"  # within the policy's 9 days
    assert order.standins.inputs("record_incident") == []

    await order.sleep(timedelta(hours=2))
    status = await order.waiting_for("incident_resolution")
    assert "resolve_step" in status.allowed_actions  # handed over: no cancel any more
    [incident] = order.standins.inputs("record_incident")
    assert incident.cause == IncidentCause.EXTERNAL and incident.stage == Stage.TRANSIT
    assert "no news of parcel" in incident.summary and "for 9 days" in incident.summary
    assert order.standins.sent().count("delayed") == 3
    assert "manager_incident" in order.standins.sent()

    await order.carrier(TrackingStatus.DELIVERED)  # the carrier answers after all
    delivered = await order.reached("order.delivered")
    assert delivered.status == CustomerStatus.DELIVERED
    [*_, closed] = order.standins.inputs("record_incident")
    assert closed.resolution == "answered"


async def test_a_timeline_write_that_fails_for_good_is_settled_and_retried(
    desk: OrderDesk,
) -> None:
    """The steps of an activation are one write (`one-write-per-activation`): when it fails
    for good, it is a failed step like any other, and a retry writes every step it held."""
    standins = OrderStandIns(payment=PaymentMethod.COD)
    refusing = standins.fail(
        "record_event", "DatabaseBroken", lambda i: i.entry.type == "stock.reserved"
    )
    order = await desk.place(standins)
    await _stopped_at_a_failed_step(order)
    [incident] = standins.inputs("record_incident")
    assert "record_steps failed for good (DatabaseBroken)" in incident.summary
    assert "picking.started" not in types(await order.status())  # held in the failed write
    assert standins.inputs("create_pick_task") == []  # nothing went on past the write

    refusing.heal()
    await order.resolve(StepChoice.RETRY)

    status = await order.waiting_for("packing")
    timeline = types(status)
    for step in ("stock.reserved", "payment.on_delivery", "picking.started", "step.resolved"):
        assert timeline.count(step) == 1, step
    assert len(standins.inputs("create_pick_task")) == 1
