"""Training: from a resolved recipe to the best and last model directories.

`train` is one loop, readable top to bottom: zero_grad → forward → loss → backward → clip →
step, with validation (loss and BLEU), checkpoints and early stopping now and then. The
helpers around it are plain functions.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from seq2seq.atomic import write_text_atomic
from seq2seq.checkpoint import model_card, save_model_dir
from seq2seq.config import Config, TrainConfig, dump_yaml
from seq2seq.data import (
    DataError,
    EncodedSplit,
    collate,
    collate_pairs,
    describe_source,
    encode_split,
    load_corpus,
    make_batches,
    stream_batches,
)
from seq2seq.distributed import Dist, init_distributed, shut_down
from seq2seq.loss import linear_cross_entropy
from seq2seq.model import Seq2Seq, build_model
from seq2seq.reporting import metrics_writer, progress_bar, window_record
from seq2seq.resume import (
    Progress,
    ResumeError,
    StopFlag,
    TrainingInterrupted,
    capture_rng,
    check_resumable,
    load_state,
    restore,
    save_state,
    truncate_metrics,
)
from seq2seq.tokenizer import Tokenizer, copy_tokenizer, load_tokenizer, reachable_target_ids, seed_sampling, tokenizer_sha256, train_tokenizer
from seq2seq.translate import SearchOptions, decode_sources

log = logging.getLogger("seq2seq")


def train(config: Config) -> Path:
    """Train a model as the recipe says, continuing the run in run_dir if there is one; return
    the directory of the best model. Raises TrainingInterrupted after SIGINT/SIGTERM (state saved)."""
    tc = config.train
    dist, device = init_distributed(pick_device(tc.device))
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_writable(run_dir)
    saved = load_state(run_dir)
    if saved is not None:
        check_resumable(saved, config, run_dir)
    if dist.is_main:
        write_text_atomic(run_dir / "config.yaml", dump_yaml(config))
    # Each rank draws its own dropout masks; batches depend on the seed alone, so ranks agree on them.
    seed_everything(config.seed + dist.rank)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    if device.type == "cpu":
        keep_freed_memory()

    corpus, tokenizer, train_split, valid_split, valid_refs, train_text = prepare_data(config, run_dir, dist, saved)
    streaming = config.data.streaming
    tokenizer_sha = tokenizer_sha256(run_dir, tokenizer.joint)

    model = new_model(config, tokenizer, train_split).to(device)
    # DDP averages gradients across ranks as they are computed; the loss below scales for that.
    forward = torch.nn.parallel.DistributedDataParallel(model) if dist.world > 1 else model
    num_params = sum(p.numel() for p in model.parameters())
    optimizer = new_optimizer(model, tc)
    warmup = make_warmup_schedule(optimizer, tc)
    plateau = (
        torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=tc.plateau_factor, patience=tc.plateau_patience, min_lr=tc.min_lr)
        if tc.scheduler == "plateau"
        else None
    )
    progress = Progress()
    if saved is None:
        if dist.is_main:
            truncate_metrics(run_dir / "metrics.jsonl", 0)  # records of an attempt that died before its first checkpoint
    else:
        progress = restore(saved, model, optimizer, warmup, plateau, dist.rank)
        if dist.is_main:
            truncate_metrics(run_dir / "metrics.jsonl", progress.step)
        log.info("resuming %s at step %d (epoch %d, batch %d)", run_dir, progress.step, progress.epoch, progress.batch_in_epoch)
    if progress.finished and not limits_reached(progress, tc):
        log.info("continuing the finished run: the recipe allows more steps or epochs now")
        progress.finished = False
    if progress.finished:
        log.info("the run in %s has finished; nothing to do (raise train.epochs, train.max_steps or train.max_minutes to go on)", run_dir)
        shut_down(dist)
        return run_dir / "best"
    log.info("model: %s parameters on %s%s", f"{num_params:,}", device, f", rank {dist.rank} of {dist.world}" if dist.world > 1 else "")
    if tc.bf16 and device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        log.warning("train.bf16=true but this CPU has no bf16 instructions: training will be slower, not faster; set train.bf16=false")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if tc.bf16 else contextlib.nullcontext()
    writer = metrics_writer(run_dir, tc.tensorboard, enabled=dist.is_main)

    def checkpoint(meta: dict[str, Any] | None = None) -> None:
        """Save the last model directory (when there is a validation result) and the resume state."""
        rng = dist.gather(capture_rng())  # every rank's generators, so each resumes its own
        if not dist.is_main:
            return
        if meta is not None:
            save_model_dir(run_dir / "last", model, config, run_dir, meta, model_card(config, meta))
        save_state(run_dir, config, model, optimizer, warmup, plateau, progress, tokenizer_sha, rng)

    def epoch_batches(epoch: int, first: int) -> tuple[int | None, Iterator[tuple[list[np.ndarray], list[np.ndarray]]]]:
        """The number of global batches in an epoch (None for a stream) and its batches from number
        `first` on, the same on every rank. A stream is re-read up to `first` to find the place."""
        if streaming:
            stream = corpus["train"].shuffle(seed=config.seed, buffer_size=config.data.stream_buffer)
            stream.set_epoch(epoch)
            alpha = config.tokenizer.sample_alpha
            seed_sampling(config.seed, epoch)  # a resumed stream re-reads the epoch from its start, drawing the same
            batches = stream_batches(stream, lambda t: tokenizer.encode_src(t, alpha), lambda t: tokenizer.encode_tgt(t, alpha),
                                     config.data.max_len, config.data.stream_buffer, tc.batch_tokens, config.seed, epoch)
            return None, itertools.islice(batches, first, None)
        src, tgt = sampled_split(train_split, tokenizer, train_text, config, epoch)
        batches = make_batches(np.array([len(s) + 1 for s in src]), np.array([len(t) for t in tgt]), tc.batch_tokens, config.seed, epoch)
        return len(batches), (([src[i] for i in indices], [tgt[i] for i in indices]) for indices in batches[first:])

    clock = time.time()
    window_start = time.time()
    eval_seconds = 0.0  # the last validation's duration
    with StopFlag() as stop_flag:
        for epoch in range(progress.epoch + progress.epoch_complete, tc.epochs + 1):
            first = progress.batch_in_epoch if epoch == progress.epoch else 0
            progress.epoch, progress.batch_in_epoch, progress.epoch_complete = epoch, first, False
            total, batches = epoch_batches(epoch, first)
            bar = progress_bar(total, f"epoch {epoch}", first, enabled=dist.is_main)
            for b, (src, tgt), is_last in with_last(batches, first):
                if len(src) < dist.world:
                    # Rare (one sentence longer than train.batch_tokens): every rank needs a share.
                    log.warning("batch %d of epoch %d has %d sentences, fewer than the %d ranks: skipped", b, epoch, len(src), dist.world)
                    continue
                batch = collate_pairs(dist.shard(src), dist.shard(tgt)).to(device)
                num_tokens = sum(len(t) + 1 for t in tgt)  # the whole batch's, over all ranks
                model.train()
                optimizer.zero_grad(set_to_none=True)
                try:
                    with autocast:
                        features = forward(batch.src, batch.src_len, batch.tgt_in, tc.teacher_forcing)
                        loss_sum = token_loss(model, features, batch.tgt_out, tc.label_smoothing)
                    loss_value = dist.sum(loss_sum.item())
                    finite = math.isfinite(loss_value)
                    if finite:
                        # DDP averages over ranks, hence the world size: the update is that of one
                        # process with the whole batch.
                        (loss_sum * dist.world / num_tokens).backward()
                        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip_norm if tc.clip_norm > 0 else math.inf)
                        finite = bool(torch.isfinite(grad_norm))
                    if finite:
                        if tc.scheduler == "linear":
                            set_lr(optimizer, linear_lr(tc, progress, progress.train_seconds + time.time() - clock, total))
                        optimizer.step()
                        progress.skipped_in_row = 0
                        progress.window_loss += loss_value
                        progress.window_tokens += num_tokens
                    else:
                        skip_step(model, progress, tc, f"loss is {loss_value}" if not math.isfinite(loss_value) else "gradient norm is not finite", batch)
                except torch.cuda.OutOfMemoryError:
                    features = loss_sum = None
                    optimizer.zero_grad(set_to_none=True)
                    torch.cuda.empty_cache()
                    skip_step(model, progress, tc, "CUDA out of memory", batch)
                if warmup is not None:
                    warmup.step()
                progress.step += 1
                progress.batch_in_epoch, progress.epoch_complete = b + 1, is_last
                bar.update(1)

                if progress.step % tc.log_every == 0:
                    record = window_record(progress, epoch, optimizer, time.time() - window_start)
                    window_start = time.time()
                    writer.write(record)
                    bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{record['tgt_tokens_per_s']:.0f}", lr=f"{record['lr']:.2e}")

                # The last validation's duration is kept free, so the final one ends within the budget.
                out_of_time = tc.max_minutes > 0 and progress.train_seconds + time.time() - clock + eval_seconds >= 60 * tc.max_minutes
                last_step = progress.step == tc.max_steps or (epoch == tc.epochs and is_last) or out_of_time
                if (tc.eval_every and progress.step % tc.eval_every == 0) or (not tc.eval_every and is_last) or last_step:
                    eval_start = time.time()
                    result = dist.broadcast(evaluate(model, valid_split, valid_refs, tokenizer, device, tc, autocast) if dist.is_main else None)
                    eval_seconds = time.time() - eval_start
                    improved = result["bleu"] > progress.best_bleu
                    if improved:
                        progress.best_bleu, progress.bad_evals = result["bleu"], 0
                    else:
                        progress.bad_evals += 1
                    progress.train_seconds += time.time() - clock
                    clock = time.time()
                    result.update(type="valid", step=progress.step, epoch=epoch, best_bleu=progress.best_bleu,
                                  skipped_steps=progress.skipped_steps, elapsed_s=round(progress.train_seconds, 1),
                                  valid_s=round(eval_seconds, 1))
                    writer.write(result)
                    bar.clear()
                    log.info("valid step %d epoch %d: loss %.3f ppl %.2f BLEU %.2f (best %.2f%s) after %.0f s",
                             progress.step, epoch, result["loss"], result["ppl"], result["bleu"], progress.best_bleu,
                             ", new" if improved else "", progress.train_seconds)
                    if plateau is not None:
                        plateau.step(result["bleu"])
                    if tc.patience and progress.bad_evals >= tc.patience:
                        log.info("early stopping: no BLEU improvement in %d evaluations", tc.patience)
                        progress.finished = True
                    progress.finished = progress.finished or last_step
                    meta = {"step": progress.step, "epoch": epoch, "valid_bleu": result["bleu"], "valid_bleu_signature": result["bleu_signature"],
                            "num_parameters": num_params, "train_seconds": round(progress.train_seconds, 1)}
                    if improved and dist.is_main:
                        save_model_dir(run_dir / "best", model, config, run_dir, meta, model_card(config, meta))
                    if tc.keep_checkpoints and dist.is_main:
                        keep_checkpoint(run_dir, model, config, meta, tc.keep_checkpoints)
                    checkpoint(meta)
                elif tc.save_every and progress.step % tc.save_every == 0:
                    checkpoint()
                if progress.finished:
                    break
                if dist.any(stop_flag.signum is not None):
                    progress.train_seconds += time.time() - clock
                    checkpoint()
                    bar.close()
                    writer.close()
                    shut_down(dist)
                    raise TrainingInterrupted(stop_flag.signum or signal.SIGTERM, progress.step)
            bar.close()
            if progress.finished:
                break
    writer.close()
    log.info("done: %d steps in %.1f s; best validation BLEU %.2f; model in %s", progress.step, progress.train_seconds, progress.best_bleu, run_dir / "best")
    if tc.score_test and "test" in corpus and dist.is_main:
        score_test_split(run_dir / "best", corpus["test"], device)
    dist.barrier()
    shut_down(dist)
    return run_dir / "best"


def new_model(config: Config, tokenizer: Tokenizer, train_split: EncodedSplit | None) -> Seq2Seq:
    """The recipe's model, untrained; with model.output_vocab=target its output layer is limited to
    the pieces the training targets can hold."""
    model = build_model(config.model, tokenizer.src_vocab_size, tokenizer.tgt_vocab_size, tokenizer.joint)
    if model.decoder.output_mask is not None:
        assert train_split is not None, "load_config rejects output_vocab=target with a streamed corpus"
        model.decoder.restrict_output_to(reachable_target_ids(tokenizer, train_split.tgt))
        log.info("output layer: %d of the %d target pieces (model.output_vocab=target)", int(model.decoder.output_mask.sum()), tokenizer.tgt_vocab_size)
    return model


def new_optimizer(model: Seq2Seq, tc: TrainConfig) -> torch.optim.Adam:
    # fused: one kernel over all parameters instead of a dozen passes (3 ms a step for en-de on the CPU, not 9).
    return torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, fused=True)


class TrainingData(NamedTuple):
    corpus: dict[str, Any]  # the splits as `datasets` objects; train is an IterableDataset when streaming
    tokenizer: Tokenizer
    train_split: EncodedSplit | None  # None when streaming
    valid_split: EncodedSplit
    valid_refs: list[str]
    train_text: tuple[list[str], list[str]]  # raw training sentences, kept only for subword sampling


def prepare_data(config: Config, run_dir: Path, dist: Dist, saved: dict[str, Any] | None) -> TrainingData:
    """Load the corpus, train (or, on resume, reuse) the tokenizer and encode the splits."""
    if not dist.is_main:
        dist.barrier()  # rank 0 generates the demo corpus and trains the tokenizer first
    corpus = load_corpus(config.data, run_dir)
    streaming = config.data.streaming
    if streaming:  # SentencePiece learns from a sample; the rest of the stream is never held
        sample = list(itertools.islice(corpus["train"], config.data.tokenizer_sample))
        train_text = ([p["src"] for p in sample], [p["tgt"] for p in sample])
        if not sample:
            raise DataError(f"the training stream of {describe_source(config.data)} is empty")
    else:
        train_text = (list(corpus["train"]["src"]), list(corpus["train"]["tgt"]))
    tokenizer = prepare_tokenizer(config, run_dir, train_text, saved if dist.is_main else {"tokenizer_sha256": None})
    if dist.is_main:
        dist.barrier()
    source = describe_source(config.data)
    train_split = None if streaming else encode_split(corpus["train"], tokenizer.encode_src, tokenizer.encode_tgt, config.data.max_len, f"train split of {source}")
    valid_split = encode_split(corpus["valid"], tokenizer.encode_src, tokenizer.encode_tgt, config.data.max_len, f"valid split of {source}")
    valid_tgt = list(corpus["valid"]["tgt"])
    valid_refs = [valid_tgt[int(i)] for i in valid_split.rows]
    if config.data.max_valid_sentences:
        valid_split, valid_refs = _head(valid_split, config.data.max_valid_sentences), valid_refs[: config.data.max_valid_sentences]
    if streaming:
        log.info("data: training pairs streamed from %s (tokenizer trained on %d), %d validation pairs; vocabulary %d/%d",
                 source, len(train_text[0]), len(valid_split), tokenizer.src_vocab_size, tokenizer.tgt_vocab_size)
    else:
        log.info(
            "data: %d training pairs (%d dropped by length), %d validation pairs; %d target tokens per epoch; vocabulary %d/%d",
            len(train_split), train_split.dropped, len(valid_split), train_split.target_tokens(), tokenizer.src_vocab_size, tokenizer.tgt_vocab_size,
        )
    keep_text = config.tokenizer.sample_alpha > 0 and not streaming  # only subword sampling rereads the raw text
    return TrainingData(corpus, tokenizer, train_split, valid_split, valid_refs, train_text if keep_text else ([], []))


def score_test_split(model_dir: Path, test, device: torch.device, beam_size: int = 5) -> None:
    """Translate the test split once with the best model and record its BLEU in meta.json and the card."""
    from seq2seq.checkpoint import CARD, META, read_model_dir
    from seq2seq.scoring import corpus_bleu
    from seq2seq.translate import Translator

    translator = Translator.from_pretrained(model_dir, device=device.type)
    hyps = translator.translate(list(test["src"]), beam_size=beam_size)
    bleu = corpus_bleu(hyps, list(test["tgt"]))
    config, meta = read_model_dir(model_dir)
    meta.update(test_bleu=bleu.score, test_bleu_signature=bleu.signature, test_beam_size=beam_size)
    write_text_atomic(model_dir / META, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(model_dir / CARD, model_card(config, meta))
    log.info("test BLEU of the best model (beam %d): %.2f  %s", beam_size, bleu.score, bleu.signature)


def limits_reached(progress: Progress, tc: TrainConfig) -> bool:
    """Whether a run at `progress` is done under the recipe's (possibly changed) limits."""
    if tc.max_steps and progress.step >= tc.max_steps:
        return True
    if tc.max_minutes and progress.train_seconds >= 60 * tc.max_minutes:
        return True
    if tc.patience and progress.bad_evals >= tc.patience:
        return True
    return progress.epoch > tc.epochs or (progress.epoch == tc.epochs and progress.epoch_complete)


