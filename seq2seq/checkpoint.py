"""Model directories and training state: atomic saves, checked loads.

A model directory holds everything translation needs and nothing else:
model.safetensors, config.json (the resolved recipe), the SentencePiece model(s), meta.json and a
README.md model card. Training state (optimizer, scheduler, RNG states, position) sits beside the
weights in training_state.pt and loads with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from seq2seq.atomic import atomic_write, write_text_atomic
from seq2seq.config import Config, config_from_dict, config_to_dict
from seq2seq.data import describe_source
from seq2seq.tokenizer import SPECIAL_IDS, copy_model_files, load_tokenizer, model_files, tokenizer_sha256

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
META = "meta.json"
CARD = "README.md"
TRAINING_STATE = "training_state.pt"
# The meta.json fields save_model_dir writes itself; copies of a model directory rewrite them.
FIXED_META = ("format_version", "package_version", "src_lang", "tgt_lang", "tokenizer_files", "tokenizer_sha256", "special_ids", "weights_sha256")


class CheckpointError(ValueError):
    """A model directory cannot be loaded; the message says what is wrong and what to do."""


def save_model_dir(
    out_dir: Path,
    model: torch.nn.Module,
    config: Config,
    tokenizer_dir: Path,
    meta: dict[str, Any],
    card: str,
) -> None:
    """Write a self-contained model directory; `meta` adds training facts to the fixed fields."""
    from safetensors.torch import save_model

    from seq2seq import __version__

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
    full_meta = {
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "src_lang": config.data.src_lang,
        "tgt_lang": config.data.tgt_lang,
        "tokenizer_files": model_files(joint),
        "tokenizer_sha256": tokenizer_sha256(out_dir, joint),
        "special_ids": SPECIAL_IDS,
        "weights_sha256": _file_sha256(out_dir / WEIGHTS),
        **meta,
    }
    write_text_atomic(out_dir / META, json.dumps(full_meta, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(out_dir / CARD, card)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_model_dir(model_dir: Path) -> tuple[Config, dict[str, Any]]:
    """Check a model directory's files and format, and return its recipe and metadata."""
    if not model_dir.is_dir():
        raise CheckpointError(f"{model_dir} is not a directory; pass the model directory that training wrote (e.g. runs/demo/best)")
    for name in (WEIGHTS, CONFIG, META):
        if not (model_dir / name).is_file():
            raise CheckpointError(f"{model_dir} has no {name}; it is not a complete model directory (re-run training or copy the whole directory)")
    meta = json.loads((model_dir / META).read_text(encoding="utf-8"))
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{model_dir} has format version {version!r}; this seq2seq reads versions up to {FORMAT_VERSION}: upgrade the package")
    config = config_from_dict(json.loads((model_dir / CONFIG).read_text(encoding="utf-8")))
    for name in model_files(config.tokenizer.joint):
        if not (model_dir / name).is_file():
            raise CheckpointError(f"{model_dir} has no tokenizer file {name}; copy it from the training run directory")
    sha = tokenizer_sha256(model_dir, config.tokenizer.joint)
    if sha != meta.get("tokenizer_sha256"):
        raise CheckpointError(
            f"{model_dir}: the tokenizer does not match the weights (SHA-256 {sha[:12]}… but meta.json "
            f"records {str(meta.get('tokenizer_sha256'))[:12]}…); use the SentencePiece model saved with these weights"
        )
    if meta.get("special_ids") != SPECIAL_IDS:
        raise CheckpointError(f"{model_dir}: special ids {meta.get('special_ids')} differ from this package's {SPECIAL_IDS}")
    return config, meta


def load_model_dir(model_dir: str | Path, device: str | torch.device = "cpu"):
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


