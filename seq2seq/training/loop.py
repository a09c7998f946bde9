"""Training: from a resolved recipe to the best and last model directories.

`train` is one loop, read top to bottom in phases: start (`start_run`: the run, its data, where
it stands), each epoch (`train_epoch`), and in each epoch each step (`train_step`: zero_grad →
forward → loss → backward → clip → step), a log record now and then, a validation when one is
due or a limit is reached, and the stop; then the finish. Three objects keep the books, each the
only code that changes its part: the `RunClock` (time), `run.lr` (the learning rate) and
`Progress` (where the run stands, through its methods). `stop_reason` says when a run stops,
and why; the only other way out is a signal.
"""

from __future__ import annotations

import itertools
import logging
import math
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seq2seq.config import Config
from seq2seq.data.batching import Batch, EncodedSplit, collate_pairs, make_batches, stream_batches
from seq2seq.data.joining import add_joined_pairs
from seq2seq.model import Seq2Seq
from seq2seq.tokenizer import Tokenizer, seed_sampling
from seq2seq.training.clock import RunClock
from seq2seq.training.distributed import peers_watched
from seq2seq.training.loss import token_loss
from seq2seq.training.progress import Progress
from seq2seq.training.reporting import progress_bar, train_record
from seq2seq.training.resume import StopFlag, TrainingInterrupted
from seq2seq.training.run import TrainingData, TrainingRun, close_run
from seq2seq.training.schedules import stop_reason
from seq2seq.training.setup import start_run
from seq2seq.training.validation import save_checkpoint, save_validated, score_test_split, validate, validate_start

log = logging.getLogger("seq2seq")

OOM = "CUDA out of memory"


def train(config: Config) -> Path:
    """Train a model as the recipe says, continuing the run in run_dir if there is one; return
    the directory of the best model. Raises TrainingInterrupted after SIGINT/SIGTERM (state saved)."""
    run, data, progress = start_run(config)
    try:
        if progress.finished:
            log.info("the run in %s has finished; nothing to do (raise train.epochs, train.max_steps or train.max_minutes to go on)", run.run_dir)
            return run.run_dir / "best"
        clock = RunClock(progress.train_seconds)
        if config.train.init_from is not None and progress.step == 0:
            validate_start(run, data, clock)  # fine-tuning: where the new run starts, for comparison
        with StopFlag() as stop_flag, peers_watched(run.dist):
            for epoch in range(progress.epoch + progress.epoch_complete, config.train.epochs + 1):
                train_epoch(run, data, progress, clock, stop_flag, epoch)
                if progress.finished:
                    break
        return finish(run, data, progress, clock)
    finally:
        close_run(run)


def train_epoch(run: TrainingRun, data: TrainingData, progress: Progress, clock: RunClock, stop_flag: StopFlag, epoch: int) -> None:
    """Train on `epoch`'s batches from where the run stands: each step, a log record every
    train.log_every steps, a validation when one is due or a limit is reached, saves, the stop."""
    config, dist, tc = run.config, run.dist, run.config.train
    first = progress.start_epoch(epoch)
    ladder = run.device.type == "cpu"  # few batch shapes for oneDNN's cache (seq2seq.data.batching.LADDER_STEPS)
    total, batches = epoch_batches(config, data, epoch, first, ladder=ladder)
    bar = progress_bar(total, f"epoch {epoch}", first, enabled=dist.is_main)
    for b, (src, tgt), is_last in with_last(batches, first):
        if len(src) < dist.world:
            # Rare (one sentence longer than train.batch_tokens): every rank needs a share.
            log.warning("batch %d of epoch %d has %d sentences, fewer than the %d ranks: skipped", b, epoch, len(src), dist.world)
            continue
        # Step.
        batch = collate_pairs(dist.shard(src), dist.shard(tgt), ladder=ladder).to(run.device)
        num_tokens = sum(len(t) + 1 for t in tgt)  # the whole batch's, over all ranks
        lr = run.lr.at_step(progress, clock.train_seconds(), total)
        loss_sum, skip_reason = train_step(run, batch, num_tokens=num_tokens)
        progress.count_step(b, is_last, loss_sum=loss_sum, tokens=num_tokens, skipped=skip_reason is not None)
        if skip_reason is not None:
            report_skipped_step(run.model, progress, skip_reason, batch, tc.max_skipped_steps)
        run.lr.after_step()
        bar.update(1)
        # Log.
        if progress.step % tc.log_every == 0:
            log_window(run, progress, clock, lr, bar)
        # Validate and stop: a limit reached makes this step the last, and validating may end the patience.
        budget_seconds = clock.budget_seconds()
        reason = stop_reason(progress, tc, budget_seconds)
        if reason is not None or (tc.eval_every and progress.step % tc.eval_every == 0) or (not tc.eval_every and is_last):
            bar.clear()
            with clock.aside():
                record, improved = validate(run, data, progress, clock)
                reason = stop_reason(progress, tc, budget_seconds)
                if reason is not None:
                    log.info("stopping after step %d: %s", progress.step, reason)
                    progress.finish()
                save_validated(run, progress, clock, record, improved=improved)
        elif tc.save_every and progress.step % tc.save_every == 0:
            with clock.aside():
                save_checkpoint(run, progress, clock)
        if progress.finished:
            break
        # Signals: every rank stops at the same step, with the state saved.
        if dist.any(stop_flag.signum is not None):
            save_checkpoint(run, progress, clock)
            bar.close()
            raise TrainingInterrupted(stop_flag.signum or signal.SIGTERM, progress.step)
    bar.close()


