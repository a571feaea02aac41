"""Reading several accounts of one connection at once.

Every per-account limit (Berlin Group frequencyPerDay, GoCardless 4 calls a day) is per
account, so reading k accounts concurrently divides a run's waiting on the bank by k without
spending one more call. The cap stays small and configurable: banks also throttle per client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_in_order(work: Callable[[T], R], items: Iterable[T], max_workers: int) -> list[R]:
    """`[work(item) for item in items]`, up to `max_workers` at a time, results in input order.

    The first failure cancels what has not started and is raised once the running calls end,
    so a run fails as it would sequentially, with no call left running behind it.
    """
    items = list(items)
    if max_workers <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items)), thread_name_prefix="account") as pool:
        futures = [pool.submit(work, item) for item in items]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((future for future in futures if future in done and future.exception()), None)
        if failed is not None:
            for future in futures:
                future.cancel()
            wait(futures)
            raise failed.exception()
        return [future.result() for future in futures]
