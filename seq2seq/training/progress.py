"""Where a run stands, and the only code that changes it.

`Progress` is what training_state.pt keeps of a run's position (its fields are the file's
"progress" entry, so their names stay). The loop and validation move it through its methods,
never by assigning fields, so every change of a run's position is written here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Progress:
    """Where a run is; everything here goes into training_state.pt."""

    step: int = 0
    epoch: int = 1
    batch_in_epoch: int = 0  # batches of `epoch` already trained on
    epoch_complete: bool = False  # `epoch` has no batches left
    best_bleu: float = -1.0
    bad_evals: int = 0
    skipped_in_row: int = 0  # steps without an update in a row (non-finite, out of memory)
    skipped_steps: int = 0
    window_loss: float = 0.0  # the current log interval's sums, so intervals match across a resume
    window_tokens: int = 0
    train_seconds: float = 0.0  # as of the last save: the live count is the loop's RunClock
    finished: bool = False

    def start_epoch(self, epoch: int) -> int:
        """Enter `epoch`; return the first batch to train on (past those a resumed run has trained)."""
        first = self.batch_in_epoch if epoch == self.epoch else 0
        self.epoch, self.batch_in_epoch, self.epoch_complete = epoch, first, False
        return first

    def count_step(self, batch: int, is_last: bool, *, loss_sum: float, tokens: int, skipped: bool) -> None:
        """Count a step on batch number `batch` of the epoch: an update whose loss joins the log
        window, or a skipped one (non-finite, out of memory) that counts toward train.max_skipped_steps."""
        if skipped:
            self.skipped_in_row += 1
            self.skipped_steps += 1
        else:
            self.skipped_in_row = 0
            self.window_loss += loss_sum
            self.window_tokens += tokens
        self.step += 1
        self.batch_in_epoch, self.epoch_complete = batch + 1, is_last

    def take_window(self) -> tuple[float, int]:
        """The log window's summed loss and target tokens; the next window starts empty."""
        window = self.window_loss, self.window_tokens
        self.window_loss, self.window_tokens = 0.0, 0
        return window

    def record_validation(self, bleu: float) -> bool:
        """Count a validation's BLEU toward the best score and train.patience; return whether it improved."""
        improved = bleu > self.best_bleu
        if improved:
            self.best_bleu, self.bad_evals = bleu, 0
        else:
            self.bad_evals += 1
        return improved

    def note_time(self, train_seconds: float) -> None:
        """Keep the training time so far, for the state file (a resumed run's clock starts from it)."""
        self.train_seconds = train_seconds

    def finish(self) -> None:
        self.finished = True

    def reopen(self) -> None:
        """Continue a finished run whose recipe now allows more steps, epochs or time."""
        self.finished = False
