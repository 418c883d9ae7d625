"""Benchmark: the customer's status page (HTML and its JSON twin) over 100,000 orders (the
goal: p99 under 50 ms).

Starts an embedded PostgreSQL in a temporary directory, migrates it, loads a quarter of a
shop's history by SQL (orders over 90 days in every state — waiting for payment, picking,
in transit, delivered, cancelled and refunded — with their contacts, lines, timelines (one
order in twenty with 60 carrier scans), provider references, receipts, feedback and earlier
visits: about 2 million rows), starts the real API process on it, and times views of random
orders one after another as customers' browsers and chat-bots make them: the page opened
from a message's link, the page, and the JSON twin. Each view writes its visit, as in
production (the reports' triggers recount that order's facts). No Temporal: the page never
asks a workflow.

    .venv/bin/python -m bench.status_page [--orders 100000] [--views 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import httpx
import psutil
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.reports import DatabaseCpu, fresh_database
from devstack.harness import free_port
from schema.database import make_engine
from schema.links import LinkPurpose
from settings import ROOT, Settings

GOAL_MS = 50.0
DAYS = 90
START = datetime(2026, 8, 1, tzinfo=UTC)

# The timeline every order follows as far as its state took it (n, type, stage).
STEPS = [
    (0, "order.received", "intake"),
    (1, "order.validation_started", "validation"),
    (2, "order.validated", "validation"),
    (3, "order.confirmation_started", "confirmation"),
    (4, "order.confirmed", "confirmation"),
    (5, "stock.reservation_started", "stock"),
    (6, "stock.reserved", "stock"),
    (7, "payment.requested", "payment"),
    (8, "payment.succeeded", "payment"),
    (9, "picking.started", "picking"),
    (10, "order.packed", "picking"),
    (11, "shipment.booking", "handover"),
    (12, "documents.started", "documents"),
    (13, "documents.ready", "documents"),
    (14, "order.shipped", "handover"),
    (15, "transit.started", "transit"),
    (16, "carrier.InTransit", "transit"),
    (17, "carrier.OutForDelivery", "transit"),
    (18, "order.delivered", "transit"),
    (19, "feedback.scheduled", "feedback"),
    (20, "feedback.requested", "feedback"),
    (21, "feedback.received", "feedback"),
    (22, "order.completed", "completed"),
]
STEPS_SQL = ",\n".join(f"({n}, '{kind}', '{stage}')" for n, kind, stage in STEPS)

# Each order's state (by i % 10): how far its timeline goes, and its read model's row.
LOAD = [
    """
    INSERT INTO customers (id, email)
    SELECT md5('customer' || i)::uuid, 'bench' || i || '@example.com'
    FROM generate_series(1, :customers) AS i
    """,
    """
    CREATE TABLE bench_plan AS
    SELECT gen_random_uuid() AS id, i,
           md5('customer' || (1 + (hashint4(i) & 2147483647) % :customers))::uuid AS customer_id,
           :start + (random() * :days) * interval '1 day' AS created_at,
           CASE i % 10 WHEN 0 THEN 'cancelled' WHEN 1 THEN 'payment' WHEN 2 THEN 'payment'
                       WHEN 3 THEN 'picking' WHEN 4 THEN 'transit' WHEN 5 THEN 'transit'
                       ELSE 'completed' END AS state,
           (ARRAY['courier', 'courier', 'post', 'pickup'])[1 + (i % 4)] AS delivery_method,
           i % 20 = 7 AS many_scans
    FROM generate_series(1, :orders) AS i
    """,
    """
    INSERT INTO orders (id, number, customer_id, delivery_method, payment_method, currency, total,
                        stage, status, request_hash, created_at, updated_at, expected_date,
                        waiting_for, next_deadline, allowed_actions, payment_status,
                        fulfilment_status)
    SELECT id, 'BENCH-' || i, customer_id, delivery_method, 'prepaid', 'UAH', 620.00, state,
           CASE state WHEN 'cancelled' THEN 'cancelled' WHEN 'payment' THEN 'processing'
                      WHEN 'picking' THEN 'picking' WHEN 'transit' THEN 'in_transit'
                      ELSE 'delivered' END,
           md5(i::text), created_at, created_at, (created_at + interval '3 days')::date,
           CASE state WHEN 'payment' THEN 'payment' WHEN 'picking' THEN 'packing'
                      WHEN 'transit' THEN 'carrier' END,
           CASE WHEN state IN ('payment', 'picking', 'transit') THEN created_at + interval '1 day' END,
           CASE state WHEN 'payment' THEN '["cancel", "mark_delayed"]'::jsonb
                      WHEN 'picking' THEN '["cancel", "mark_delayed"]'::jsonb
                      WHEN 'transit' THEN '["mark_delayed"]'::jsonb ELSE '[]'::jsonb END,
           CASE state WHEN 'payment' THEN 'awaiting_payment' WHEN 'cancelled' THEN 'refunded'
                      ELSE 'paid' END,
           CASE state WHEN 'transit' THEN 'shipped' WHEN 'completed' THEN 'delivered'
                      WHEN 'picking' THEN 'picking' ELSE 'reserved' END
    FROM bench_plan
    """,
    """
    INSERT INTO order_contacts (order_id, name, email, phone, locale, channels, country, city,
                                line1, postal_code)
    SELECT p.id, 'Customer ' || p.i, c.email, '+38050' || lpad(p.i::text, 7, '0'),
           (ARRAY['uk', 'uk', 'ru', 'en'])[1 + p.i % 4], '["email"]', 'UA', 'Kyiv',
           'Street ' || p.i, '01001'
    FROM bench_plan p JOIN customers c ON c.id = p.customer_id
    """,
    """
    INSERT INTO order_lines (order_id, position, sku, name, quantity, unit_price)
    SELECT id, l.position, l.sku, l.name, l.quantity, l.price FROM bench_plan
    CROSS JOIN (VALUES (1, 'MUG-01', 'Чашка «Ранок»', 2, 250.00),
                       (2, 'TEA-02', 'Чай чорний, 100 г', 1, 120.00))
        AS l (position, sku, name, quantity, price)
    """,
    f"""
    INSERT INTO order_events (order_id, key, at, type, stage, actor, detail)
    SELECT p.id, lpad(s.n::text, 4, '0') || ':' || s.type,
           p.created_at + s.n * interval '37 minutes', s.type, s.stage, 'system',
           CASE s.type WHEN 'order.confirmed' THEN
                jsonb_build_object('expected_date', (p.created_at + interval '3 days')::date::text)
                WHEN 'payment.succeeded' THEN '{{"amount": "620.00"}}'::jsonb
                WHEN 'order.shipped' THEN jsonb_build_object('carrier', 'NovaSim',
                     'tracking_number', 'SIM' || p.i) ELSE '{{}}'::jsonb END
    FROM bench_plan p
    CROSS JOIN (VALUES {STEPS_SQL}) AS s (n, type, stage)
    WHERE s.n <= CASE p.state WHEN 'cancelled' THEN 7 WHEN 'payment' THEN 7
                              WHEN 'picking' THEN 9 WHEN 'transit' THEN 16 ELSE 22 END
    """,
    """
    INSERT INTO order_events (order_id, key, at, type, stage, actor, detail)
    SELECT id, lpad((100 + k)::text, 4, '0') || ':' || 'carrier.InTransit',
           created_at + interval '1 day' + k * interval '10 minutes', 'carrier.InTransit',
           'transit', 'carrier', '{"tracking_status": "InTransit", "detail": "scan"}'
    FROM bench_plan CROSS JOIN generate_series(1, 60) AS k
    WHERE many_scans AND state IN ('transit', 'completed')
    """,
    """
    INSERT INTO order_events (order_id, key, at, type, stage, actor, detail)
    SELECT id, '0008:' || 'order.cancelled', created_at + interval '2 days', 'order.cancelled',
           'cancelled', 'customer', '{"reason": "customer_request", "undone": "refunded 620.00"}'
    FROM bench_plan WHERE state = 'cancelled'
    """,
    """
    INSERT INTO order_provider_refs (order_id, payment_id, payment_url, carrier, service,
                                     tracking_number, tracking_url)
    SELECT id, 'pay_' || i, 'https://payments.example/pay/pay_' || i,
           CASE WHEN state IN ('transit', 'completed') THEN 'NovaSim' END,
           CASE WHEN state IN ('transit', 'completed') THEN 'standard' END,
           CASE WHEN state IN ('transit', 'completed') THEN 'SIM' || i END,
           CASE WHEN state IN ('transit', 'completed')
                THEN 'https://tracking.example/track/SIM' || i END
    FROM bench_plan
    """,
    """
    INSERT INTO documents (order_id, kind, content)
    SELECT id, kind, convert_to(repeat('%PDF-1.4 bench ', 200), 'UTF8') FROM bench_plan
    CROSS JOIN (VALUES ('receipt'), ('packing_list'), ('label')) AS d (kind)
    WHERE state IN ('transit', 'completed')
    """,
    """
    INSERT INTO refunds (order_id, idempotency_key, payment_id, amount, status)
    SELECT id, id || ':' || 'refund', 'pay_' || i, 620.00, 'confirmed' FROM bench_plan
    WHERE state = 'cancelled'
    """,
    """
    INSERT INTO feedback (id, order_id, rating, nps)
    SELECT gen_random_uuid(), id, 1 + i % 5, i % 11 FROM bench_plan
    WHERE state = 'completed' AND i % 3 = 0
    """,
    """
    INSERT INTO status_page_visits (order_id, at, source)
    SELECT id, created_at + interval '1 day', (ARRAY['link', 'page', 'json'])[1 + k % 3]
    FROM bench_plan CROSS JOIN generate_series(1, 1 + i % 3) AS k
    """,
    "DROP TABLE bench_plan",
]


async def load(engine: AsyncEngine, orders: int) -> list[uuid.UUID]:
    values = {"orders": orders, "customers": orders * 6 // 10, "start": START, "days": DAYS}
    async with engine.begin() as connection:
        for statement in LOAD:
            started = time.perf_counter()
            await connection.execute(text(statement), values)
            print(f"  {time.perf_counter() - started:6.1f} s  {' '.join(statement.split())[:60]}")
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM FULL order_facts"))
        await connection.execute(text("VACUUM ANALYZE"))
        counts = await connection.execute(
            text(
                "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM order_events),"
                " (SELECT count(*) FROM order_lines), (SELECT count(*) FROM status_page_visits)"
            )
        )
        rows, events, lines, visits = counts.one()
        ids = (await connection.execute(text("SELECT id FROM orders"))).scalars().all()
    print(f"loaded {rows} orders, {events} timeline events, {lines} lines, {visits} visits")
    return list(ids)


def start_api(url: str, port: int) -> subprocess.Popen[bytes]:
    """The real API process, as `make dev` runs it (no Temporal needed for these pages)."""
    env = {
        **os.environ,
        "ORDERFLOW_DEVSTACK": "true",
        "ORDERFLOW_DATABASE_URL": url,
        "ORDERFLOW_API_PORT": str(port),
        "ORDERFLOW_API_METRICS_PORT": str(free_port()),
        "ORDERFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # nobody: never asked
        "ORDERFLOW_STATUS_PAGE_RATE_LIMIT": "1000000/minute",  # one client makes every view
    }
    return subprocess.Popen(
        [sys.executable, "-m", "starter.api"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def views(base: str, tokens: list[str], count: int, shape: str) -> list[float]:
    """`count` views of random orders, one after another; each answer's milliseconds (the
    warm-up's twenty are not counted)."""
    paths = {
        "page from a message": "/order/{}/m",
        "page": "/order/{}",
        "JSON twin": "/v1/customer/orders/{}",
    }
    samples = []
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        for _ in range(20):  # warm-up: connections, plans, template cache
            await http.get(paths[shape].format(random.choice(tokens)))
        for _ in range(count):
            started = time.perf_counter()
            answer = await http.get(paths[shape].format(random.choice(tokens)))
            samples.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200, answer.text[:300]
    return samples