def keep_checkpoint(run_dir: Path, model: Seq2Seq, config: Config, meta: dict[str, Any], keep: int) -> None:
    """Save this validation's model as checkpoints/step-NNNNNNNN and delete all but the last `keep`."""
    import shutil

    folder = run_dir / "checkpoints"
    save_model_dir(folder / f"step-{meta['step']:08d}", model, config, run_dir, meta, model_card(config, meta))
    for old in sorted(p for p in folder.glob("step-*") if p.is_dir())[:-keep]:
        shutil.rmtree(old)


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


def prepare_tokenizer(config: Config, run_dir: Path, train_text: tuple[list[str], list[str]], saved: dict[str, Any] | None) -> Tokenizer:
    """Train SentencePiece for a new run; reuse the run's own for a resumed one (checked by hash)."""
    tok = config.tokenizer
    if saved is not None and saved["tokenizer_sha256"] is None:
        return load_tokenizer(run_dir, tok.joint)  # a non-main rank: rank 0 has just trained or checked it
    if saved is None and tok.reuse is not None:
        return copy_tokenizer(Path(tok.reuse), run_dir, tok.joint)
    if saved is None:
        return train_tokenizer(run_dir, *train_text, tok.vocab_size, tok.model_type, tok.character_coverage, tok.byte_fallback, tok.joint, config.seed)
    sha = tokenizer_sha256(run_dir, tok.joint)
    if sha != saved["tokenizer_sha256"]:
        raise ResumeError(f"cannot resume the run in {run_dir}: its SentencePiece model changed since the run started; restore it or use a new run_dir")
    return load_tokenizer(run_dir, tok.joint)


