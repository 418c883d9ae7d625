"""Pure rules of the data shapes: masking, phone normalisation, and the retry fingerprint."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from schema.api.orders import OrderCreate
from schema.pii import mask_email, mask_name, mask_phone
from tests.support import sample_order


def test_masking_keeps_enough_to_recognise_and_no_more() -> None:
    assert mask_email("iryna@example.com") == "ir***@example.com"
    assert mask_phone("+380501234567") == "+38050***4567"
    assert mask_name("Iryna Koval") == "Iryna K."
    assert mask_name("Cher") == "Cher"
    assert mask_name("Iryna\u00a0Koval") == "Iryna K."  # a no-break space hides nothing


@pytest.mark.parametrize("notation", ["+380501234567", "+380 50 123 45 67", "+38 (050) 123-45-67"])
def test_phone_is_stored_as_e164(notation: str) -> None:
    order = sample_order()
    order["customer"]["phone"] = notation
    assert OrderCreate.model_validate(order).customer.phone == "+380501234567"


def test_same_order_in_other_notation_has_the_same_fingerprint() -> None:
    order = sample_order()
    respelled = {**order, "customer": {**order["customer"], "phone": "+380 50 123 45 67"}}
    respelled["customer"]["email"] = order["customer"]["email"].upper()
    assert (
        OrderCreate.model_validate(order).fingerprint()
        == OrderCreate.model_validate(respelled).fingerprint()
    )
    changed = {**order, "lines": [{**order["lines"][0], "quantity": 3}]}
    assert (
        OrderCreate.model_validate(order).fingerprint()
        != OrderCreate.model_validate(changed).fingerprint()
    )


def test_total_is_exact_decimal() -> None:
    order = sample_order(
        lines=[
            {"sku": "A", "name": "A", "quantity": 3, "unit_price": "0.10"},
            {"sku": "B", "name": "B", "quantity": 1, "unit_price": "0.20"},
        ]
    )
    assert OrderCreate.model_validate(order).total == Decimal("0.50")


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="discount"):
        OrderCreate.model_validate(sample_order(discount="100%"))
