"""The model card: the README.md of a model directory, in the Hugging Face format.

Written with huggingface_hub's `ModelCard` and `ModelCardData`, so the front matter (languages,
license, metrics, pipeline tag, datasets, model-index results) is what the Hub reads; then the
data, the model and its training, the scores, how to use it, intended use and limitations, and
the recipe. The card is published with the model, so it names the training data by what it is
(a hub dataset by its id, local files by their names) and never by a path of the machine that
trained the model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from seq2seq.config import Config, DataConfig, config_to_dict

if TYPE_CHECKING:
    from seq2seq.modeldir.meta import ModelMeta, TrainingRecord

# The model-index dataset type of data that is not on the Hub (the spec asks for a dataset id there).
LOCAL = "local"


def describe_data(data: DataConfig) -> tuple[str | None, str]:
    """The training data of a recipe for a card: (the hub dataset id, or None for local data; the data in words).

    The source is the one the run used (the first set of demo, train, dir, hub), so a recipe's hub
    default never names data that a local override replaced.
    """
    pair = f"{data.src_lang}-{data.tgt_lang}"
    if data.demo:
        return None, f"the generated demo corpus of seq2seq ({pair})"
    if data.train is not None:
        return None, f"local files {' + '.join(Path(f).name for f in data.train)} ({pair})"
    if data.dir is not None:
        name = Path(os.path.normpath(data.dir)).name or "a local directory"
        if "multi30k" in name.lower():
            return None, f"Multi30k task 1 (local files, {pair})"
        return None, f"local files in a directory {name}/ ({pair})"
    if data.hub is not None:
        return data.hub, data.hub + (f" ({data.hub_config})" if data.hub_config else "")
    return None, "no corpus"


def model_card(config: Config, meta: ModelMeta) -> str:
    """A Hugging Face model card: front matter from `ModelCardData`, then the data, recipe, size,
    training time, scores, intended use and limitations."""
    data, m, record = config.data, config.model, meta.training
    hub_id, source = describe_data(data)
    card_data = _card_data(config, record, hub_id, source)
    scores = _scores(config, record)
    training = f"\n- {record.step} steps, {record.epoch} epochs, {record.train_seconds} s of training (validation included)." if record is not None else ""
    parameters = f"; {record.num_parameters:,} parameters" if record is not None else ""
    recipe = yaml.safe_dump(_without_machine_paths(config_to_dict(config)), sort_keys=False, allow_unicode=True).strip()
    cell = m.cell.upper()
    body = f"""
# {data.src_lang}→{data.tgt_lang} Bi{cell} translation model

A bidirectional-{cell} encoder and a {cell} decoder ({"attention: " + m.attention if m.attention != "none" else "no attention: the decoder reads the source only through the context vector"}), trained with `seq2seq-train`.

## Data

{source[0].upper() + source[1:]}; SentencePiece {config.tokenizer.model_type}, {config.tokenizer.vocab_size} pieces, {"one joint vocabulary" if config.tokenizer.joint else "separate vocabularies"}.

## Model and training

- Encoder {m.enc_layers}×2×{m.enc_hidden}, decoder {m.dec_layers}×{m.dec_hidden}, embeddings {m.emb_dim}, attention `{m.attention}`, input feeding {m.input_feeding}{parameters}.{training}

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

`THIS_DIR` is this model directory, or its id on the Hugging Face Hub (`ORG/NAME`).

## Intended use and limitations

Research and teaching: translating short {data.src_lang} sentences of the training domain into {data.tgt_lang}.
A small RNN trained on one corpus: expect poor output on text unlike its training data (other
domains, long documents, rare names), and do not use it where errors matter without review.

## Recipe

Paths of the training machine are shortened to their last component.

```yaml
{recipe}
```
"""
    return str(ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}"))


def _card_data(config: Config, record: TrainingRecord | None, hub_id: str | None, source: str) -> ModelCardData:
    """The card's front matter: languages, license, tags, datasets and the BLEU scores as model-index results."""
    data, m = config.data, config.model
    scored = [(split, value) for split, value in (("validation", record and record.valid_bleu), ("test", record and record.test_bleu)) if value is not None]
    return ModelCardData(
        language=[data.src_lang, data.tgt_lang],
        license="mit",
        library_name="seq2seq",
        pipeline_tag="translation",
        tags=["translation", m.cell, "seq2seq"],
        datasets=[hub_id] if hub_id else None,
        metrics=["bleu"],
        model_name=f"seq2seq-{data.src_lang}-{data.tgt_lang}-{m.attention}",
        eval_results=[
            EvalResult(
                task_type="translation",
                task_name=f"Translation {data.src_lang}-{data.tgt_lang}",
                dataset_type=hub_id or LOCAL,
                dataset_name=source,
                dataset_config=data.hub_config if hub_id else None,
                dataset_split=split,
                metric_type="bleu",
                metric_value=round(value, 2),
                metric_name=f"{split} BLEU (sacreBLEU)",
            )
            for split, value in scored
        ]
        or None,
    )


def _scores(config: Config, record: TrainingRecord | None) -> str:
    """The card's score lines: averaging, validation and test BLEU with their signatures."""
    scores = ""
    if record is not None and record.averaged_from:
        scores += f"- Weights averaged over {len(record.averaged_from)} checkpoints: {', '.join(Path(d).name for d in record.averaged_from)}\n"
    if record is not None and record.valid_bleu is not None:
        scores += f"- Validation BLEU: {record.valid_bleu:.2f} (search with beam {config.train.valid_beam_size}; `{record.valid_bleu_signature}`)\n"
    if record is not None and record.test_bleu is not None:
        scores += f"- Test BLEU: {record.test_bleu:.2f} (beam {record.test_beam_size}; `{record.test_bleu_signature}`)\n"
    return scores


def _without_machine_paths(value: Any) -> Any:
    """The recipe as a dict, with each absolute or ./ ../ ~ path cut to its last component (hub ids are left alone)."""
    if isinstance(value, dict):
        return {k: _without_machine_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_machine_paths(v) for v in value]
    if isinstance(value, str) and (os.path.isabs(value) or value.startswith(("./", "../", "~"))):
        return Path(os.path.normpath(value)).name
    return value
