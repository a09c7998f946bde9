"""The model card (seq2seq/modeldir/card.py): its front matter and sections, and the data named truthfully."""

import json

import pytest
from huggingface_hub import ModelCard

from seq2seq.config import load_config
from seq2seq.modeldir.card import model_card
from seq2seq.modeldir.meta import ModelMeta, TrainingRecord


@pytest.mark.slow
def test_model_card_front_matter(trained_model_dir):
    import yaml

    text = (trained_model_dir / "README.md").read_text()
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["language"] == ["en", "de"]
    assert front["license"] == "mit" and front["pipeline_tag"] == "translation" and "bleu" in front["metrics"]
    results = front["model-index"][0]["results"]
    meta = json.loads((trained_model_dir / "meta.json").read_text())
    assert [r["dataset"]["split"] for r in results] == ["validation", "test"]
    assert results[1]["metrics"][0]["value"] == round(meta["test_bleu"], 2)
    body = text.split("---\n", 2)[2]
    for needed in ("## Data", "parameters", "Validation BLEU", "Test BLEU", "nrefs:1|case:mixed", "## Intended use and limitations", "## Recipe"):
        assert needed in body


META = ModelMeta(
    format_version=1,
    package_version="0.1.0",
    src_lang="en",
    tgt_lang="de",
    tokenizer_files=("spm.model",),
    tokenizer_sha256="0" * 64,
    special_ids={"pad": 0, "unk": 1, "bos": 2, "eos": 3},
    weights_sha256="1" * 64,
    training=TrainingRecord(step=10, epoch=1, num_parameters=1000, train_seconds=5.0, valid_bleu=30.123, valid_bleu_signature="sig"),
)


@pytest.mark.parametrize(
    ("overrides", "hub_id", "name"),
    [
        ([], "bentrevett/multi30k", "bentrevett/multi30k"),
        (["data.hub=wmt14", "data.hub_config=de-en"], "wmt14", "wmt14 (de-en)"),
        (["data.dir=/home/alice/corpora/multi30k/"], None, "Multi30k task 1 (local files, en-de)"),
        (["data.dir=/home/alice/corpora/news"], None, "local files in a directory news/ (en-de)"),
        (
            ["data.train=[/home/alice/a.en.gz,/home/alice/a.de.gz]", "data.valid=[/home/alice/v.en,/home/alice/v.de]"],
            None,
            "local files a.en.gz + a.de.gz (en-de)",
        ),
        (["data.demo=true"], None, "the generated demo corpus of seq2seq (en-de)"),
    ],
)
def test_the_card_names_the_data_it_was_trained_on(overrides, hub_id, name):
    """A hub dataset by its id; local data by what it is, without the recipe's unused hub default
    and without a path of the training machine (the en-de recipe names bentrevett/multi30k)."""
    config = load_config("recipes/en-de.yaml", [*overrides, "run_dir=/home/alice/runs/en-de", "tokenizer.reuse=/home/alice/runs/old"])
    text = model_card(config, META)
    card = ModelCard(text)
    assert card.data.datasets == ([hub_id] if hub_id else None)
    (result,) = card.data.eval_results
    assert (result.dataset_type, result.dataset_name, result.dataset_split, result.metric_value) == (hub_id or "local", name, "validation", 30.12)
    assert f"## Data\n\n{name[0].upper() + name[1:]};" in card.text
    assert "/home/alice" not in text
    if hub_id is None:
        assert "type: bentrevett/multi30k" not in text and "datasets:" not in text
    assert "run_dir: en-de" in text and "reuse: old" in text  # the recipe, its paths cut to their last part


@pytest.mark.parametrize(("cell", "title", "tag"), [("lstm", "BiLSTM translation model", "lstm"), ("gru", "BiGRU translation model", "gru")])
def test_the_card_names_the_cell(cell, title, tag):
    card = ModelCard(model_card(load_config("recipes/demo.yaml", [f"model.cell={cell}"]), META))
    assert title in card.text and f"bidirectional-{cell.upper()} encoder and a {cell.upper()} decoder" in card.text
    assert tag in card.data.tags and ({"lstm", "gru"} - {tag}).isdisjoint(card.data.tags)
