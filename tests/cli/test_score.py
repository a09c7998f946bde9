"""seq2seq-score (seq2seq/cli/score.py)."""

from commands import exit_code


def test_score_usage_errors_exit_2(tmp_path, capsys):
    from seq2seq.cli.score import main as score_main

    ref = tmp_path / "ref.txt"
    ref.write_text("Ein kleiner Hund sieht die Katze.\nZwei Katzen spielen im Garten.\n")
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("Ein Hund.\n")
    for args, message in [
        ([str(hyp)], "hypotheses have 1 lines but references have 2"),
        ([str(tmp_path / "missing.txt")], "missing.txt: No such file or directory"),
        ([str(hyp), "--metrics", "meteor"], "invalid choice: 'meteor'"),
        ([str(hyp), "--format", "xml"], "invalid choice: 'xml'"),
    ]:
        assert exit_code(score_main, ["--ref", str(ref), *args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (args, err)
    hyp.write_text(ref.read_text())
    assert exit_code(score_main, ["--ref", str(ref), str(hyp), "--metrics", "bleu"]) == 0
    assert capsys.readouterr().out.startswith("BLEU = 100.00")
