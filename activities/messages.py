"""Every message orderflow sends, in one place: subject and body per kind and locale.

Each text is a Jinja2 template: {{ name }} {{ number }} {{ total }} {{ expected_date }}
{{ support }} and the params each step passes (url, amount, tracking_url, reason,
new_date, waiting_for, ...). E-mails wrap them in templates/message.html.j2; the
confirmation has its own richer templates (templates/confirmation.*.j2). Manager
messages are in English.
"""

from __future__ import annotations

from schema.contracts import MessageKind as K

WAITING_FOR = {
    "uk": {
        "operator_confirmation": "підтвердження менеджером",
        "stock_decision": "рішення щодо товарів, яких немає в наявності",
        "backorder_arrival": "надходження товару від постачальника",
        "payment": "оплату",
        "packing": "комплектацію на складі",
        "carrier": "новини від перевізника",
        "collection": "отримання в пункті видачі",
    },
    "ru": {
        "operator_confirmation": "подтверждение менеджером",
        "stock_decision": "решение по товарам, которых нет в наличии",
        "backorder_arrival": "поступление товара от поставщика",
        "payment": "оплату",
        "packing": "комплектацию на складе",
        "carrier": "новости от перевозчика",
        "collection": "получение в пункте выдачи",
    },
    "en": {
        "operator_confirmation": "a manager's confirmation",
        "stock_decision": "a decision about items out of stock",
        "backorder_arrival": "the supplier's delivery",
        "payment": "your payment",
        "packing": "packing at our warehouse",
        "carrier": "news from the carrier",
        "collection": "collection at the pickup point",
    },
}