def skip_step(model: Seq2Seq, progress: Progress, tc: TrainConfig, reason: str, batch) -> None:
    """Count a step that made no update (non-finite loss or gradient, out of memory); stop after too many in a row."""
    progress.skipped_in_row += 1
    progress.skipped_steps += 1
    culprit = first_nonfinite(model) if reason != "CUDA out of memory" else None
    shape = f"source {tuple(batch.src.shape)}, target {tuple(batch.tgt_in.shape)}"
    log.warning("step %d skipped: %s (batch %s)%s", progress.step + 1, reason, shape, f"; first non-finite: {culprit}" if culprit else "")
    if progress.skipped_in_row >= tc.max_skipped_steps:
        if reason == "CUDA out of memory":
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


def token_loss(model: Seq2Seq, features: torch.Tensor, tgt_out: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Summed label-smoothed cross-entropy over the real target tokens.

    features (B, T, E), tgt_out (B, T); only non-pad positions are projected to the vocabulary,
    which skips the largest matrix product for every padded position.
    """
    mask = tgt_out != 0
    weight, bias, to_row = model.decoder.output_layer()
    target = tgt_out[mask]
    return linear_cross_entropy(features[mask], weight, bias, target if to_row is None else to_row[target], label_smoothing)


@torch.inference_mode()
def evaluate(model: Seq2Seq, split: EncodedSplit, refs: list[str], tokenizer: Tokenizer, device: torch.device, tc: TrainConfig, autocast) -> dict[str, Any]:
    """Validation loss and perplexity (teacher-forced, no smoothing) and BLEU on detokenized text."""
    from seq2seq.scoring import corpus_bleu

    model.eval()
    total, tokens = 0.0, 0
    for indices in make_batches(np.array([len(s) for s in split.src]), np.array([len(t) for t in split.tgt]), 4 * tc.batch_tokens, 0, 0):
        batch = collate(split, indices).to(device)
        with autocast:
            features = model(batch.src, batch.src_len, batch.tgt_in)
            total += token_loss(model, features, batch.tgt_out, 0.0).item()
        tokens += batch.num_tokens
    with autocast:
        hyps = decode_sources(model, split.src, device, SearchOptions(beam_size=tc.valid_beam_size), batch_size=64)
    texts = tokenizer.decode_tgt([h[0].tokens for h in hyps])
    bleu = corpus_bleu(texts, refs)
    loss = total / max(tokens, 1)
    return {"loss": loss, "ppl": math.exp(min(loss, 50)), "bleu": bleu.score, "bleu_signature": bleu.signature}


def make_warmup_schedule(optimizer: torch.optim.Optimizer, tc: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR | None:
    """Linear warmup, then inverse-square-root decay (warmup_decay); linear warmup alone for
    plateau and constant; nothing for linear, whose `linear_lr` includes its warmup."""
    scheduler = tc.scheduler
    if scheduler == "warmup_decay":
        warm = max(tc.warmup_steps, 1)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / warm, math.sqrt(warm / (s + 1))))
    elif scheduler in ("plateau", "constant"):
        if tc.warmup_steps:
            return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_factor(s, tc.warmup_steps))
        return None
    elif scheduler == "linear":
        return None  # linear_lr sets the rate at every step, from where the run stands
    raise ValueError(f"train.scheduler must be one of plateau, warmup_decay, linear, constant; got {scheduler!r}")


def linear_lr(tc: TrainConfig, progress: Progress, seconds: float, batches_per_epoch: int | None) -> float:
    """The `linear` schedule: warmup, then a straight line from train.lr down to train.min_lr at
    the end of the run. The end is the first limit the run will reach: train.max_minutes (so a
    time budget ends with a decayed model, whatever the machine's speed), train.max_steps or
    train.epochs. Computed afresh at every step, so a resumed run needs no scheduler state."""
    done = 0.0
    if tc.max_minutes:
        done = max(done, seconds / (60 * tc.max_minutes))
    if tc.max_steps:
        done = max(done, progress.step / tc.max_steps)
    if batches_per_epoch:
        done = max(done, (progress.epoch - 1 + progress.batch_in_epoch / batches_per_epoch) / tc.epochs)
    return warmup_factor(progress.step, tc.warmup_steps) * (tc.min_lr + (tc.lr - tc.min_lr) * max(0.0, 1.0 - done))


def warmup_factor(step: int, warmup_steps: int) -> float:
    """The learning rate's fraction at `step` of a linear warmup over `warmup_steps` (0: none)."""
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


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


def _head(split: EncodedSplit, n: int) -> EncodedSplit:
    return EncodedSplit(split.src[:n], split.tgt[:n], split.rows[:n], split.dropped)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def keep_freed_memory() -> None:
    """Have glibc's malloc keep freed memory for reuse instead of handing it back to the kernel.

    Each CPU training step allocates and frees the same large tensors (the loss's gradient buffer
    alone is 38 MB on the en-de recipe). With glibc's defaults, blocks above its mmap threshold,
    and free space at the top of a heap, go back to the kernel, and the next step faults fresh
    zeroed pages in: on the en-de recipe about a million page faults per 40 steps and 7% of the
    process's CPU time spent in the kernel; with these settings, a fifth of the faults and a
    quarter of the kernel time. Anywhere but Linux with glibc this does nothing.
    """
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    libc = ctypes.CDLL("libc.so.6")
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
    libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)  # blocks below 1 GiB come from the heap
    libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)  # and freed ones stay there
    libc.mallopt(M_TOP_PAD, 256 << 20)  # grow a heap 256 MiB at a time (address space; pages on use)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("train.device=cuda but no CUDA device is available; use train.device=auto or cpu")
        return torch.device("cuda")
    elif name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"device must be one of auto, cpu, cuda; got {name!r}")


def check_writable(run_dir: Path) -> None:
    probe = run_dir / f".write-test-{os.getpid()}"  # one per process: DDP ranks check at once
    try:
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise OSError(f"run_dir {run_dir} is not writable ({err.strerror}); choose another run_dir") from None
