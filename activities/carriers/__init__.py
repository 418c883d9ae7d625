"""Carriers behind one port (`base.Carrier`): the devstack's simulated carrier, Nova Poshta,
Ukrposhta and Meest. `make_carrier` builds the one settings choose (`ORDERFLOW_CARRIER`)."""

from __future__ import annotations

import httpx

from activities.carriers.base import (
    Address,
    Booking,
    Branch,
    Carrier,
    ParcelRequest,
    TrackedParcel,
    TrackingUpdate,
)
from activities.carriers.novaposhta import NovaPoshta, NovaPoshtaAccount
from activities.carriers.simulated import SimulatedCarrier
from activities.carriers.ukrposhta import Ukrposhta, UkrposhtaAccount
from activities.providers import Provider
from settings import Settings

__all__ = [
    "Address",
    "Booking",
    "Branch",
    "Carrier",
    "ParcelRequest",
    "TrackedParcel",
    "TrackingUpdate",
    "make_carrier",
]


def make_carrier(settings: Settings, http: httpx.AsyncClient) -> Carrier:
    """The carrier settings choose, on the process's one HTTP client."""
    if settings.carrier == "novaposhta":
        return NovaPoshta(
            Provider("novaposhta", http, settings.novaposhta_url),
            Provider("novaposhta", http, settings.novaposhta_print_url),
            NovaPoshtaAccount(
                api_key=settings.novaposhta_api_key,
                sender_ref=settings.novaposhta_sender_ref,
                contact_ref=settings.novaposhta_sender_contact_ref,
                city_ref=settings.novaposhta_sender_city_ref,
                address_ref=settings.novaposhta_sender_address_ref,
                phone=settings.novaposhta_sender_phone,
                cod=settings.novaposhta_cod,
                tracking_page=settings.novaposhta_tracking_page,
            ),
        )
    if settings.carrier == "ukrposhta":
        return Ukrposhta(
            Provider(
                "ukrposhta",
                http,
                settings.ukrposhta_url,
                headers={"Authorization": f"Bearer {settings.ukrposhta_bearer}"},
            ),
            Provider(
                "ukrposhta",
                http,
                settings.ukrposhta_tracking_url,
                headers={"Authorization": f"Bearer {settings.ukrposhta_tracking_bearer}"},
            ),
            UkrposhtaAccount(
                counterparty_token=settings.ukrposhta_counterparty_token,
                sender_uuid=settings.ukrposhta_sender_uuid,
                tracking_page=settings.ukrposhta_tracking_page,
            ),
        )
    return SimulatedCarrier(Provider("carrier", http, settings.carrier_url))
