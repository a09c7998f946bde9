"""tools/benchmark_paragraphs.py on the tiny model: both loads run against a real server, and the
figures say that paragraphs of the demo's one-sentence lines come back as their lines joined."""

import json

import pytest

from conftest import load_tool

pytestmark = pytest.mark.slow

benchmark_paragraphs = load_tool("benchmark_paragraphs")


def test_paragraphs_against_lines(trained_model_dir, demo_dir, tmp_path):
    out = tmp_path / "figures.json"
    code = benchmark_paragraphs.main(
        [
            "--model", str(trained_model_dir), "--src", str(demo_dir / "test.en.gz"), "--ref", str(demo_dir / "test.de.gz"),
            "--limit", "20", "--group", "4", "--concurrency", "2", "--serve-args", '--options {"beam_size":1,"max_len_ratio":0.5}', "--json", str(out),
        ]
    )  # fmt: skip
    figures = json.loads(out.read_text())
    assert code == 0 and figures["sentences"] == 20 and figures["paragraphs"] == 5
    assert figures["lines_sentences_per_s"] > 0 and figures["paragraphs_sentences_per_s"] > 0
    # Each demo line is one sentence, so a paragraph's translation is its lines' translations joined.
    assert figures["paragraphs_identical_to_joined_lines"] == 5
    assert figures["bleu_paragraphs"] == figures["bleu_lines_joined"] and figures["bleu_difference"] == 0
    assert "nrefs:1" in figures["bleu_signature"]
