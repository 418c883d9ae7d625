"""Pure, deterministic time rules of an order (safe inside the workflow sandbox)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from schema.contracts import DeliveryMethod, OrderPolicy


def promised_date(
    confirmed_at: datetime,
    timezone: str,
    policy: OrderPolicy,
    delivery: DeliveryMethod,
    speed: str,
) -> date:
    """The date the confirmation promises: delivery (or, for pickup, ready at the counter)
    the policy's days for the method after confirmation. An express courier order has its
    own rule: `express_delivery_days` (0: the same day) when confirmed before the cutoff hour
    in the customer's time, a day later after it. Post and pickup have no faster service."""
    if speed == "express" and delivery == DeliveryMethod.COURIER:
        local = confirmed_at.astimezone(ZoneInfo(timezone))
        late = local.hour >= policy.express_cutoff_hour
        return (local + timedelta(days=policy.express_delivery_days + late)).date()
    return (confirmed_at + timedelta(days=policy.delivery_days[delivery])).date()


# Where the carriers that state a storage day (Nova Poshta) keep their calendar.
CARRIER_ZONE = ZoneInfo("Europe/Kyiv")


def storage_ends(paid_from: date) -> datetime:
    """A branch keeps a parcel free until the day its paid storage starts (Nova Poshta's
    DatePayedKeeping), at midnight in Kyiv."""
    return datetime.combine(paid_from, time(0), tzinfo=CARRIER_ZONE)


def feedback_send_time(
    delivered_at: datetime,
    timezone: str,
    *,
    earliest: timedelta,
    latest: timedelta,
    quiet_from_hour: int,
    quiet_until_hour: int,
) -> datetime:
    """The first moment in [delivered + earliest, delivered + latest] outside the customer's night.

    Seed 000: ask for feedback 24-48 h after delivery; nobody wants a message at 3 a.m.
    If the whole window is night (it never is for a 24 h window), the window's start is used.
    """
    zone = ZoneInfo(timezone)
    start, end = delivered_at + earliest, delivered_at + latest
    local = start.astimezone(zone)

    def quiet(moment: datetime) -> bool:
        return moment.hour >= quiet_from_hour or moment.hour < quiet_until_hour

    if not quiet(local):
        return start
    morning = local.replace(hour=quiet_until_hour, minute=0, second=0, microsecond=0)
    if local.hour >= quiet_from_hour:
        morning += timedelta(days=1)
    candidate = morning.astimezone(start.tzinfo)
    return candidate if candidate <= end else start