def percentile(ordered: list[float], share: float) -> float:
    return ordered[max(0, round(share * len(ordered)) - 1)]


def _cpu_ms(process: psutil.Process) -> float:
    times = process.cpu_times()
    return (times.user + times.system) * 1000


async def run(url: str, orders: int, count: int, database: DatabaseCpu) -> bool:
    engine = make_engine(url)
    try:
        print(f"loading {orders} orders over {DAYS} days ...")
        ids = await load(engine, orders)
    finally:
        await engine.dispose()
    links = Settings(devstack=True).customer_links()
    tokens = [links.token(LinkPurpose.STATUS, order_id) for order_id in random.sample(ids, 5000)]
    port = free_port()
    api = start_api(url, port)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    await http.get(f"{base}/openapi.json")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        print(
            f"load average {' '.join(f'{n:.1f}' for n in os.getloadavg())} on {os.cpu_count()} cores"
        )
        worst = 0.0
        for shape in ("page from a message", "page", "JSON twin"):
            api_cpu, db_cpu = _cpu_ms(psutil.Process(api.pid)), database.ms()
            ordered = sorted(await views(base, tokens, count, shape))
            # CPU per view, whatever else the machine runs (warm-up views included).
            api_ms = (_cpu_ms(psutil.Process(api.pid)) - api_cpu) / (count + 20)
            db_ms = (database.ms() - db_cpu) / (count + 20)
            p99 = percentile(ordered, 0.99)
            worst = max(worst, p99)
            print(
                f"{shape:<20} {count} views  p50={statistics.median(ordered):5.1f} ms"
                f"  p95={percentile(ordered, 0.95):5.1f} ms  p99={p99:5.1f} ms"
                f"  max={ordered[-1]:6.1f} ms  CPU a view: API {api_ms:.1f} ms,"
                f" database {db_ms:.1f} ms  {'ok' if p99 < GOAL_MS else 'OVER THE GOAL'}"
            )
    finally:
        api.terminate()
        api.wait(timeout=15)
    print(
        f"worst p99 {worst:.1f} ms; goal {GOAL_MS:.0f} ms: {'met' if worst < GOAL_MS else 'MISSED'}"
    )
    return worst < GOAL_MS


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--views", type=int, default=2000)
    args = parser.parse_args()
    with fresh_database("status") as (url, database):
        met = asyncio.run(run(url, args.orders, args.views, database))
    raise SystemExit(0 if met else 1)


if __name__ == "__main__":
    main()