def average_model_dirs(model_dirs: list[Path], out_dir: Path) -> dict[str, Any]:
    """Average the weights of model directories of one run (same recipe, same tokenizer) into a new
    model directory; return its meta. Checkpoint averaging smooths the last steps' noise."""
    if len(model_dirs) < 2:
        raise CheckpointError(f"averaging needs at least 2 model directories; got {len(model_dirs)}")
    model, config, _, meta = load_model_dir(model_dirs[0])
    params = dict(model.named_parameters())  # tied weights appear once here
    total = {name: p.detach().clone().double() for name, p in params.items()}
    for other_dir in model_dirs[1:]:
        other, other_config, _, other_meta = load_model_dir(other_dir)
        if other_config.model != config.model:
            raise CheckpointError(f"{other_dir} has a different model section from {model_dirs[0]}; only checkpoints of one run can be averaged")
        if other_meta["tokenizer_sha256"] != meta["tokenizer_sha256"]:
            raise CheckpointError(f"{other_dir} has a different tokenizer from {model_dirs[0]}; only checkpoints of one run can be averaged")
        for name, p in other.named_parameters():
            total[name] += p.detach().double()
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(total[name] / len(model_dirs))
    # Training facts (step, epoch, time) of the newest checkpoint; its scores are not the average's.
    averaged = {k: v for k, v in other_meta.items() if k not in FIXED_META and not k.startswith(("valid_", "test_"))}
    averaged["averaged_from"] = [str(d) for d in model_dirs]
    save_model_dir(out_dir, model, config, model_dirs[0], averaged, model_card(config, averaged))
    return averaged


def save_training_state(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_training_state(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def model_card(config: Config, meta: dict[str, Any]) -> str:
    """A Hugging Face model card: YAML front matter (languages, license, metrics, pipeline tag,
    results), then the data, recipe, size, training time, scores, intended use and limitations."""
    import yaml

    from seq2seq.config import dump_yaml

    data, m = config.data, config.model
    source = describe_source(data)
    results = [{"task": {"type": "translation", "name": f"Translation {data.src_lang}-{data.tgt_lang}"},
                "dataset": {"type": data.hub or "local", "name": source, "split": split},
                "metrics": [{"type": "bleu", "value": round(meta[key], 2), "name": f"{split} BLEU (sacreBLEU)"}]}
               for split, key in (("validation", "valid_bleu"), ("test", "test_bleu")) if key in meta]
    front = {
        "language": [data.src_lang, data.tgt_lang],
        "license": "mit",
        "library_name": "seq2seq",
        "pipeline_tag": "translation",
        "tags": ["translation", "lstm", "seq2seq"],
        "datasets": [data.hub] if data.hub and not (data.demo or data.train or data.dir) else [],
        "metrics": ["bleu"],
        "model-index": [{"name": f"seq2seq-{data.src_lang}-{data.tgt_lang}-{m.attention}", "results": results}],
    }
    scores = ""
    if "averaged_from" in meta:
        scores += f"- Weights averaged over {len(meta['averaged_from'])} checkpoints: {', '.join(Path(d).name for d in meta['averaged_from'])}\n"
    if "valid_bleu" in meta:
        scores += f"- Validation BLEU: {meta['valid_bleu']:.2f} (search with beam {config.train.valid_beam_size}; `{meta['valid_bleu_signature']}`)\n"
    if "test_bleu" in meta:
        scores += f"- Test BLEU: {meta['test_bleu']:.2f} (beam {meta['test_beam_size']}; `{meta['test_bleu_signature']}`)\n"
    return f"""---
{yaml.safe_dump(front, sort_keys=False, allow_unicode=True).strip()}
---

# {data.src_lang}→{data.tgt_lang} BiLSTM translation model

A bidirectional-LSTM encoder and an LSTM decoder ({"attention: " + m.attention if m.attention != "none" else "no attention: the decoder reads the source only through the context vector"}), trained with `seq2seq-train`.

## Data

{source} ({data.src_lang}→{data.tgt_lang}); SentencePiece {config.tokenizer.model_type}, {config.tokenizer.vocab_size} pieces, {"one joint vocabulary" if config.tokenizer.joint else "separate vocabularies"}.

## Model and training

- Encoder {m.enc_layers}×2×{m.enc_hidden}, decoder {m.dec_layers}×{m.dec_hidden}, embeddings {m.emb_dim}, attention `{m.attention}`, input feeding {m.input_feeding}; {meta['num_parameters']:,} parameters.
- {meta['step']} steps, {meta['epoch']} epochs, {meta['train_seconds']} s of training (validation included).

## Scores

{scores}
## Use

```bash
seq2seq-translate --model THIS_DIR < input.{data.src_lang} > output.{data.tgt_lang}
```

```python
from seq2seq import Translator
Translator.from_pretrained("THIS_DIR").translate(["..."])
```

## Intended use and limitations

Research and teaching: translating short {data.src_lang} sentences of the training domain into {data.tgt_lang}.
A small RNN trained on one corpus: expect poor output on text unlike its training data (other
domains, long documents, rare names), and do not use it where errors matter without review.

## Recipe

```yaml
{dump_yaml(config).strip()}
```
"""
