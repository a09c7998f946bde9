"""Training: from a resolved recipe to the best and last model directories.

`train` is one loop, readable top to bottom: zero_grad → forward → loss → backward → clip →
step, with validation (loss and BLEU), checkpoints and early stopping now and then. The
helpers around it are plain functions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from seq2seq.atomic import write_text_atomic
from seq2seq.checkpoint import TRAINING_STATE, save_model_dir, save_training_state
from seq2seq.config import Config, TrainConfig, dump_yaml
from seq2seq.data import EncodedSplit, collate, collate_pairs, encode_split, load_corpus, make_batches
from seq2seq.model import Seq2Seq, build_model
from seq2seq.tokenizer import Tokenizer, train_tokenizer
from seq2seq.translate import decode_sources

log = logging.getLogger("seq2seq")


def train(config: Config) -> Path:
    """Train a model as the recipe says; return the directory of the best model."""
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_writable(run_dir)
    write_text_atomic(run_dir / "config.yaml", dump_yaml(config))
    tc = config.train
    seed_everything(config.seed)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = pick_device(tc.device)

    corpus = load_corpus(config.data, run_dir)
    tok_cfg = config.tokenizer
    tokenizer = train_tokenizer(
        run_dir, list(corpus["train"]["src"]), list(corpus["train"]["tgt"]), tok_cfg.vocab_size, tok_cfg.model_type,
        tok_cfg.character_coverage, tok_cfg.byte_fallback, tok_cfg.joint, config.seed,
    )
    train_split = encode_split(corpus["train"], tokenizer.encode_src, tokenizer.encode_tgt, config.data.max_len, "train")
    valid_split = encode_split(corpus["valid"], tokenizer.encode_src, tokenizer.encode_tgt, config.data.max_len, "valid")
    valid_refs = [corpus["valid"]["tgt"][int(i)] for i in valid_split.rows]
    if config.data.max_valid_sentences:
        valid_split, valid_refs = _head(valid_split, config.data.max_valid_sentences), valid_refs[: config.data.max_valid_sentences]
    log.info(
        "data: %d training pairs (%d dropped by length), %d validation pairs; %d target tokens per epoch; vocabulary %d/%d",
        len(train_split), train_split.dropped, len(valid_split), train_split.target_tokens(), tokenizer.src_vocab_size, tokenizer.tgt_vocab_size,
    )

    model = build_model(config.model, tokenizer.src_vocab_size, tokenizer.tgt_vocab_size, tokenizer.joint).to(device)
    num_params = sum(p.numel() for p in model.parameters())
    log.info("model: %s parameters on %s", f"{num_params:,}", device)
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    warmup = make_warmup_schedule(optimizer, tc)
    plateau = (
        torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=tc.plateau_factor, patience=tc.plateau_patience, min_lr=tc.min_lr)
        if tc.scheduler == "plateau"
        else None
    )
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if tc.bf16 and device.type == "cuda" else contextlib.nullcontext()
    )
    src_lens = np.array([len(s) + 1 for s in train_split.src])
    tgt_lens = np.array([len(t) for t in train_split.tgt])

    metrics_file = open(run_dir / "metrics.jsonl", "a", encoding="utf-8")
    step, best_bleu, bad_evals, start = 0, -1.0, 0, time.time()
    window = {"loss": 0.0, "tokens": 0, "time": time.time()}
    stop = False
    for epoch in range(1, tc.epochs + 1):
        batches = make_batches(src_lens, tgt_lens, tc.batch_tokens, config.seed, epoch)
        bar = progress_bar(len(batches), f"epoch {epoch}")
        for indices in batches:
            batch = collate_pairs(*batch_pairs(train_split, indices, tokenizer, corpus["train"], config)).to(device)
            model.train()
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                features = model(batch.src, batch.src_len, batch.tgt_in, tc.teacher_forcing)
                loss_sum = token_loss(model, features, batch.tgt_out, tc.label_smoothing)
            (loss_sum / batch.num_tokens).backward()
            if tc.clip_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip_norm)
            optimizer.step()
            if warmup is not None:
                warmup.step()
            step += 1

            window["loss"] += loss_sum.item()
            window["tokens"] += batch.num_tokens
            if step % tc.log_every == 0:
                record = log_window(window, step, epoch, optimizer)
                _write_metrics(metrics_file, record)
                bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{record['tgt_tokens_per_s']:.0f}", lr=f"{record['lr']:.2e}")
            bar.update(1)

            end_of_epoch = indices is batches[-1]
            if (tc.eval_every and step % tc.eval_every == 0) or (not tc.eval_every and end_of_epoch) or step == tc.max_steps:
                result = evaluate(model, valid_split, valid_refs, tokenizer, device, tc, autocast)
                improved = result["bleu"] > best_bleu
                best_bleu, bad_evals = (result["bleu"], 0) if improved else (best_bleu, bad_evals + 1)
                result.update(type="valid", step=step, epoch=epoch, best_bleu=best_bleu, elapsed_s=round(time.time() - start, 1))
                _write_metrics(metrics_file, result)
                log.info(
                    "valid step %d epoch %d: loss %.3f ppl %.2f BLEU %.2f (best %.2f) %s",
                    step, epoch, result["loss"], result["ppl"], result["bleu"], best_bleu, "*" if improved else "",
                )
                meta = {"step": step, "epoch": epoch, "valid_bleu": result["bleu"], "valid_bleu_signature": result["bleu_signature"],
                        "num_parameters": num_params, "train_seconds": round(time.time() - start, 1)}
                if improved:
                    save_model_dir(run_dir / "best", model, config, run_dir, meta, model_card(config, meta))
                save_model_dir(run_dir / "last", model, config, run_dir, meta, model_card(config, meta))
                save_training_state(run_dir / "last" / TRAINING_STATE, {
                    "optimizer": optimizer.state_dict(),
                    "plateau": plateau.state_dict() if plateau else {},
                    "warmup": warmup.state_dict() if warmup else {},
                    "step": step, "epoch": epoch, "best_bleu": best_bleu, "bad_evals": bad_evals,
                    "torch_rng": torch.get_rng_state(),
                })
                if plateau is not None:
                    plateau.step(result["bleu"])
                window = {"loss": 0.0, "tokens": 0, "time": time.time()}
                if tc.patience and bad_evals >= tc.patience:
                    log.info("early stopping: no BLEU improvement in %d evaluations", tc.patience)
                    stop = True
            if stop or step == tc.max_steps:
                stop = True
                break
        bar.close()
        if stop:
            break
    metrics_file.close()
    log.info("done: %d steps in %.1f s; best validation BLEU %.2f; model in %s", step, time.time() - start, best_bleu, run_dir / "best")
    return run_dir / "best"


def token_loss(model: Seq2Seq, features: torch.Tensor, tgt_out: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Summed label-smoothed cross-entropy over the real target tokens.

    features (B, T, E), tgt_out (B, T); only non-pad positions are projected to the vocabulary,
    which skips the largest matrix product for every padded position.
    """
    mask = tgt_out != 0
    logits = model.decoder.logits(features[mask])  # (N, V)
    return F.cross_entropy(logits.float(), tgt_out[mask], label_smoothing=label_smoothing, reduction="sum")


