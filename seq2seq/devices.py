"""Device names as users write them (auto, cpu, cuda, cuda:N) → torch devices."""

from __future__ import annotations

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
