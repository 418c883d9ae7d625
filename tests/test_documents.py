"""The receipt and the labels, rendered in each of the order's languages and read back as a
person's PDF reader would (poppler's pdftotext): the shop named, dated, the words of the
language, the receipt's amounts one under another."""

from __future__ import annotations

import html
import re
import subprocess
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from activities.documents import Shop, receipt, return_label, shipping_label
from schema.tables import Order, OrderContact, OrderLine, OrderProviderRefs, Return
from settings import Settings
from tests.support import scan_barcode

SHOP = Shop.of(
    Settings(
        devstack=True,
        shop_name="Kavova Lavka",
        shop_legal_name="Kavova Lavka LLC",
        shop_address="Sahaidachnoho 12, 04070 Kyiv, UA",
        shop_tax_id="43210987",
        support_phone="+380 44 123 45 67",
        support_email="hello@lavka.example",
        returns_address="",  # the shop's own address
    )
)
ISSUED = date(2026, 12, 5)
ORDER_ID = uuid.uuid4()

# What each language says where; the date as it writes it; money as it writes it.
EXPECTED = {
    "uk": {
        "title": "Квитанція до замовлення SHOP-7",
        "date": "Дата: 5 грудня 2026",
        "heading": ["Товар", "К-сть", "Ціна", "Сума"],
        "discount": "Знижка (погоджено телефоном)",
        "amounts": ["1 500,00 ₴", "499,00 ₴", "-100,00 ₴", "1 899,00 ₴"],
        "payment": "Оплата: оплата під час отримання",
        "from_to": ("Від", "Кому"),
        "order": "Замовлення SHOP-7",
        "return": "ПОВЕРНЕННЯ SHOP-7-R1",
    },
    "ru": {
        "title": "Квитанция к заказу SHOP-7",
        "date": "Дата: 5 декабря 2026",
        "heading": ["Товар", "Кол-во", "Цена", "Сумма"],
        "discount": "Скидка (согласовано по телефону)",
        "amounts": ["1 500,00 ₴", "499,00 ₴", "-100,00 ₴", "1 899,00 ₴"],
        "payment": "Оплата: оплата при получении",
        "from_to": ("От", "Кому"),
        "order": "Заказ SHOP-7",
        "return": "ВОЗВРАТ SHOP-7-R1",
    },
    "en": {
        "title": "Receipt for order SHOP-7",
        "date": "Date: 5 December 2026",
        "heading": ["Item", "Qty", "Price", "Amount"],
        "discount": "Discount (agreed by phone)",
        "amounts": ["UAH 1,500.00", "UAH 499.00", "-UAH 100.00", "UAH 1,899.00"],
        "payment": "Payment: cash on delivery",
        "from_to": ("From", "To"),
        "order": "Order SHOP-7",
        "return": "RETURN SHOP-7-R1",
    },
}


def _order() -> tuple[Order, list[OrderLine]]:
    order = Order(
        id=ORDER_ID,
        number="SHOP-7",
        customer_id=uuid.uuid4(),
        delivery_method="courier",
        payment_method="cod",
        currency="UAH",
        total=Decimal("1899.00"),  # the operator's final price: the lines add up to 1,999.00
        price_reason="agreed_by_phone",
        stage="documents",
        status="packed",
        request_hash="x",
    )
    lines = [
        OrderLine(
            order_id=ORDER_ID,
            position=1,
            sku="KETTLE-01",
            name="Чайник скляний",
            quantity=1,
            unit_price=Decimal("1500.00"),
        ),
        OrderLine(
            order_id=ORDER_ID,
            position=2,
            sku="MUG-01",
            name="Mug",
            quantity=1,
            unit_price=Decimal("499.00"),
        ),
    ]
    return order, lines


def _contact(locale: str) -> OrderContact:
    return OrderContact(
        order_id=ORDER_ID,
        name="Ірина Коваль",
        email="iryna@example.com",
        phone="+380501234567",
        locale=locale,
        country="UA",
        city="Kyiv",
        line1="Khreshchatyk 1",
        postal_code="01001",
    )


