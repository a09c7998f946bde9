"""The model card (seq2seq/card.py): its front matter and sections."""

import json

import pytest

pytestmark = pytest.mark.slow


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