@torch.inference_mode()
def evaluate(model: Seq2Seq, split: EncodedSplit, refs: list[str], tokenizer: Tokenizer, device: torch.device, tc: TrainConfig, autocast) -> dict[str, Any]:
    """Validation loss and perplexity (teacher-forced, no smoothing) and BLEU on detokenized text."""
    import sacrebleu

    model.eval()
    total, tokens = 0.0, 0
    for indices in make_batches(np.array([len(s) for s in split.src]), np.array([len(t) for t in split.tgt]), 4 * tc.batch_tokens, 0, 0):
        batch = collate(split, indices).to(device)
        with autocast:
            features = model(batch.src, batch.src_len, batch.tgt_in)
            total += token_loss(model, features, batch.tgt_out, 0.0).item()
        tokens += batch.num_tokens
    with autocast:
        hyps = decode_sources(model, split.src, device, beam_size=tc.valid_beam_size, nbest=1, batch_size=64)
    texts = tokenizer.decode_tgt([h[0].tokens for h in hyps])
    bleu = sacrebleu.metrics.BLEU()
    score = bleu.corpus_score(texts, [refs])
    loss = total / max(tokens, 1)
    return {"loss": loss, "ppl": math.exp(min(loss, 50)), "bleu": score.score, "bleu_signature": str(bleu.get_signature())}


