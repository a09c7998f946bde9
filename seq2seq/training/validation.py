"""Validation during training, the model directories it saves, and the test score at the end.

At each validation the loop calls `validate` (loss and BLEU on the validation split, reported and
counted toward the best score, patience and the plateau schedule), decides whether the run stops,
then `save_validated` (best/, the kept checkpoints, last/ and the resume state).
`save_checkpoint` alone runs between validations (train.save_every, a signal).
"""

from __future__ import annotations

import logging
import math
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from seq2seq.config import TrainConfig
from seq2seq.data.batching import EncodedSplit, collate, make_batches
from seq2seq.decoding.torch_search import decode_sources
from seq2seq.model import Seq2Seq
from seq2seq.modeldir.checkpoint import record_test_score, save_model_dir
from seq2seq.modeldir.meta import TrainingRecord
from seq2seq.options import SearchOptions
from seq2seq.scoring import corpus_bleu
from seq2seq.tokenizer import Tokenizer
from seq2seq.training.averaging import keep_checkpoint
from seq2seq.training.clock import RunClock
from seq2seq.training.loss import token_loss
from seq2seq.training.progress import Progress
from seq2seq.training.resume import capture_rng, save_state
from seq2seq.training.run import TrainingData, TrainingRun

if TYPE_CHECKING:
    import datasets

log = logging.getLogger("seq2seq")


def validate(run: TrainingRun, data: TrainingData, progress: Progress, clock: RunClock) -> tuple[TrainingRecord, bool]:
    """Validate after the step the run has just taken: loss and BLEU on the validation split,
    counted toward the best BLEU and train.patience, reported (metrics.jsonl, the log) and passed to
    the learning rate (plateau). Return the record that describes the model now and whether BLEU improved."""
    tc, dist = run.config.train, run.dist
    with clock.evaluation():
        result = dist.broadcast(
            evaluate(run.model, data.valid_split, data.valid_refs, data.tokenizer, device=run.device, tc=tc, autocast=run.autocast) if dist.is_main else None
        )
    improved = progress.record_validation(result["bleu"])
    seconds = clock.train_seconds()
    result.update(
        type="valid",
        step=progress.step,
        epoch=progress.epoch,
        best_bleu=progress.best_bleu,
        skipped_steps=progress.skipped_steps,
        elapsed_s=round(seconds, 1),
        valid_s=round(clock.last_validation_s, 1),
    )
    run.writer.write(result)
    log.info(
        "valid step %d epoch %d: loss %.3f ppl %.2f BLEU %.2f (best %.2f%s) after %.0f s",
        progress.step,
        progress.epoch,
        result["loss"],
        result["ppl"],
        result["bleu"],
        progress.best_bleu,
        ", new" if improved else "",
        seconds,
    )
    run.lr.after_validation(result["bleu"])
    record = TrainingRecord(
        step=progress.step,
        epoch=progress.epoch,
        num_parameters=run.num_params,
        train_seconds=round(seconds, 1),
        valid_bleu=result["bleu"],
        valid_bleu_signature=result["bleu_signature"],
        init_from_weights_sha256=run.init_from_sha,
    )
    return record, improved


def save_validated(run: TrainingRun, progress: Progress, clock: RunClock, record: TrainingRecord, *, improved: bool) -> None:
    """Save what a validation leaves: best/ when BLEU improved, the kept checkpoints, last/ and the resume state."""
    tc, dist = run.config.train, run.dist
    if improved and dist.is_main:
        save_model_dir(run.run_dir / "best", run.model, run.config, tokenizer_dir=run.run_dir, record=record)
    if tc.keep_checkpoints and dist.is_main:
        keep_checkpoint(run.run_dir, run.model, run.config, record, tc.keep_checkpoints)
    save_checkpoint(run, progress, clock, record)


def validate_start(run: TrainingRun, data: TrainingData, clock: RunClock) -> None:
    """Validate the weights a fine-tuning run starts from (train.init_from), before its first step:
    a "valid" record at step 0 shows where the run started. It sets neither the best BLEU nor patience."""
    if not run.dist.is_main:
        return
    with clock.evaluation():
        result = evaluate(run.model, data.valid_split, data.valid_refs, data.tokenizer, device=run.device, tc=run.config.train, autocast=run.autocast)
    result.update(type="valid", step=0, epoch=0, elapsed_s=round(clock.train_seconds(), 1), valid_s=round(clock.last_validation_s, 1))
    run.writer.write(result)
    log.info("valid step 0, the weights of %s: loss %.3f ppl %.2f BLEU %.2f", run.config.train.init_from, result["loss"], result["ppl"], result["bleu"])


def save_checkpoint(run: TrainingRun, progress: Progress, clock: RunClock, record: TrainingRecord | None = None) -> None:
    """Save last/ (when there is a validation result to describe it) and the resume state."""
    progress.note_time(clock.train_seconds())
    rng = run.dist.gather(capture_rng())  # every rank's generators, so each resumes its own
    if not run.dist.is_main:
        return
    if record is not None:
        save_model_dir(run.run_dir / "last", run.model, run.config, tokenizer_dir=run.run_dir, record=record)
    save_state(run.run_dir, config=run.config, model=run.model, optimizer=run.optimizer, lr=run.lr, progress=progress, tokenizer_sha=run.tokenizer_sha, rng=rng)


@torch.inference_mode()
def evaluate(
    model: Seq2Seq, split: EncodedSplit, refs: list[str], tokenizer: Tokenizer, *, device: torch.device, tc: TrainConfig, autocast: AbstractContextManager
) -> dict[str, Any]:
    """Validation loss and perplexity (teacher-forced, no smoothing) and BLEU on detokenized text."""
    model.eval()
    total, tokens = 0.0, 0
    ladder = device.type == "cpu"  # few batch shapes for oneDNN's cache (seq2seq.data.batching.LADDER_STEPS)
    for indices in make_batches(np.array([len(s) for s in split.src]), np.array([len(t) for t in split.tgt]), 4 * tc.batch_tokens, 0, 0, ladder=ladder):
        batch = collate(split, indices, ladder=ladder).to(device)
        with autocast:
            features = model(batch.src, batch.src_len, batch.tgt_in)
            total += token_loss(model, features, batch.tgt_out, 0.0).item()
        tokens += batch.num_tokens
    with autocast:
        hyps = decode_sources(model, split.src, device, SearchOptions(beam_size=tc.valid_beam_size))
    texts = tokenizer.decode_tgt([h[0].tokens for h in hyps])
    bleu = corpus_bleu(texts, refs)
    loss = total / max(tokens, 1)
    return {"loss": loss, "ppl": math.exp(min(loss, 50)), "bleu": bleu.score, "bleu_signature": bleu.signature}


def score_test_split(model_dir: Path, test: datasets.Dataset, device: torch.device) -> None:
    """Translate the test split once with the best model (default search options) and record its
    BLEU in meta.json and the card."""
    from seq2seq.inference.translator import Translator

    options = SearchOptions()
    translator = Translator.from_pretrained(model_dir, device=device.type)
    hyps = translator.translate(list(test["src"]), options)
    bleu = corpus_bleu(hyps, list(test["tgt"]))
    record_test_score(model_dir, translator.config, translator.meta, bleu=bleu.score, signature=bleu.signature, beam_size=options.beam_size)
    log.info("test BLEU of the best model (beam %d): %.2f  %s", options.beam_size, bleu.score, bleu.signature)
