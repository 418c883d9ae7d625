"""What schemathesis needs to know beyond JSON Schema: the API's `phone` format, a number
that exists in its country's numbering plan (the API checks it with `phonenumbers`)."""

from __future__ import annotations

import phonenumbers
import schemathesis
from hypothesis import strategies as st

_NOTATIONS = (phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
_NUMBERS = [
    phonenumbers.format_number(number, notation)
    for region in sorted(phonenumbers.SUPPORTED_REGIONS)
    if (number := phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE))
    for notation in _NOTATIONS
]

schemathesis.openapi.format("phone", st.sampled_from(_NUMBERS))
