"""What a run needs before its first step: the run directory, seeds, process tuning, bf16, the
data, the tokenizer, the model, the optimizer and its learning rate, and a saved run's state."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seq2seq.atomic import write_text_atomic
from seq2seq.config import Config, ConfigError, ModelConfig, dump_yaml
from seq2seq.data.batching import EncodedSplit
from seq2seq.data.corpus import DataError, describe_source, encode_split, load_corpus
from seq2seq.devices import resolve_device, size_onednn_cache
from seq2seq.model import Seq2Seq, build_model
from seq2seq.modeldir.checkpoint import read_model_dir
from seq2seq.modeldir.meta import WEIGHTS, CheckpointError, ModelMeta
from seq2seq.tokenizer import Tokenizer, copy_tokenizer, load_tokenizer, reachable_target_ids, tokenizer_sha256, train_tokenizer
from seq2seq.training.distributed import Dist, init_distributed
from seq2seq.training.progress import Progress
from seq2seq.training.reporting import metrics_writer
from seq2seq.training.resume import ResumeError, check_resumable, load_state, restore, truncate_metrics
from seq2seq.training.run import TrainingData, TrainingRun
from seq2seq.training.schedules import LearningRate, new_optimizer, stop_reason

log = logging.getLogger("seq2seq")


def start_run(config: Config) -> tuple[TrainingRun, TrainingData, Progress]:
    """Join the process group, open the run directory, tune the process, prepare the data, build
    the model, optimizer and learning rate, and restore a saved run's state into them; return the
    run, its data and where it stands."""
    tc = config.train
    dist, device = init_distributed(resolve_device(tc.device, "train.device"), timeout_minutes=tc.dist_timeout_minutes)
    bf16 = resolve_bf16(tc.bf16, device)
    run_dir = Path(config.run_dir)
    saved = open_run_dir(config, dist)
    start_meta = check_init_from(config) if tc.init_from is not None else None
    tune_process(config, dist, device)
    data = prepare_data(config, run_dir, dist, saved)
    model = new_model(config, data.tokenizer, data.train_split)
    if tc.init_from is not None and saved is None:  # a resumed run restores its own weights below
        init_weights(model, Path(tc.init_from))
    model = model.to(device)
    optimizer = new_optimizer(model, tc)
    num_params = sum(p.numel() for p in model.parameters())
    log.info("model: %s parameters on %s%s", f"{num_params:,}", device, f", rank {dist.rank} of {dist.world}" if dist.world > 1 else "")
    lr = LearningRate(optimizer, tc)
    progress = restore_progress(config, saved, dist=dist, model=model, optimizer=optimizer, lr=lr)
    run = TrainingRun(
        config=config,
        run_dir=run_dir,
        dist=dist,
        device=device,
        model=model,
        # DDP averages gradients across ranks as they are computed; the training step's loss scales for that.
        ddp_model=torch.nn.parallel.DistributedDataParallel(model) if dist.world > 1 else model,
        optimizer=optimizer,
        lr=lr,
        tokenizer_sha=tokenizer_sha256(run_dir, data.tokenizer.joint),
        num_params=num_params,
        init_from_sha=None if start_meta is None else start_meta.weights_sha256,
        writer=metrics_writer(run_dir, tc.tensorboard, enabled=dist.is_main),
        bf16=bf16,
        autocast=torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext(),
    )
    return run, data, progress


def restore_progress(
    config: Config,
    saved: dict[str, Any] | None,
    *,
    dist: Dist,
    model: Seq2Seq,
    optimizer: torch.optim.Optimizer,
    lr: LearningRate,
) -> Progress:
    """Where the run stands: the start, or the saved state restored into the model, optimizer and
    learning rate. metrics.jsonl loses the records of steps that are about to be trained again (before
    the metrics writer opens it: the file is replaced)."""
    run_dir, tc = Path(config.run_dir), config.train
    metrics = run_dir / "metrics.jsonl"
    if saved is None:
        if dist.is_main:
            truncate_metrics(metrics, 0)  # records of an attempt that died before its first checkpoint
        return Progress()
    progress = restore(saved, model, optimizer, lr, dist.rank)
    if dist.is_main:
        truncate_metrics(metrics, progress.step)
    log.info("resuming %s at step %d (epoch %d, batch %d)", run_dir, progress.step, progress.epoch, progress.batch_in_epoch)
    if progress.finished and stop_reason(progress, tc, progress.train_seconds) is None:
        log.info("continuing the finished run: the recipe allows more steps or epochs now")
        progress.reopen()
    return progress


def resolve_bf16(setting: bool | str, device: torch.device) -> bool:
    """Whether training runs under bf16 autocast: train.bf16 as set (true | false), or with auto
    wherever the hardware has bf16 units: a GPU with them (Ampere or later), or a CPU with bf16
    instructions. true where the CPU has none is a recipe error, raised before anything runs."""
    if setting == "auto":
        if device.type == "cuda":
            # Older GPUs emulate bf16, slower than fp32: auto leaves it off there.
            on = torch.cuda.is_bf16_supported(including_emulation=False)
            why = "this GPU has bf16 units" if on else "this GPU has no bf16 units"
        elif device.type == "cpu":
            on = cpu_has_bf16()
            why = "this CPU has bf16 instructions (AVX-512 BF16 or AMX)" if on else "this CPU has no bf16 instructions"
        else:
            on, why = False, f"no bf16 autocast on {device.type}"
        log.info("bf16 autocast: %s (train.bf16=auto: %s)", "on" if on else "off", why)
        return on
    if setting and device.type == "cpu" and not cpu_has_bf16():
        # oneDNN then refuses to build the fused LSTM's bf16 primitive, deep inside the first step.
        raise ConfigError(["train.bf16=true but this CPU has no bf16 instructions, which bf16 training on the CPU needs; set train.bf16=false or auto"])
    log.info("bf16 autocast: %s (train.bf16=%s)", "on" if setting else "off", "true" if setting else "false")
    return bool(setting)


def cpu_has_bf16() -> bool:
    """Whether this CPU has the bf16 instructions (AVX-512 BF16 or AMX) that oneDNN's bf16 LSTM needs."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def open_run_dir(config: Config, dist: Dist) -> dict[str, Any] | None:
    """Create or reopen the run directory and return the saved state of the run it holds (None for a
    new run), refusing one this recipe cannot continue; the main process writes the resolved recipe."""
    run_dir = Path(config.run_dir)
    check_writable(run_dir)
    saved = load_state(run_dir)
    if saved is not None:
        check_resumable(saved, config, run_dir)
    if dist.is_main:
        write_text_atomic(run_dir / "config.yaml", dump_yaml(config))
    return saved


