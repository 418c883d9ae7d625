"""Benchmark: time from `POST /v1/orders` to the confirmation e-mail in the mailbox.

Seed 000: buyers expect the confirmation within 5 minutes; orderflow aims for under 2 s.
Starts the same stack as `make dev` (on free ports, in a temporary data dir), posts
orders one after another and then in parallel, and prints latency percentiles.

    .venv/bin/python -m bench.confirmation [--orders 50] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from devstack.harness import DevStack
from devstack.mailsink import read_maildir
from schema.api.orders import sample_order


class Mailbox:
    """Watches the Maildir once for everyone: arrival time of the mail for each order tag."""

    def __init__(self, maildir: Path) -> None:
        self._new = maildir / "new"
        self._seen: set[str] = set()
        self._arrived: dict[str, asyncio.Future[float]] = {}

    def expect(self, tag: str) -> asyncio.Future[float]:
        return self._arrived.setdefault(tag, asyncio.get_running_loop().create_future())

    async def watch(self) -> None:
        while True:
            for path in self._new.iterdir():
                if path.name in self._seen:
                    continue
                self._seen.add(path.name)
                head = path.read_text(errors="ignore")[:600]
                tag = head.split("iryna.", 1)[1].split("@", 1)[0] if "iryna.bench-" in head else ""
                future = self.expect(tag)
                if not future.done():
                    future.set_result(time.perf_counter())
            await asyncio.sleep(0.002)


async def one(http: httpx.AsyncClient, mailbox: Mailbox) -> tuple[float, float]:
    """(seconds for the 202, seconds until the e-mail is in the Maildir)."""
    tag = f"bench-{uuid.uuid4().hex[:10]}"  # e-mails are stored lower-case
    arrival = mailbox.expect(tag)
    started = time.perf_counter()
    response = await http.post("/v1/orders", json=sample_order(tag))
    accepted = time.perf_counter() - started
    response.raise_for_status()
    return accepted, await asyncio.wait_for(arrival, 60) - started


def report(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    print(
        f"{name:<34} n={len(ordered):<4} p50={statistics.median(ordered) * 1000:7.1f} ms"
        f"  p95={p95 * 1000:7.1f} ms  max={ordered[-1] * 1000:7.1f} ms"
    )


async def run(
    api: str, headers: dict[str, str], maildir: Path, orders: int, concurrency: int
) -> None:
    mailbox = Mailbox(maildir)
    watcher = asyncio.create_task(mailbox.watch())
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=30) as http:
        await one(http, mailbox)  # warm-up: connections, caches, first workflow task
        sequential = [await one(http, mailbox) for _ in range(orders)]
        report("POST /v1/orders -> 202 (sequential)", [a for a, _ in sequential])
        report("POST -> e-mail in mailbox (sequential)", [m for _, m in sequential])

        gate = asyncio.Semaphore(concurrency)

        async def gated() -> tuple[float, float]:
            async with gate:
                return await one(http, mailbox)

        started = time.perf_counter()
        parallel = await asyncio.gather(*(gated() for _ in range(orders)))
        elapsed = time.perf_counter() - started
        report(f"POST -> e-mail ({concurrency} in parallel)", [m for _, m in parallel])
        print(f"{'throughput':<34} {orders / elapsed:.1f} orders/s confirmed end to end")
    watcher.cancel()
    confirmations = [m for m in read_maildir(maildir) if ".confirmation." in str(m["Message-ID"])]
    print(f"mailbox holds {len(confirmations)} confirmations (expected {2 * orders + 1})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="orderflow-bench-") as tmp,
        DevStack(Path(tmp) / "data", ORDERFLOW_SIMULATOR_AUTOPILOT="false") as stack,
    ):
        print(
            f"stack healthy; {args.orders} orders, sequential then {args.concurrency} in parallel"
        )
        asyncio.run(run(stack.api, stack.auth, stack.data / "mail", args.orders, args.concurrency))


if __name__ == "__main__":
    main()
