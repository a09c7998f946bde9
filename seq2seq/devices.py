"""Device names as users write them (auto, cpu, cuda, cuda:N) → torch devices; the size of oneDNN's cache of CPU kernels."""

from __future__ import annotations

import os

import torch


def resolve_device(name: str, key: str = "device") -> torch.device:
    """The device `name` stands for; `key` is the setting's name in error messages (e.g. train.device).

    auto: the first CUDA device when there is one, else the CPU.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif name == "cpu":
        return torch.device("cpu")
    elif name == "cuda" or (isinstance(name, str) and name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ValueError(f"{key}={name} but no CUDA device is available; use {key}=auto or cpu")
        return torch.device(name)
    raise ValueError(f"{key} must be one of auto, cpu, cuda, cuda:N; got {name!r}")


# Primitives oneDNN may keep, least recently used dropped first. A real en-de run (subword sampling,
# joined pairs, a validation each epoch) used 1,059–1,088 distinct primitives per epoch and
# met a few tens of new ones in each later epoch, rare combinations of lengths (ONEDNN_VERBOSE=2,
# docs/speed.md). A cache that keeps each one grows all run (about 0.2 MB an entry); 2,048 holds an
# epoch's working set nearly twice over, and once full the rare ones take the place of the least
# recently used. An entry exists only for a shape met.
ONEDNN_CACHE_CAPACITY = 2048


def size_onednn_cache() -> None:
    """Give oneDNN's primitive cache room for every shape a run's batches take, unless the user sized it.

    On the CPU, torch runs LSTMs and bf16 products through oneDNN, which compiles a primitive per
    shape and caches up to ONEDNN_PRIMITIVE_CACHE_CAPACITY of them (1,024 by default). Batches
    kept to the shape ladder (seq2seq.data.batching.LADDER_STEPS) take few shapes, so after the
    first epoch nearly every step finds its primitives compiled; before the ladder, hundreds of
    shapes made the cache grow all run, and capacity 0 (no cache) compiled anew at every call, which
    cost 12–40% of the speed on CPUs that JIT-compile AMX kernels (docs/logs/2026-12-06-onednn-shapes.md). oneDNN reads
    the variable when it first builds a primitive: seq2seq-train calls this before the first step.
    Translation keeps oneDNN's default (its fp32 search compiles tens of primitives per thousand
    sentences, and the default bounds a server's memory); it pads source lengths, and keeps its
    search's rows, on the same ladder (seq2seq.decoding.torch_search).
    """
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(ONEDNN_CACHE_CAPACITY))
