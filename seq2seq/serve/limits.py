"""--req-limit: requests per minute per API key (else per client address), as LibreTranslate counts them.

A moving window, as LibreTranslate's limiter ("moving-window"): a key may spend `limit` units in
any `window` seconds; a request costs one unit per q entry (at least one), as LibreTranslate
charges a batch. Memory stays bounded: a key whose last hit has left the window is forgotten, and
past `max_keys` keys the least recently seen goes first (a scan of many addresses cannot grow it).
No web framework: the clock is a parameter, so the tests need no sleeping.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable

WINDOW_S = 60.0
MAX_KEYS = 100_000


class RateLimiter:
    """`hit(key, cost)` → seconds to wait before retrying (0: allowed, and counted)."""

    def __init__(self, limit: int, window: float = WINDOW_S, *, max_keys: int = MAX_KEYS, clock: Callable[[], float] = time.monotonic):
        if limit < 1:
            raise ValueError(f"limit must be >= 1 (-1, no limit, means no RateLimiter); got {limit}")
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        # Per key, the times of its hits (one entry per unit), oldest first; keys in least recently seen order.
        self._hits: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._hits)

    def hit(self, key: str, cost: int = 1) -> float:
        now = self.clock()
        self._evict(now)
        times = self._hits.pop(key, None) or collections.deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        cost = max(1, cost)
        wait = 0.0
        if len(times) + cost > self.limit:
            # A request dearer than the whole limit is never allowed: it waits a full window, as one at the limit.
            overflow = len(times) + cost - self.limit
            wait = self.window if overflow > len(times) else times[overflow - 1] + self.window - now
        else:
            times.extend([now] * cost)
        if times:
            self._hits[key] = times  # (re)inserted last: the most recently seen
        return wait

    def retry_after(self, wait: float) -> str:
        """The Retry-After header's whole seconds for a wait."""
        return str(max(1, math.ceil(wait)))

    def _evict(self, now: float) -> None:
        """Forget keys idle for a whole window (oldest first), then the least recently seen beyond max_keys."""
        while self._hits:
            key, times = next(iter(self._hits.items()))
            if times and times[-1] > now - self.window and len(self._hits) < self.max_keys:
                return
            del self._hits[key]