def tune_process(config: Config, dist: Dist, device: torch.device) -> None:
    """Seeds, threads and the allocator: everything about the process that a run sets once."""
    # Each rank draws its own dropout masks; batches depend on the seed alone, so ranks agree on them.
    seed_everything(config.seed + dist.rank)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    if device.type == "cpu":
        keep_freed_memory()
        size_onednn_cache()


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
    train_split = (
        None if streaming else encode_split(corpus["train"], tokenizer.encode_src, tokenizer.encode_tgt, config.data.max_len, f"train split of {source}")
    )
    valid_split = encode_split(corpus["valid"], tokenizer.encode_src, tokenizer.encode_tgt, config.data.max_len, f"valid split of {source}")
    valid_tgt = list(corpus["valid"]["tgt"])
    valid_refs = [valid_tgt[int(i)] for i in valid_split.rows]
    if config.data.max_valid_sentences:
        valid_split, valid_refs = _head(valid_split, config.data.max_valid_sentences), valid_refs[: config.data.max_valid_sentences]
    if streaming:
        log.info(
            "data: training pairs streamed from %s (tokenizer trained on %d), %d validation pairs; vocabulary %d/%d",
            source,
            len(train_text[0]),
            len(valid_split),
            tokenizer.src_vocab_size,
            tokenizer.tgt_vocab_size,
        )
    else:
        log.info(
            "data: %d training pairs (%d dropped by length), %d validation pairs; %d target tokens per epoch; vocabulary %d/%d",
            len(train_split),
            train_split.dropped,
            len(valid_split),
            train_split.target_tokens(),
            tokenizer.src_vocab_size,
            tokenizer.tgt_vocab_size,
        )
    keep_text = config.tokenizer.sample_alpha > 0 and not streaming  # only subword sampling rereads the raw text
    return TrainingData(corpus, tokenizer, train_split, valid_split, valid_refs, train_text if keep_text else ([], []))


