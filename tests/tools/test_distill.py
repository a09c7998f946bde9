"""tools/distill.py end to end on the generated corpus: teacher, distilled data, student, averaging,
val tuning and one test score each for the chosen single model and ensemble."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from seq2seq.textfiles import read_lines

from conftest import TINY

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_distill_pipeline(tmp_path, demo_dir):
    data = tmp_path / "data"
    data.mkdir()
    for split, name in (("train", "train"), ("val", "val"), ("test", "test_2016_flickr")):
        for lang in ("en", "de"):
            (data / f"{name}.{lang}.gz").symlink_to(demo_dir / f"{split}.{lang}.gz")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    overrides = ["data.demo=false", *TINY, "train.keep_checkpoints=5", "train.eval_every=10", "train.max_steps=60"]
    result = subprocess.run(
        [
            sys.executable,
            REPO / "tools" / "distill.py",
            "--data",
            data,
            "--out",
            tmp_path / "kd",
            "--teacher-minutes",
            "5",
            "--student-minutes",
            "5",
            "--recipe",
            REPO / "recipes" / "demo.yaml",
            *overrides,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    kd = tmp_path / "kd"
    sources, references = read_lines(data / "train.en.gz"), read_lines(data / "train.de.gz")
    assert read_lines(kd / "kd" / "data" / "train.en.gz") == sources + sources
    student_targets = read_lines(kd / "kd" / "data" / "train.de.gz")
    assert student_targets[: len(references)] == references
    assert student_targets[len(references) :] == read_lines(kd / "kd" / "train.distilled.de")
    assert len(student_targets) == 2 * len(references)
    assert f"tokenizer.reuse={kd / 'teacher' / 'best'}" in out
    assert (kd / "student" / "averaged" / "model.safetensors").is_file()
    assert len(list(kd.glob("tune-*.json"))) == 4
    # One test score for the chosen single model and one for the chosen ensemble, each after its choice.
    chosen = [line for line in out.splitlines() if line.startswith("chosen on val: ")]
    assert chosen[0].startswith("chosen on val: student-") and chosen[1].split(",")[0] in (
        "chosen on val: averaged+teacher",
        "chosen on val: best+averaged+teacher",
    )
    assert out.count("BLEU (Multi30k literature convention) = ") == 2
    assert out.index(chosen[0]) < out.index("BLEU (Multi30k") < out.index(chosen[1])
