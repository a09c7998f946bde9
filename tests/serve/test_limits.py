"""--req-limit's moving window, with a clock the test moves (no sleeping)."""

from __future__ import annotations

import pytest

from seq2seq.serve.limits import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_gets_its_limit_per_window_and_is_told_how_long_to_wait():
    clock = Clock()
    limiter = RateLimiter(3, 60, clock=clock)
    for _ in range(3):  # at t = 1000, 1010, 1020
        assert limiter.hit("a") == 0
        clock.now += 10
    assert limiter.hit("a") == pytest.approx(30)  # t = 1030: the hit of t = 1000 leaves the window at 1060
    assert limiter.hit("b") == 0  # another key has its own window
    clock.now = 1060
    assert limiter.hit("a") == 0  # a moving window: the oldest hit has left it (the refused one was not counted)
    assert limiter.hit("a") == pytest.approx(10)  # now 1010, 1020, 1060 are in: 1010 leaves at 1070
    assert limiter.retry_after(0.2) == "1" and limiter.retry_after(59.1) == "60"


def test_a_list_costs_one_per_entry_and_one_dearer_than_the_limit_never_passes():
    clock = Clock()
    limiter = RateLimiter(5, 60, clock=clock)
    assert limiter.hit("k", 4) == 0
    assert limiter.hit("k", 2) > 0  # 4 + 2 > 5: refused, and not counted
    assert limiter.hit("k", 1) == 0
    assert limiter.hit("fresh", 6) == 60
    clock.now += 61
    assert limiter.hit("k", 5) == 0


def test_memory_is_bounded_idle_keys_are_forgotten():
    clock = Clock()
    limiter = RateLimiter(1, 60, max_keys=3, clock=clock)
    for key in "abcde":
        limiter.hit(key)
    assert len(limiter) == 3  # a, b went first (least recently seen)
    assert limiter.hit("e") > 0 and limiter.hit("a") == 0  # e is remembered; a was forgotten
    clock.now += 61
    limiter.hit("z")
    assert len(limiter) == 1  # every key idle for a window is gone


def test_a_limit_below_one_is_refused():
    with pytest.raises(ValueError, match="limit must be >= 1"):
        RateLimiter(0)