def _read(pdf: bytes, folder: Path, name: str) -> str:
    path = folder / f"{name}.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    )
    return done.stdout.replace("\xa0", " ").replace("\u202f", " ")


def _rows(pdf: Path) -> list[tuple[str, float]]:
    """Each line of text on the page and where it ends (points from the left), from the
    position poppler reads for every word."""
    done = subprocess.run(
        ["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True
    )
    words: dict[float, list[tuple[float, float, str]]] = {}
    for x_min, y_min, x_max, word in WORD.findall(done.stdout):
        words.setdefault(round(float(y_min)), []).append(
            (float(x_min), float(x_max), html.unescape(word))
        )
    return [
        (" ".join(word for _, _, word in sorted(row)), max(x_max for _, x_max, _ in row))
        for _, row in sorted(words.items())
    ]


WORD = re.compile(
    r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>'
)


@pytest.mark.parametrize("locale", EXPECTED)
def test_the_receipt_speaks_the_order_s_language_names_the_shop_and_is_dated(
    locale: str, tmp_path: Path
) -> None:
    order, lines = _order()
    said = EXPECTED[locale]
    text = _read(
        receipt(order, _contact(locale), lines, shop=SHOP, issued=ISSUED), tmp_path, locale
    )

    for shown in (
        "Kavova Lavka",
        "Kavova Lavka LLC",
        "Sahaidachnoho 12, 04070 Kyiv, UA",
        "43210987",
        "+380 44 123 45 67",
        "hello@lavka.example",
        said["title"],
        said["date"],
        said["payment"],
        said["discount"],
        "Ірина Коваль",
    ):
        assert shown in text, f"{shown!r} is not on the {locale} receipt:\n{text}"
    assert re.search(r"\s+".join(said["heading"]), text), text
    assert "Receipt" not in text or locale == "en"
    # Amounts right-aligned in one column: each line's amount ends where the others end.
    rows = _rows(tmp_path / f"{locale}.pdf")
    amounts = {
        amount: right for row, right in rows for amount in said["amounts"] if row.endswith(amount)
    }
    assert set(amounts) == set(said["amounts"]), rows
    assert max(amounts.values()) - min(amounts.values()) < 0.5, amounts


@pytest.mark.parametrize("locale", EXPECTED)
async def test_the_labels_speak_the_order_s_language_and_go_between_the_shop_and_the_customer(
    locale: str, tmp_path: Path
) -> None:
    order, _ = _order()
    said = EXPECTED[locale]
    from_, to = said["from_to"]
    refs = OrderProviderRefs(
        order_id=ORDER_ID, carrier="NovaSim", service="courier", tracking_number="SIM0001234"
    )
    shipping = shipping_label(order, _contact(locale), refs, shop=SHOP, issued=ISSUED)
    text = _read(shipping, tmp_path, f"label-{locale}")
    assert f"{from_}: Kavova Lavka" in text and "Sahaidachnoho 12, 04070 Kyiv, UA" in text, text
    assert f"{to}:" in text and "Ірина Коваль" in text and "Khreshchatyk 1" in text
    assert said["order"] in text and said["date"].split(": ")[1] in text, text
    (tmp_path / "shipping").mkdir()
    assert await scan_barcode(shipping, tmp_path / "shipping") == "SIM0001234"

    ret = Return(
        id=uuid.uuid4(),
        order_id=ORDER_ID,
        seq=1,
        number="SHOP-7-R1",
        reason="wrong_size",
        resolution="refund",
        request_key="k",
        status="approved",
        requested_by="customer",
        carrier="NovaSim",
        tracking_number="SIMR0005678",
    )
    back = return_label(ret, _contact(locale), shop=SHOP, issued=ISSUED)
    text = _read(back, tmp_path, f"return-{locale}")
    assert said["return"] in text, text
    assert f"{to}: Kavova Lavka" in text and "Sahaidachnoho 12, 04070 Kyiv, UA" in text, text
    assert "returns desk" not in text and "orderflow" not in text
    assert f"{from_}:" in text and said["date"].split(": ")[1] in text, text
    (tmp_path / "return").mkdir()
    assert await scan_barcode(back, tmp_path / "return") == "SIMR0005678"
