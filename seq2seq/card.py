"""The model card: the README.md of a model directory, in the Hugging Face format.

YAML front matter (languages, license, metrics, pipeline tag, results), then the data, the
model and its training, the scores, how to use it, intended use and limitations, and the recipe.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from seq2seq.config import Config, dump_yaml
from seq2seq.corpus import describe_source

if TYPE_CHECKING:
    from seq2seq.checkpoint import ModelMeta


def model_card(config: Config, meta: ModelMeta) -> str:
    """A Hugging Face model card: YAML front matter (languages, license, metrics, pipeline tag,
    results), then the data, recipe, size, training time, scores, intended use and limitations."""
    data, m, record = config.data, config.model, meta.training
    source = describe_source(data)
    results = [{"task": {"type": "translation", "name": f"Translation {data.src_lang}-{data.tgt_lang}"},
                "dataset": {"type": data.hub or "local", "name": source, "split": split},
                "metrics": [{"type": "bleu", "value": round(value, 2), "name": f"{split} BLEU (sacreBLEU)"}]}
               for split, value in (("validation", record and record.valid_bleu), ("test", record and record.test_bleu)) if value is not None]
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
    if record is not None and record.averaged_from:
        scores += f"- Weights averaged over {len(record.averaged_from)} checkpoints: {', '.join(Path(d).name for d in record.averaged_from)}\n"
    if record is not None and record.valid_bleu is not None:
        scores += f"- Validation BLEU: {record.valid_bleu:.2f} (search with beam {config.train.valid_beam_size}; `{record.valid_bleu_signature}`)\n"
    if record is not None and record.test_bleu is not None:
        scores += f"- Test BLEU: {record.test_bleu:.2f} (beam {record.test_beam_size}; `{record.test_bleu_signature}`)\n"
    training = (
        f"\n- {record.step} steps, {record.epoch} epochs, {record.train_seconds} s of training (validation included)."
        if record is not None else ""
    )
    parameters = f"; {record.num_parameters:,} parameters" if record is not None else ""
    return f"""---
{yaml.safe_dump(front, sort_keys=False, allow_unicode=True).strip()}
---

# {data.src_lang}→{data.tgt_lang} BiLSTM translation model

A bidirectional-LSTM encoder and an LSTM decoder ({"attention: " + m.attention if m.attention != "none" else "no attention: the decoder reads the source only through the context vector"}), trained with `seq2seq-train`.

## Data

{source} ({data.src_lang}→{data.tgt_lang}); SentencePiece {config.tokenizer.model_type}, {config.tokenizer.vocab_size} pieces, {"one joint vocabulary" if config.tokenizer.joint else "separate vocabularies"}.

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

## Intended use and limitations

Research and teaching: translating short {data.src_lang} sentences of the training domain into {data.tgt_lang}.
A small RNN trained on one corpus: expect poor output on text unlike its training data (other
domains, long documents, rare names), and do not use it where errors matter without review.

## Recipe

```yaml
{dump_yaml(config).strip()}
```
"""