def prepare_tokenizer(config: Config, run_dir: Path, train_text: tuple[list[str], list[str]], saved: dict[str, Any] | None) -> Tokenizer:
    """Train SentencePiece for a new run (or copy tokenizer.reuse's, or train.init_from's); reuse the
    run's own for a resumed one (checked by hash)."""
    tok = config.tokenizer
    if saved is not None and saved["tokenizer_sha256"] is None:
        return load_tokenizer(run_dir, tok.joint)  # a non-main rank: rank 0 has just trained or checked it
    if saved is None and config.train.init_from is not None:
        return copy_tokenizer(Path(config.train.init_from), run_dir, tok.joint)
    if saved is None and tok.reuse is not None:
        return copy_tokenizer(Path(tok.reuse), run_dir, tok.joint)
    if saved is None:
        return train_tokenizer(
            run_dir,
            *train_text,
            vocab_size=tok.vocab_size,
            model_type=tok.model_type,
            character_coverage=tok.character_coverage,
            byte_fallback=tok.byte_fallback,
            joint=tok.joint,
            seed=config.seed,
        )
    sha = tokenizer_sha256(run_dir, tok.joint)
    if sha != saved["tokenizer_sha256"]:
        raise ResumeError(f"cannot resume the run in {run_dir}: its SentencePiece model changed since the run started; restore it or use a new run_dir")
    return load_tokenizer(run_dir, tok.joint)


def new_model(config: Config, tokenizer: Tokenizer, train_split: EncodedSplit | None) -> Seq2Seq:
    """The recipe's model, untrained; with model.output_vocab=target its output layer is limited to
    the pieces the training targets can hold."""
    model = build_model(config.model, tokenizer.src_vocab_size, tokenizer.tgt_vocab_size, tokenizer.joint)
    if model.decoder.output_mask is not None:
        assert train_split is not None, "load_config rejects output_vocab=target with a streamed corpus"
        model.decoder.restrict_output_to(reachable_target_ids(tokenizer, train_split.tgt))
        log.info("output layer: %d of the %d target pieces (model.output_vocab=target)", int(model.decoder.output_mask.sum()), tokenizer.tgt_vocab_size)
    return model


# Fine-tuning keeps the architecture; these model keys only regularise training and may change.
FREE_MODEL_KEYS = ("dropout", "emb_dropout", "word_dropout")
# The tokenizer keys that describe the SentencePiece model the weights were trained with.
TOKENIZER_KEYS = ("vocab_size", "model_type", "character_coverage", "byte_fallback", "joint")


def check_init_from(config: Config) -> ModelMeta:
    """Refuse a train.init_from that is no model directory, or whose languages, tokenizer or model
    settings the recipe changes (one ConfigError naming every key); return the directory's meta."""
    source = Path(config.train.init_from)
    try:
        start, meta = read_model_dir(source)
    except CheckpointError as err:
        raise ConfigError([f"train.init_from: {err}"]) from None
    problems = []
    if config.tokenizer.reuse is not None:
        problems.append("tokenizer.reuse: train.init_from already reuses its model's tokenizer; drop tokenizer.reuse")
    pairs = [("data", k, getattr(start.data, k), getattr(config.data, k)) for k in ("src_lang", "tgt_lang")]
    pairs += [("tokenizer", k, getattr(start.tokenizer, k), getattr(config.tokenizer, k)) for k in TOKENIZER_KEYS]
    pairs += [
        ("model", f.name, getattr(start.model, f.name), getattr(config.model, f.name)) for f in dataclasses.fields(ModelConfig) if f.name not in FREE_MODEL_KEYS
    ]
    for section, key, theirs, ours in pairs:
        if theirs != ours:
            problems.append(
                f"{section}.{key}: {ours!r} in the recipe but {theirs!r} in train.init_from={source}; fine-tuning keeps "
                f"the model's tokenizer and architecture: set {section}.{key}={theirs if isinstance(theirs, str) else json.dumps(theirs)} "
                "(or start without train.init_from)"
            )
    if problems:
        raise ConfigError(problems)
    return meta


def init_weights(model: Seq2Seq, source: Path) -> None:
    """Load a model directory's weights into a new run's model (train.init_from). With
    model.output_vocab=target the output layer keeps the pieces it could produce and gains those
    the new training targets can hold."""
    from safetensors.torch import load_model

    new_targets = None if model.decoder.output_mask is None else model.decoder.output_mask.clone()
    load_model(model, str(source / WEIGHTS), strict=True)  # check_init_from made sure the architecture is the same
    if new_targets is not None:
        model.decoder.output_mask |= new_targets
    log.info("fine-tuning: weights from %s (optimizer and schedule start fresh)", source)


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


def check_writable(run_dir: Path) -> None:
    """Create run_dir if needed and write a file in it, or fail with a message that names it."""
    probe = run_dir / f".write-test-{os.getpid()}"  # one per process: DDP ranks check at once
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise OSError(f"run_dir {run_dir} cannot be created or is not writable ({err.strerror}); choose another run_dir") from None
