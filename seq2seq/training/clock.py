"""The run's one clock: training time, log windows and the time set aside for validation."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


class RunClock:
    """Every duration the loop needs, measured here and nowhere else.

    - Training time runs from the first step, validation and saving included (train.max_minutes
      is a budget for all of it), and carries over a resume: it starts from the saved count.
    - A log window's seconds leave out validation and saving, so its tokens/s measure training.
    - The last validation's evaluation time is kept free at the end of a time budget, so that the
      final validation is not started where it cannot finish.
    """

    def __init__(self, train_seconds: float = 0.0):
        now = time.monotonic()
        self._start = now - train_seconds  # training time is now - _start
        self._window_start = now
        self.last_validation_s = 0.0

    def train_seconds(self) -> float:
        return time.monotonic() - self._start

    def budget_seconds(self) -> float:
        """Training time as train.max_minutes counts it after a step: with the next validation's
        expected duration (the last one's) already spent."""
        return self.train_seconds() + self.last_validation_s

    def take_window(self) -> float:
        """The seconds of training in the log window just ended; the next window starts now."""
        now = time.monotonic()
        seconds, self._window_start = now - self._window_start, now
        return seconds

    @contextlib.contextmanager
    def aside(self) -> Iterator[None]:
        """Time inside counts as training time but not toward the log window (validation, saving)."""
        start = time.monotonic()
        try:
            yield
        finally:
            self._window_start += time.monotonic() - start

    @contextlib.contextmanager
    def evaluation(self) -> Iterator[None]:
        """Time a validation's evaluation: last_validation_s, which the time budget keeps free."""
        start = time.monotonic()
        yield
        self.last_validation_s = time.monotonic() - start
