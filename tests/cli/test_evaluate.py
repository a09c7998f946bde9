"""seq2seq-evaluate (seq2seq/cli/evaluate.py): both conventions, the translations, the flags."""

import json

import pytest
from commands import BIN, run

from seq2seq.options import SearchOptions


@pytest.mark.slow
def test_evaluate_scores_both_conventions_and_writes_the_translations(trained_model_dir, translator, demo_dir, tmp_path, capsys, monkeypatch):
    from seq2seq.cli.evaluate import main as evaluate_main
    from seq2seq.scoring import corpus_bleu, literature_bleu, score_all
    from seq2seq.textfiles import read_lines

    src, ref = demo_dir / "test.en.gz", demo_dir / "test.de.gz"
    out = tmp_path / "hyp.txt"
    data = ["--model", str(trained_model_dir), "--src", str(src), "--ref", str(ref), "--device", "cpu"]
    result = run([BIN / "seq2seq-evaluate", *data, "--beam-size", "2", "--output", str(out)])
    assert result.returncode == 0, result.stderr.decode()
    hyps = out.read_text(encoding="utf-8").splitlines()
    assert hyps == translator.translate(read_lines(src), SearchOptions(beam_size=2))
    refs = read_lines(ref)
    lines = result.stdout.decode().splitlines()
    assert lines == [s.format() for s in score_all(hyps, refs)]
    assert lines[0] == corpus_bleu(hyps, refs).format() and lines[3] == literature_bleu(hyps, refs).format()
    assert lines[0].startswith("BLEU = ") and lines[3].startswith("BLEU (Multi30k literature convention) = ")

    assert evaluate_main([*data, "--beam-size", "2", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record == {s.name: {"score": s.score, "signature": s.signature} for s in score_all(hyps, refs)}

    # This barely trained model says the same whatever the beam, so check that the search flags arrive.
    from seq2seq.inference.translator import Translator

    calls = []
    real = Translator.translate
    monkeypatch.setattr(
        Translator,
        "translate",
        lambda self, sentences, options=None, *, batch_size=64: calls.append((options, batch_size)) or real(self, sentences, options, batch_size=batch_size),
    )
    assert evaluate_main([*data, "--beam-size", "3", "--length-penalty", "0.5", "--no-early-stop", "--batch-size", "7"]) == 0
    assert calls == [(SearchOptions(beam_size=3, length_penalty=0.5, early_stop=False), 7)]
    capsys.readouterr()

    short = tmp_path / "short.de"
    short.write_text("Ein Hund.\n")
    assert evaluate_main(["--model", str(trained_model_dir), "--src", str(src), "--ref", str(short)]) == 2
    assert "has 40 lines but" in capsys.readouterr().err
    assert evaluate_main(["--model", str(trained_model_dir), "--src", str(tmp_path / "missing.en"), "--ref", str(ref)]) == 2
    assert "missing.en: No such file or directory" in capsys.readouterr().err
