"""seq2seq: English→German translation with a BiLSTM encoder and an LSTM decoder.

The public API; heavy modules load on first use so `seq2seq-translate` starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Config", "ConfigError", "SearchOptions", "Translator", "load_config", "train", "__version__"]

if TYPE_CHECKING:
    from seq2seq.config import Config, ConfigError, load_config
    from seq2seq.inference.translator import Translator
    from seq2seq.options import SearchOptions
    from seq2seq.training.loop import train

_LAZY = {
    "Config": "seq2seq.config",
    "ConfigError": "seq2seq.config",
    "load_config": "seq2seq.config",
    "SearchOptions": "seq2seq.options",
    "train": "seq2seq.training.loop",  # not seq2seq.train: a submodule of that name would shadow the function
    "Translator": "seq2seq.inference.translator",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'seq2seq' has no attribute {name!r}")