CUSTOMER: dict[K, dict[str, tuple[str, str]]] = {
    K.CONFIRMATION: {
        "uk": (
            "Замовлення {{ number }} підтверджено",
            "{{ name }}, замовлення {{ number }} підтверджено. Сума: {{ total }}. Очікувана доставка: {{ expected_date }}.",
        ),
        "ru": (
            "Заказ {{ number }} подтверждён",
            "{{ name }}, заказ {{ number }} подтверждён. Сумма: {{ total }}. Ожидаемая доставка: {{ expected_date }}.",
        ),
        "en": (
            "Order {{ number }} confirmed",
            "{{ name }}, order {{ number }} is confirmed. Total: {{ total }}. Expected delivery: {{ expected_date }}.",
        ),
    },
    K.AWAITING_REVIEW: {
        "uk": (
            "Замовлення {{ number }} на перевірці",
            "{{ name }}, ми отримали замовлення {{ number }}. Менеджер перевіряє деталі й незабаром підтвердить його.",
        ),
        "ru": (
            "Заказ {{ number }} на проверке",
            "{{ name }}, мы получили заказ {{ number }}. Менеджер проверяет детали и скоро подтвердит его.",
        ),
        "en": (
            "Order {{ number }} is being checked",
            "{{ name }}, we have received order {{ number }}. A manager is checking the details and will confirm it shortly.",
        ),
    },
    K.STOCK_PARTIAL: {
        "uk": (
            "Замовлення {{ number }}: частини товарів немає",
            "{{ name }}, деяких товарів із замовлення {{ number }} зараз немає: {{ missing }}. Оберіть, як бути (відправити наявне, дочекатися постачання чи скасувати): {{ choice_url }} — або ми зв'яжемося з вами.",
        ),
        "ru": (
            "Заказ {{ number }}: части товаров нет",
            "{{ name }}, некоторых товаров из заказа {{ number }} сейчас нет: {{ missing }}. Выберите, как быть (отправить наличие, дождаться поставки или отменить): {{ choice_url }} — или мы свяжемся с вами.",
        ),
        "en": (
            "Order {{ number }}: some items are out of stock",
            "{{ name }}, some items of order {{ number }} are out of stock: {{ missing }}. Choose what we do (ship what is there, wait for the supplier, or cancel): {{ choice_url }} — or we will contact you.",
        ),
    },
    K.BACKORDERED: {
        "uk": (
            "Замовлення {{ number }}: товар замовлено в постачальника",
            "{{ name }}, ми замовили відсутні товари в постачальника. Очікувана дата надходження: {{ expected_date }}.",
        ),
        "ru": (
            "Заказ {{ number }}: товар заказан у поставщика",
            "{{ name }}, мы заказали недостающие товары у поставщика. Ожидаемая дата поступления: {{ expected_date }}.",
        ),
        "en": (
            "Order {{ number }}: items ordered from the supplier",
            "{{ name }}, we have ordered the missing items from our supplier. Expected arrival: {{ expected_date }}.",
        ),
    },
    K.PAYMENT_REQUESTED: {
        "uk": (
            "Оплата замовлення {{ number }}",
            "{{ name }}, до сплати {{ amount }}. Оплатити: {{ url }}",
        ),
        "ru": (
            "Оплата заказа {{ number }}",
            "{{ name }}, к оплате {{ amount }}. Оплатить: {{ url }}",
        ),
        "en": (
            "Payment for order {{ number }}",
            "{{ name }}, the amount due is {{ amount }}. Pay here: {{ url }}",
        ),
    },
    K.PAYMENT_REMINDER: {
        "uk": (
            "Нагадування: оплата замовлення {{ number }}",
            "{{ name }}, замовлення {{ number }} чекає на оплату ({{ amount }}): {{ url }}",
        ),
        "ru": (
            "Напоминание: оплата заказа {{ number }}",
            "{{ name }}, заказ {{ number }} ждёт оплаты ({{ amount }}): {{ url }}",
        ),
        "en": (
            "Reminder: payment for order {{ number }}",
            "{{ name }}, order {{ number }} is waiting for your payment ({{ amount }}): {{ url }}",
        ),
    },
    K.PAYMENT_FAILED: {
        "uk": (
            "Оплата замовлення {{ number }} не пройшла",
            "{{ name }}, оплата не пройшла ({{ reason }}). Спробуйте ще раз: {{ url }} — або напишіть нам, ми допоможемо.",
        ),
        "ru": (
            "Оплата заказа {{ number }} не прошла",
            "{{ name }}, оплата не прошла ({{ reason }}). Попробуйте ещё раз: {{ url }} — или напишите нам, мы поможем.",
        ),
        "en": (
            "Payment for order {{ number }} failed",
            "{{ name }}, the payment did not go through ({{ reason }}). Try again: {{ url }} — or write to us and we will help.",
        ),
    },
    K.PAYMENT_RECEIVED: {
        "uk": (
            "Оплату замовлення {{ number }} отримано",
            "{{ name }}, дякуємо! Оплату {{ amount }} отримано, готуємо замовлення до відправлення.",
        ),
        "ru": (
            "Оплата заказа {{ number }} получена",
            "{{ name }}, спасибо! Оплата {{ amount }} получена, готовим заказ к отправке.",
        ),
        "en": (
            "Payment for order {{ number }} received",
            "{{ name }}, thank you! We received {{ amount }} and are preparing your order.",
        ),
    },
    K.PICKING: {
        "uk": (
            "Замовлення {{ number }} комплектується",
            "{{ name }}, склад збирає ваше замовлення {{ number }}.",
        ),
        "ru": (
            "Заказ {{ number }} комплектуется",
            "{{ name }}, склад собирает ваш заказ {{ number }}.",
        ),
        "en": (
            "Order {{ number }} is being picked",
            "{{ name }}, our warehouse is picking your order {{ number }}.",
        ),
    },
    K.PACKED: {
        "uk": (
            "Замовлення {{ number }} зібрано",
            "{{ name }}, замовлення {{ number }} зібрано й упаковано.",
        ),
        "ru": ("Заказ {{ number }} собран", "{{ name }}, заказ {{ number }} собран и упакован."),
        "en": (
            "Order {{ number }} is packed",
            "{{ name }}, order {{ number }} is picked and packed.",
        ),
    },
    K.SHIPPED: {
        "uk": (
            "Замовлення {{ number }} відправлено",
            "{{ name }}, замовлення передано перевізнику {{ carrier }}. Номер відстеження: {{ tracking_number }}. Відстежити: {{ tracking_url }}",
        ),
        "ru": (
            "Заказ {{ number }} отправлен",
            "{{ name }}, заказ передан перевозчику {{ carrier }}. Номер отслеживания: {{ tracking_number }}. Отследить: {{ tracking_url }}",
        ),
        "en": (
            "Order {{ number }} has shipped",
            "{{ name }}, your order is with {{ carrier }}. Tracking number: {{ tracking_number }}. Track it: {{ tracking_url }}",
        ),
    },
    K.IN_TRANSIT: {
        "uk": (
            "Замовлення {{ number }} в дорозі",
            "{{ name }}, замовлення {{ number }} в дорозі. Відстежити: {{ tracking_url }}",
        ),
        "ru": (
            "Заказ {{ number }} в пути",
            "{{ name }}, заказ {{ number }} в пути. Отследить: {{ tracking_url }}",
        ),
        "en": (
            "Order {{ number }} is on its way",
            "{{ name }}, order {{ number }} is in transit. Track it: {{ tracking_url }}",
        ),
    },
    K.OUT_FOR_DELIVERY: {
        "uk": (
            "Кур'єр уже їде: замовлення {{ number }}",
            "{{ name }}, кур'єр везе замовлення {{ number }} і буде у вас протягом 1–2 годин.",
        ),
        "ru": (
            "Курьер уже едет: заказ {{ number }}",
            "{{ name }}, курьер везёт заказ {{ number }} и будет у вас в течение 1–2 часов.",
        ),
        "en": (
            "Out for delivery: order {{ number }}",
            "{{ name }}, the courier is bringing order {{ number }} and will be with you within 1–2 hours.",
        ),
    },
    K.DELIVERY_FAILED: {
        "uk": (
            "Не вдалося доставити замовлення {{ number }}",
            "{{ name }}, кур'єр не застав вас. Перевізник спробує ще раз; деталі: {{ tracking_url }}",
        ),
        "ru": (
            "Не удалось доставить заказ {{ number }}",
            "{{ name }}, курьер вас не застал. Перевозчик попробует ещё раз; подробности: {{ tracking_url }}",
        ),
        "en": (
            "Delivery attempt failed: order {{ number }}",
            "{{ name }}, the courier missed you. The carrier will try again; details: {{ tracking_url }}",
        ),
    },
    K.DELIVERY_PROBLEM: {
        "uk": (
            "Проблема з доставкою замовлення {{ number }}",
            "{{ name }}, у перевізника виникла проблема з доставкою. Ми вже з'ясовуємо й повідомимо вас.",
        ),
        "ru": (
            "Проблема с доставкой заказа {{ number }}",
            "{{ name }}, у перевозчика возникла проблема с доставкой. Мы уже выясняем и сообщим вам.",
        ),
        "en": (
            "A problem with delivering order {{ number }}",
            "{{ name }}, the carrier reports a problem with the delivery. We are on it and will keep you posted.",
        ),
    },
    K.READY_FOR_PICKUP: {
        "uk": (
            "Замовлення {{ number }} чекає на вас",
            "{{ name }}, замовлення {{ number }} можна забрати в пункті видачі.",
        ),
        "ru": (
            "Заказ {{ number }} ждёт вас",
            "{{ name }}, заказ {{ number }} можно забрать в пункте выдачи.",
        ),
        "en": (
            "Order {{ number }} is ready for pickup",
            "{{ name }}, order {{ number }} is waiting for you at the pickup point.",
        ),
    },
    K.PICKUP_REMINDER: {
        "uk": (
            "Нагадування: заберіть замовлення {{ number }}",
            "{{ name }}, замовлення {{ number }} ще чекає на вас у пункті видачі. Незабаром термін зберігання закінчиться.",
        ),
        "ru": (
            "Напоминание: заберите заказ {{ number }}",
            "{{ name }}, заказ {{ number }} ещё ждёт вас в пункте выдачи. Скоро срок хранения закончится.",
        ),
        "en": (
            "Reminder: collect order {{ number }}",
            "{{ name }}, order {{ number }} is still waiting at the pickup point. The hold period ends soon.",
        ),
    },
    K.DELIVERED: {
        "uk": (
            "Замовлення {{ number }} отримано",
            "{{ name }}, замовлення {{ number }} доставлено. Дякуємо за покупку!",
        ),
        "ru": (
            "Заказ {{ number }} получен",
            "{{ name }}, заказ {{ number }} доставлен. Спасибо за покупку!",
        ),
        "en": (
            "Order {{ number }} delivered",
            "{{ name }}, order {{ number }} has been delivered. Thank you for shopping with us!",
        ),
    },
    K.DELAYED: {
        "uk": (
            "Замовлення {{ number }} затримується",
            "{{ name }}, вибачте: замовлення {{ number }} затримується ({{ reason }}). Нова очікувана дата: {{ new_date }}.",
        ),
        "ru": (
            "Заказ {{ number }} задерживается",
            "{{ name }}, извините: заказ {{ number }} задерживается ({{ reason }}). Новая ожидаемая дата: {{ new_date }}.",
        ),
        "en": (
            "Order {{ number }} is delayed",
            "{{ name }}, we are sorry: order {{ number }} is delayed ({{ reason }}). New expected date: {{ new_date }}.",
        ),
    },
    K.CANCELLED: {
        "uk": (
            "Замовлення {{ number }} скасовано",
            "{{ name }}, замовлення {{ number }} скасовано. Причина: {{ reason }}. {{ note }} Якщо ви платили, кошти ({{ refund }}) повернуться на картку.",
        ),
        "ru": (
            "Заказ {{ number }} отменён",
            "{{ name }}, заказ {{ number }} отменён. Причина: {{ reason }}. {{ note }} Если вы платили, деньги ({{ refund }}) вернутся на карту.",
        ),
        "en": (
            "Order {{ number }} cancelled",
            "{{ name }}, order {{ number }} has been cancelled. Reason: {{ reason }}. {{ note }} If you paid, the money ({{ refund }}) will be returned to your card.",
        ),
    },
    K.INTERIM: {
        "uk": (
            "Замовлення {{ number }}: ми про вас пам'ятаємо",
            "{{ name }}, замовлення {{ number }} ще в роботі: чекаємо на {{ waiting_for }}. Щойно щось зміниться, ми напишемо.",
        ),
        "ru": (
            "Заказ {{ number }}: мы о вас помним",
            "{{ name }}, заказ {{ number }} ещё в работе: ждём {{ waiting_for }}. Как только что-то изменится, мы напишем.",
        ),
        "en": (
            "Order {{ number }}: we have not forgotten you",
            "{{ name }}, order {{ number }} is still in progress: we are waiting for {{ waiting_for }}. We will write as soon as it moves.",
        ),
    },
    K.FEEDBACK_REQUEST: {
        "uk": (
            "Як вам замовлення {{ number }}?",
            "{{ name }}, оцініть, будь ласка, замовлення {{ number }}: {{ feedback_url }} — за відгук даруємо бонус на наступну покупку.",
        ),
        "ru": (
            "Как вам заказ {{ number }}?",
            "{{ name }}, оцените, пожалуйста, заказ {{ number }}: {{ feedback_url }} — за отзыв дарим бонус на следующую покупку.",
        ),
        "en": (
            "How was order {{ number }}?",
            "{{ name }}, please rate order {{ number }}: {{ feedback_url }} — a bonus for your next purchase awaits your review.",
        ),
    },
    K.FEEDBACK_REMINDER: {
        "uk": (
            "Нагадування: відгук про замовлення {{ number }}",
            "{{ name }}, нам важлива ваша думка про замовлення {{ number }}: {{ feedback_url }}",
        ),
        "ru": (
            "Напоминание: отзыв о заказе {{ number }}",
            "{{ name }}, нам важно ваше мнение о заказе {{ number }}: {{ feedback_url }}",
        ),
        "en": (
            "Reminder: your review of order {{ number }}",
            "{{ name }}, your opinion of order {{ number }} matters to us: {{ feedback_url }}",
        ),
    },
    K.REJECTED: {
        "uk": (
            "Замовлення {{ number }} не може бути виконане",
            "{{ name }}, на жаль, ми не можемо виконати замовлення {{ number }}: {{ reason }}.",
        ),
        "ru": (
            "Заказ {{ number }} не может быть выполнен",
            "{{ name }}, к сожалению, мы не можем выполнить заказ {{ number }}: {{ reason }}.",
        ),
        "en": (
            "Order {{ number }} cannot be fulfilled",
            "{{ name }}, unfortunately we cannot fulfil order {{ number }}: {{ reason }}.",
        ),
    },
}

