"""Model directories: one directory is one model, and all that translation needs.

It holds model.safetensors, config.json (the resolved recipe), the SentencePiece model(s),
meta.json (a `ModelMeta`) and a README.md model card. `save_model_dir` writes a directory and
`record_test_score` adds the test score to one; both write meta.json and the card through one
function, so the two never disagree. Every write is atomic.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from seq2seq.atomic import atomic_write, write_text_atomic
from seq2seq.modeldir.meta import CARD, CONFIG, FORMAT_VERSION, META, WEIGHTS, CheckpointError, ModelMeta, TrainingRecord
from seq2seq.tokenizer import SPECIAL_IDS, Tokenizer, copy_model_files, load_tokenizer, model_files, tokenizer_sha256

if TYPE_CHECKING:  # torch and the recipe (yaml) load where used: the exported runtime reads ModelMeta without them
    import torch

    from seq2seq.config import Config


def save_model_dir(out_dir: Path, model: torch.nn.Module, config: Config, *, tokenizer_dir: Path, record: TrainingRecord | None) -> ModelMeta:
    """Write a self-contained model directory: weights, recipe, tokenizer, meta.json and card."""
    from safetensors.torch import save_model

    from seq2seq import __version__
    from seq2seq.config import config_to_dict

    out_dir.mkdir(parents=True, exist_ok=True)
    joint = config.tokenizer.joint
    copy_model_files(tokenizer_dir, out_dir, joint)
    if any(p.device.type != "cpu" for p in model.parameters()):
        # On CUDA an LSTM's weights are views into one flat buffer, which safetensors refuses to
        # save as shared storage that no single weight covers; on the CPU each has its own.
        model = copy.deepcopy(model).cpu()
    # save_model drops the duplicate names of tied weights, which save_file would refuse.
    atomic_write(out_dir / WEIGHTS, lambda tmp: save_model(model, str(tmp), metadata={"format": "pt"}))
    write_text_atomic(out_dir / CONFIG, json.dumps(config_to_dict(config), indent=2, ensure_ascii=False) + "\n")
    meta = ModelMeta(
        format_version=FORMAT_VERSION,
        package_version=__version__,
        src_lang=config.data.src_lang,
        tgt_lang=config.data.tgt_lang,
        tokenizer_files=tuple(model_files(joint)),
        tokenizer_sha256=tokenizer_sha256(out_dir, joint),
        special_ids=SPECIAL_IDS,
        weights_sha256=_file_sha256(out_dir / WEIGHTS),
        training=record,
    )
    _write_meta(out_dir, config, meta)
    return meta


def record_test_score(model_dir: Path, config: Config, meta: ModelMeta, *, bleu: float, signature: str, beam_size: int) -> ModelMeta:
    """Add a test BLEU to a trained model's meta.json and card; `config` and `meta` are the directory's, as loaded."""
    assert meta.training is not None, "test scores are recorded for trained models"
    meta = replace(meta, training=replace(meta.training, test_bleu=bleu, test_bleu_signature=signature, test_beam_size=beam_size))
    _write_meta(model_dir, config, meta)
    return meta


def _write_meta(model_dir: Path, config: Config, meta: ModelMeta) -> None:
    """The one writer of meta.json and of the card, which is made from it."""
    from seq2seq.modeldir.card import model_card

    write_text_atomic(model_dir / META, meta.to_json())
    write_text_atomic(model_dir / CARD, model_card(config, meta))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_model_dir(model_dir: Path) -> tuple[Config, ModelMeta]:
    """Check a model directory's files and format, and return its recipe and metadata."""
    from seq2seq.config import config_from_dict

    if not model_dir.is_dir():
        raise CheckpointError(f"{model_dir} is not a directory; pass the model directory that training wrote (e.g. runs/demo/best)")
    from seq2seq.export import is_exported_dir

    if is_exported_dir(model_dir) and not (model_dir / WEIGHTS).is_file():
        raise CheckpointError(
            f"{model_dir} is an exported model (seq2seq-export): it translates (seq2seq-translate, Translator); this needs the model directory it was exported from"
        )
    for name in (WEIGHTS, CONFIG, META):
        if not (model_dir / name).is_file():
            raise CheckpointError(f"{model_dir} has no {name}; it is not a complete model directory (re-run training or copy the whole directory)")
    flat = json.loads((model_dir / META).read_text(encoding="utf-8"))
    version = flat.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{model_dir} has format version {version!r}; this seq2seq reads versions up to {FORMAT_VERSION}: upgrade the package")
    config = config_from_dict(json.loads((model_dir / CONFIG).read_text(encoding="utf-8")))
    for name in model_files(config.tokenizer.joint):
        if not (model_dir / name).is_file():
            raise CheckpointError(f"{model_dir} has no tokenizer file {name}; copy it from the training run directory")
    sha = tokenizer_sha256(model_dir, config.tokenizer.joint)
    if sha != flat.get("tokenizer_sha256"):
        raise CheckpointError(
            f"{model_dir}: the tokenizer does not match the weights (SHA-256 {sha[:12]}… but meta.json "
            f"records {str(flat.get('tokenizer_sha256'))[:12]}…); use the SentencePiece model saved with these weights"
        )
    if flat.get("special_ids") != SPECIAL_IDS:
        raise CheckpointError(f"{model_dir}: special ids {flat.get('special_ids')} differ from this package's {SPECIAL_IDS}")
    return config, ModelMeta.from_json(flat, model_dir / META)


def load_model_dir(model_dir: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, Config, Tokenizer, ModelMeta]:
    """Load (model, config, tokenizer, meta) from a model directory; the model is in eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    from seq2seq.model import build_model

    model_dir = Path(model_dir)
    config, meta = read_model_dir(model_dir)
    tokenizer = load_tokenizer(model_dir, config.tokenizer.joint)
    model = build_model(config.model, tokenizer.src_vocab_size, tokenizer.tgt_vocab_size, tokenizer.joint)
    try:
        load_model(model, str(model_dir / WEIGHTS), strict=True, device=str(device))
    except (SafetensorError, RuntimeError) as err:
        raise CheckpointError(f"{model_dir / WEIGHTS} does not fit the model its config.json describes: {err}") from None
    model.to(device)
    model.eval()
    return model, config, tokenizer, meta