def log_window(run: TrainingRun, progress: Progress, clock: RunClock, lr: float, bar: Any) -> None:
    """Write the log window that ends at this step (mean loss, rate, tokens/s) and start the next."""
    loss_sum, tokens = progress.take_window()
    record = train_record(
        step=progress.step, epoch=progress.epoch, loss_sum=loss_sum, tokens=tokens, lr=lr, seconds=clock.take_window(), skipped_steps=progress.skipped_steps
    )
    run.writer.write(record)
    bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{record['tgt_tokens_per_s']:.0f}", lr=f"{record['lr']:.2e}")


def finish(run: TrainingRun, data: TrainingData, progress: Progress, clock: RunClock) -> Path:
    """Report the run's end, score the best model on the test split (train.score_test) and return its directory."""
    best = run.run_dir / "best"
    log.info("done: %d steps in %.1f s; best validation BLEU %.2f; model in %s", progress.step, clock.train_seconds(), progress.best_bleu, best)
    if run.config.train.score_test and "test" in data.corpus and run.dist.is_main:
        score_test_split(best, data.corpus["test"], run.device)
    run.dist.barrier()
    return best


def train_step(run: TrainingRun, batch: Batch, *, num_tokens: int) -> tuple[float, str | None]:
    """One update on this rank's share of a global batch: zero_grad → forward → loss → backward →
    clip → step, at the rate `run.lr` has set. num_tokens: the global batch's target tokens.

    Returns the batch's summed loss over all ranks and None, or the reason the step made no
    update (a non-finite loss or gradient, CUDA out of memory). Ranks decide together: if any
    rank's forward ran out of memory or any rank's loss is not finite, every rank skips the step,
    so each takes the same steps and their collectives stay paired.
    """
    model, optimizer, tc, dist = run.model, run.optimizer, run.config.train, run.dist
    model.train()
    optimizer.zero_grad(set_to_none=True)
    try:
        with run.autocast:
            features = run.ddp_model(batch.src, batch.src_len, batch.tgt_in, tc.teacher_forcing)
            loss_sum = token_loss(model, features, batch.tgt_out, tc.label_smoothing)
        local_loss, local_oom = loss_sum.item(), 0.0
    except torch.cuda.OutOfMemoryError:
        features = loss_sum = None
        free_cuda_memory(optimizer)
        local_loss, local_oom = 0.0, 1.0
    # One all-reduce of (loss, out-of-memory flag) decides for every rank; a NaN anywhere makes the sum NaN.
    loss_value, ooms = dist.sums(local_loss, local_oom)
    if ooms:
        return math.nan, OOM
    if not math.isfinite(loss_value):
        return loss_value, f"loss is {loss_value}"
    try:
        # DDP averages over ranks, hence the world size: the update is that of one process with the whole batch.
        (loss_sum * dist.world / num_tokens).backward()
    except torch.cuda.OutOfMemoryError:
        features = loss_sum = None
        free_cuda_memory(optimizer)
        if dist.world > 1:
            # The other ranks wait in DDP's gradient all-reduce, which no flag can reach now.
            raise MemoryError(
                f"rank {dist.rank} ran out of CUDA memory in the backward pass, which ranks cannot skip together; lower train.batch_tokens or data.max_len"
            ) from None
        return math.nan, OOM
    # After DDP's all-reduce every rank holds the same gradients, hence the same norm and decision.
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip_norm if tc.clip_norm > 0 else math.inf)
    if not torch.isfinite(grad_norm):
        return loss_value, "gradient norm is not finite"
    optimizer.step()
    return loss_value, None


def free_cuda_memory(optimizer: torch.optim.Optimizer) -> None:
    """Drop a failed step's gradients and return the cached blocks, so the next batch starts clean."""
    optimizer.zero_grad(set_to_none=True)
    torch.cuda.empty_cache()


