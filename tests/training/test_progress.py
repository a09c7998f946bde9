"""Where a run stands (seq2seq/training/progress.py): each change of position through one method."""

from dataclasses import asdict

from seq2seq.training.progress import Progress


def test_steps_windows_and_epochs():
    progress = Progress()
    assert progress.start_epoch(1) == 0
    progress.count_step(0, False, loss_sum=10.0, tokens=5, skipped=False)
    progress.count_step(1, False, loss_sum=float("nan"), tokens=7, skipped=True)
    progress.count_step(2, True, loss_sum=4.0, tokens=3, skipped=False)
    assert (progress.step, progress.batch_in_epoch, progress.epoch_complete) == (3, 3, True)
    assert (progress.skipped_steps, progress.skipped_in_row) == (1, 0)
    assert progress.take_window() == (14.0, 8)  # the skipped step's loss stays out
    assert progress.take_window() == (0.0, 0)
    assert progress.start_epoch(2) == 0 and not progress.epoch_complete


def test_a_resumed_epoch_starts_past_the_batches_it_trained():
    progress = Progress(step=7, epoch=3, batch_in_epoch=4)
    assert progress.start_epoch(3) == 4
    assert progress.start_epoch(4) == 0


def test_validations_count_toward_the_best_and_patience():
    progress = Progress()
    assert [progress.record_validation(b) for b in (10.0, 10.0, 9.0, 11.0, 3.0)] == [True, False, False, True, False]
    assert (progress.best_bleu, progress.bad_evals) == (11.0, 1)


def test_the_state_file_fields_stay():
    # training_state.pt's "progress" entry is asdict(Progress): renaming a field breaks resuming older runs.
    assert list(asdict(Progress())) == [
        "step",
        "epoch",
        "batch_in_epoch",
        "epoch_complete",
        "best_bleu",
        "bad_evals",
        "skipped_in_row",
        "skipped_steps",
        "window_loss",
        "window_tokens",
        "train_seconds",
        "finished",
    ]