def make_warmup_schedule(optimizer: torch.optim.Optimizer, tc: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR | None:
    """Linear warmup, then inverse-square-root decay (warmup_decay); linear warmup alone otherwise."""
    scheduler = tc.scheduler
    if scheduler == "warmup_decay":
        warm = max(tc.warmup_steps, 1)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / warm, math.sqrt(warm / (s + 1))))
    elif scheduler in ("plateau", "constant"):
        if tc.warmup_steps:
            return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / tc.warmup_steps))
        return None
    raise ValueError(f"train.scheduler must be one of plateau, warmup_decay, constant; got {scheduler!r}")


def batch_pairs(split: EncodedSplit, indices: np.ndarray, tokenizer: Tokenizer, raw, config: Config) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A batch's token ids; with subword sampling on, a freshly sampled segmentation of its sentences."""
    src = [split.src[i] for i in indices]
    tgt = [split.tgt[i] for i in indices]
    alpha = config.tokenizer.sample_alpha
    if alpha <= 0:
        return src, tgt
    rows = [int(split.rows[i]) for i in indices]
    sampled_src = tokenizer.encode_src([raw[r]["src"] for r in rows], alpha)
    sampled_tgt = tokenizer.encode_tgt([raw[r]["tgt"] for r in rows], alpha)
    for k, (s, t) in enumerate(zip(sampled_src, sampled_tgt)):
        # A sampled segmentation can be longer than the filter allowed; keep the fixed one then.
        if len(s) <= config.data.max_len and len(t) <= config.data.max_len:
            src[k], tgt[k] = np.asarray(s, dtype=np.int64), np.asarray(t, dtype=np.int64)
    return src, tgt


def _head(split: EncodedSplit, n: int) -> EncodedSplit:
    return EncodedSplit(split.src[:n], split.tgt[:n], split.rows[:n], split.dropped)


def log_window(window: dict[str, float], step: int, epoch: int, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Average the training loss over the last log interval and measure target tokens/s."""
    now = time.time()
    loss = window["loss"] / max(window["tokens"], 1)
    record = {
        "type": "train", "step": step, "epoch": epoch, "loss": loss, "ppl": math.exp(min(loss, 50)),
        "lr": optimizer.param_groups[0]["lr"], "tgt_tokens_per_s": window["tokens"] / max(now - window["time"], 1e-9),
    }
    window.update(loss=0.0, tokens=0, time=now)
    return record


def _write_metrics(f, record: dict[str, Any]) -> None:
    f.write(json.dumps(record) + "\n")
    f.flush()


def model_card(config: Config, meta: dict[str, Any]) -> str:
    """A Hugging Face style model card: YAML front matter, then what the model is and how it did."""
    data = config.data
    source = "generated demo corpus" if data.demo else data.dir or data.hub or ", ".join(data.train or ())
    m = config.model
    return f"""---
language:
- {data.src_lang}
- {data.tgt_lang}
license: mit
library_name: seq2seq
pipeline_tag: translation
tags:
- translation
- lstm
metrics:
- bleu
---

# {data.src_lang}→{data.tgt_lang} BiLSTM translation model

Trained with `seq2seq-train` on {source}.

- Architecture: bidirectional LSTM encoder ({m.enc_layers}×2×{m.enc_hidden}), LSTM decoder ({m.dec_layers}×{m.dec_hidden}),
  attention `{m.attention}`, input feeding {m.input_feeding}, embeddings {m.emb_dim}; {meta['num_parameters']:,} parameters.
- Training: {meta['step']} steps, {meta['epoch']} epochs, {meta['train_seconds']} s.
- Validation BLEU: {meta['valid_bleu']:.2f} (`{meta['valid_bleu_signature']}`, greedy search unless train.valid_beam_size says otherwise).

## Use

```bash
seq2seq-translate --model THIS_DIR < input.{data.src_lang}.txt
```

## Limitations

A small RNN model trained on one domain; expect poor output far from its training data.
"""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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
    probe = run_dir / ".write-test"
    try:
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise OSError(f"run_dir {run_dir} is not writable ({err.strerror}); choose another run_dir") from None


def progress_bar(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, disable=not sys.stderr.isatty(), leave=False, dynamic_ncols=True)