def report_skipped_step(model: Seq2Seq, progress: Progress, reason: str, batch: Batch, max_in_row: int) -> None:
    """Log a step that made no update (progress has counted it); stop the run after `max_in_row` in a row."""
    culprit = first_nonfinite(model) if reason != OOM else None
    shape = f"source {tuple(batch.src.shape)}, target {tuple(batch.tgt_in.shape)}"
    log.warning("step %d skipped: %s (batch %s)%s", progress.step, reason, shape, f"; first non-finite: {culprit}" if culprit else "")
    if progress.skipped_in_row >= max_in_row:
        if reason == OOM:
            raise MemoryError(f"{progress.skipped_in_row} batches in a row ran out of CUDA memory (last: {shape}); lower train.batch_tokens or data.max_len")
        raise FloatingPointError(
            f"{progress.skipped_in_row} steps in a row had a non-finite loss or gradient (first non-finite: "
            f"{culprit or 'the loss itself'}); lower train.lr, raise train.label_smoothing or check the data"
        )


def first_nonfinite(model: torch.nn.Module) -> str | None:
    """The first parameter whose value or gradient is NaN or infinite, by name."""
    for name, p in model.named_parameters():
        if not torch.isfinite(p).all():
            return f"parameter {name}"
        if p.grad is not None and not torch.isfinite(p.grad).all():
            return f"gradient of {name}"
    return None


def epoch_batches(
    config: Config, data: TrainingData, epoch: int, first: int, *, ladder: bool
) -> tuple[int | None, Iterator[tuple[list[np.ndarray], list[np.ndarray]]]]:
    """The number of global batches in an epoch (None for a stream) and its batches from number
    `first` on, the same on every rank. A stream is re-read up to `first` to find the place.
    ladder: numbers of sentences cut to the shape ladder (`make_batches`), for a CPU run."""
    tc, tokenizer = config.train, data.tokenizer
    if config.data.streaming:
        stream = data.corpus["train"].shuffle(seed=config.seed, buffer_size=config.data.stream_buffer)
        stream.set_epoch(epoch)
        alpha = config.tokenizer.sample_alpha
        seed_sampling(config.seed, epoch)  # a resumed stream re-reads the epoch from its start, drawing the same
        batches = stream_batches(
            stream,
            lambda t: tokenizer.encode_src(t, alpha),
            lambda t: tokenizer.encode_tgt(t, alpha),
            config.data.max_len,
            config.data.stream_buffer,
            tc.batch_tokens,
            config.seed,
            epoch,
            ladder=ladder,
        )
        return None, itertools.islice(batches, first, None)
    src, tgt = sampled_split(data.train_split, data.tokenizer, data.train_text, config, epoch)
    src, tgt = add_joined_pairs(
        src,
        tgt,
        share=config.data.join_pairs,
        stop_src=_piece_id(tokenizer.src, "."),
        stop_tgt=_piece_id(tokenizer.tgt, "."),
        max_len=config.data.max_len,
        seed=config.seed,
        epoch=epoch,
    )
    batches = make_batches(np.array([len(s) + 1 for s in src]), np.array([len(t) for t in tgt]), tc.batch_tokens, config.seed, epoch, ladder=ladder)
    return len(batches), (([src[i] for i in indices], [tgt[i] for i in indices]) for indices in batches[first:])


def _piece_id(sp, piece: str) -> int | None:
    """The id of `piece` in a SentencePiece vocabulary, None where it is not one piece."""
    pid = sp.piece_to_id(piece)
    return None if pid == sp.unk_id() else pid


def sampled_split(
    split: EncodedSplit, tokenizer: Tokenizer, raw: tuple[list[str], list[str]], config: Config, epoch: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The training pairs' token ids for one epoch; with subword sampling on, a segmentation of every
    sentence drawn for (seed, epoch), so a resumed epoch draws the same.

    The whole epoch is drawn before batching because a sampled segmentation is often longer than
    the fixed one: on Multi30k, batches built from the fixed lengths held 26% target padding
    (0.7% when built from the sampled ones) and trained 16-20% slower.
    """
    alpha = config.tokenizer.sample_alpha
    if alpha <= 0:
        return split.src, split.tgt
    rows = [int(r) for r in split.rows]
    seed_sampling(config.seed, epoch)
    sampled_src = tokenizer.encode_src([raw[0][r] for r in rows], alpha)
    sampled_tgt = tokenizer.encode_tgt([raw[1][r] for r in rows], alpha)
    src, tgt = list(split.src), list(split.tgt)
    for k, (s, t) in enumerate(zip(sampled_src, sampled_tgt)):
        # A sampled segmentation can be longer than the filter allowed; keep the fixed one then.
        if len(s) <= config.data.max_len and len(t) <= config.data.max_len:
            src[k], tgt[k] = np.asarray(s, dtype=np.int64), np.asarray(t, dtype=np.int64)
    return src, tgt


def with_last(items: Iterator[Any], start: int = 0) -> Iterator[tuple[int, Any, bool]]:
    """(index, item, is_last) for each item, counting from `start`; it looks one ahead so streams need no length."""
    items = iter(items)
    try:
        current = next(items)
    except StopIteration:
        return
    for index in itertools.count(start):
        try:
            following = next(items)
        except StopIteration:
            yield index, current, True
            return
        yield index, current, False
        current = following
