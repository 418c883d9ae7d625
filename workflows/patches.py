"""Every change behind `workflow.patched(...)`, with its plan: what it changed, when it reached
`main`, and the stored history (tests/histories/) of an order that took its new path — so
that replay guards both paths, and nobody digs through git to learn when a patch may go.

Orders that started before a patch take the old path for as long as they run; a patch is
deprecated (`workflow.deprecate_patch`) once none of them is open or within retention, and
removed once no order from before the deprecation is (README, **Patches**).
`tests/test_patches.py` checks that every patch the workflows ask for is listed here, and
that its history exists and holds the patch's marker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from schema.vocabulary import PatchId


@dataclass(frozen=True)
class Patch:
    id: PatchId
    change: str  # what orders started from this patch on do differently
    introduced: date  # the day it reached main (`git log -S '"<id>"'`)
    commit: str
    history: str  # a file of tests/histories/ whose order took the new path


PATCHES = (
    Patch(
        PatchId.PROGRESS_IN_READ_MODEL,
        "the read model keeps what the order waits for and may do, at every wait",
        date(2026, 11, 26),
        "449d483",
        "partial_refund_then_cancelled.json",
    ),
    Patch(
        PatchId.QUIET_ONCE_CANCELLED,
        "once a cancellation is decided, the customer hears nothing but the cancellation",
        date(2026, 11, 26),
        "3783092",
        "cancel_accepted_as_picking_starts.json",
    ),
    Patch(
        PatchId.DEADLINE_BEFORE_GUARD,
        "a wait's deadline and the silence guard due together: the deadline wins (the "
        "caller's reminder tells the customer, no interim notice beside it)",
        date(2026, 11, 26),
        "3783092",
        "lost_parcel_reshipped.json",
    ),
    Patch(
        PatchId.VERIFY_PAYMENT_EVENTS,
        "a payment event counts only for this order's payment, in the amount and currency "
        "asked (before, every event was believed)",
        date(2026, 11, 26),
        "44db7af",
        "partial_refund_then_cancelled.json",
    ),
    Patch(
        PatchId.REFUND_LATE_PAYMENTS,
        "a payment that arrives as the order is cancelled is refunded, not left with the shop",
        date(2026, 11, 26),
        "3783092",
        "paid_as_the_link_expired_refunded.json",
    ),
    Patch(
        PatchId.SHIP_WHAT_WAS_PACKED,
        'after failed picking, "ship what is there" changes the lines, the total and the '
        "payment to what was packed (before, the order shipped with its old total)",
        date(2026, 11, 26),
        "6667a9a",
        "ship_what_was_packed_after_failed_picking.json",
    ),
    Patch(
        PatchId.VERIFY_CARRIER_EVENTS,
        "a carrier event counts only with this order's tracking number",
        date(2026, 11, 26),
        "44db7af",
        "refused_cod_parcel_returned.json",
    ),
    Patch(
        PatchId.CARRIER_OUTCOMES,
        "a refused, unclaimed, returned, lost or damaged parcel ends the wait for delivery",
        date(2026, 11, 26),
        "39a4f94",
        "refused_cod_parcel_returned.json",
    ),
    Patch(
        PatchId.BRANCH_STORAGE,
        "a parcel at a carrier's branch waits for collection until its free storage ends "
        "(Nova Poshta's DatePayedKeeping): a reminder before, then unclaimed, it comes back "
        "(before, it waited for carrier news and went delayed after the silence period)",
        date(2026, 12, 4),
        "79328b4",
        "novaposhta_branch_storage_ended.json",
    ),
    Patch(
        PatchId.COD_PAYOUT,
        "cash on delivery with a carrier that reports its payout (Nova Poshta) is collected "
        "only when paid out in the order's total; late or wrong, an incident (before, it was "
        "collected at delivery)",
        date(2026, 12, 4),
        "79328b4",
        "novaposhta_cod_payout_late.json",
    ),
    Patch(
        PatchId.EARLY_FEEDBACK_ENDS_REQUEST,
        "an answer given before the feedback request goes out ends the stage at once: no "
        "request, no reminder, a negative answer's incident opened then (before, the request "
        "went out anyway and the incident waited for it)",
        date(2026, 12, 4),
        "d6bb996",
        "feedback_answered_before_the_request.json",
    ),
    Patch(
        PatchId.PACKING_DEADLINE,
        "a pick task not packed within the policy's wait (a day) opens an incident and flags "
        "the order; it keeps waiting, an operator may retry (the task asked again) or cancel "
        "(before, the order waited for the warehouse without a deadline)",
        date(2026, 12, 4),
        "beff5e0",
        "pick_task_not_packed_in_time_retried.json",
    ),
    Patch(
        PatchId.CARRIER_NEWS_DEADLINE,
        "a carrier silent about a parcel for the policy's wait (9 days, its delay notices "
        "going on) opens an incident and flags the order, which keeps waiting for the carrier "
        "(before, it was marked delayed every 3 days of silence, forever)",
        date(2026, 12, 4),
        "b8f00f6",
        "carrier_silent_past_the_wait_incident.json",
    ),
    Patch(
        PatchId.RETURN_ON_ORDER_MACHINERY,
        "a customer return waits and settles its failed steps with the order's machinery: the "
        "silence guard beside its waits (interim notices), a late inspection an incident that "
        "flags it until an operator decides, a failed step's incident written as an order's "
        "(before, it waited silently, and a late inspection only opened an incident)",
        date(2026, 12, 4),
        "314c89a",
        "return_watched_approved_inspected_late_retried.json",
    ),
    Patch(
        PatchId.SEARCH_ATTRIBUTES_ON_CHANGE,
        "a search attribute is upserted only when its value changes (before, every wait set "
        "OrderNeedsAction again, most often from false to false: an event each)",
        date(2026, 12, 4),
        "aef7e2b",
        "reviewed_cod_order_search_attributes_on_change.json",
    ),
    Patch(
        PatchId.TRACKING_TELLS_RETURNS,
        "a tracking round tells a customer's return parcel's news to its ReturnWorkflow "
        "(before, only orders' parcels were tracked by polling)",
        date(2026, 12, 4),
        "2e300e9",
        "carrier_tracking_round_tells_a_return.json",
    ),
    Patch(
        PatchId.ONE_WRITE_PER_ACTIVATION,
        "the timeline's steps of one activation are written in one local activity, before the "
        "next activity, wait or the end, a wait's progress with the step before it (before, "
        "each step and each wait's progress was a local activity of its own)",
        date(2026, 12, 4),
        "ba86667",
        "cod_order_one_write_per_activation.json",
    ),
)
