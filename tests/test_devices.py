"""Device names → torch devices, with errors that name the setting; the size of oneDNN's cache."""

from __future__ import annotations

import os

import pytest
import torch

from seq2seq.devices import resolve_device


def test_cpu_and_auto():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("name", ["gpu", "cuda:", "cuda:x", "CPU", ""])
def test_unknown_names_list_the_valid_ones(name):
    with pytest.raises(ValueError, match=r"train\.device must be one of auto, cpu, cuda, cuda:N"):
        resolve_device(name, "train.device")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_cuda_without_a_gpu_says_what_to_use(name):
    with pytest.raises(ValueError, match=rf"device={name} but no CUDA device is available; use device=auto or cpu"):
        resolve_device(name)


def test_onednn_cache_is_sized_unless_the_user_sized_it(monkeypatch):
    from seq2seq.devices import ONEDNN_CACHE_CAPACITY, size_onednn_cache

    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    size_onednn_cache()
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(ONEDNN_CACHE_CAPACITY)
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "0")
    size_onednn_cache()
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "0"
