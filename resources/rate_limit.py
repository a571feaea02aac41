"""Client-side rate limits: a run never sends more than a bank allows in its window.

Banks state limits as "N requests per minute" and count them in a sliding window (Revolut: 60
per minute per business; GoCardless: 100 per minute per company on account endpoints). Waiting
before the request is cheaper than a 429 that costs a retry, and a retried 429 can still be
counted against a daily quota.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque


class RateLimiter:
    """At most `max_requests` in any `period_seconds`; shared by every thread of a run.

    `paths` (a regex) limits only the requests whose path matches: a bank may limit its account
    endpoints and not the rest. `margin_seconds` widens the window: the bank counts a request
    when it arrives, later than we sent it, and arrivals do not keep the order of sending.
    """

    def __init__(
        self,
        max_requests: int | None,
        period_seconds: float = 60.0,
        *,
        paths: str | None = None,
        margin_seconds: float = 0.0,
    ) -> None:
        if max_requests is not None and max_requests < 1:
            raise ValueError("max_requests must be at least 1 (or None for no limit)")
        self.max_requests = max_requests
        self.period_seconds = period_seconds + margin_seconds
        self._paths = re.compile(paths) if paths else None
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    @classmethod
    def per_minute(cls, requests_per_minute: int | None, paths: str | None = None) -> RateLimiter:
        """A limiter for a bank's per-minute limit; 0 or None means no limit."""
        return cls(requests_per_minute or None, paths=paths, margin_seconds=1.0)

    def wait(self, path: str = "") -> None:
        """Block until one more request (to `path`) fits in the window, and count it."""
        if self.max_requests is None or (self._paths is not None and not self._paths.search(path)):
            return
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and self._sent[0] <= now - self.period_seconds:
                    self._sent.popleft()
                if len(self._sent) < self.max_requests:
                    self._sent.append(now)
                    return
                delay = self._sent[0] + self.period_seconds - now
            time.sleep(max(delay, 0.001))