MANAGER: dict[K, tuple[str, str]] = {
    K.MANAGER_REVIEW_ESCALATED: (
        "Escalation: order {{ number }} awaits confirmation",
        "Nobody has confirmed order {{ number }} within the SLA. Reasons for review: {{ reasons }}. Customer: {{ masked_email }}.",
    ),
    K.MANAGER_PAYMENT_FAILED: (
        "Payment failed: order {{ number }}",
        "A payment attempt for order {{ number }} failed: {{ reason }}. Customer: {{ masked_email }}, {{ masked_phone }}. The customer was sent help.",
    ),
    K.MANAGER_INCIDENT: (
        "Incident on order {{ number }} ({{ cause }})",
        "Order {{ number }}: {{ summary }}",
    ),
}

SUPPORT_FOOTER = {
    "uk": "Служба підтримки: {{ support }}",
    "ru": "Служба поддержки: {{ support }}",
    "en": "Support: {{ support }}",
}

CANCEL_REASONS = {
    "uk": {
        "customer_request": "на ваше прохання",
        "out_of_stock": "товару немає в наявності",
        "payment_expired": "минув термін оплати",
        "not_collected": "замовлення не забрали вчасно",
        "rejected": "замовлення відхилено менеджером",
        "fraud_suspected": "замовлення не пройшло перевірку",
        "other": "інша причина",
    },
    "ru": {
        "customer_request": "по вашей просьбе",
        "out_of_stock": "товара нет в наличии",
        "payment_expired": "истёк срок оплаты",
        "not_collected": "заказ не забрали вовремя",
        "rejected": "заказ отклонён менеджером",
        "fraud_suspected": "заказ не прошёл проверку",
        "other": "другая причина",
    },
    "en": {
        "customer_request": "at your request",
        "out_of_stock": "items are out of stock",
        "payment_expired": "the payment period ended",
        "not_collected": "the order was not collected in time",
        "rejected": "a manager rejected the order",
        "fraud_suspected": "the order did not pass our checks",
        "other": "another reason",
    },
}
