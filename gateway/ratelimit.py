"""Per-client token buckets, in memory.

Each gateway replica limits on its own; with N replicas a client gets up to N times the
rate. That is acceptable for abuse protection; a shared store would cost a round trip on
every request.
"""

from __future__ import annotations

import math
import time


class RateLimiter:
    def __init__(self, per_minute: int, burst: int, max_clients: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, key: str, now: float | None = None) -> int:
        """0 when the request may go on, else the seconds to wait (for Retry-After)."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            if len(self._buckets) >= self.max_clients and key not in self._buckets:
                self._buckets.clear()  # bounded memory; forgets, never blocks wrongly
            self._buckets[key] = (tokens - 1.0, now)
            return 0
        self._buckets[key] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.rate))
