"""Translating one file with several processes: shares, parts, and an output identical to one process's."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seq2seq.inference.sharding import ChunkCounts, Shard, merge_parts, own_lines, part_path, share_size
from seq2seq.textfiles import read_lines

BIN = Path(sys.executable).parent
TIMEOUT = 300


@pytest.mark.parametrize("total", [0, 1, 7, 8, 9, 23, 24, 25])
def test_shares_cover_every_line_once_and_merge_back_in_order(tmp_path, total):
    world, chunk = 3, 4
    lines = [f"line {i}" for i in range(total)]
    counts = []
    for rank in range(world):
        shard = Shard(rank, world, rank, world)
        mine = list(own_lines(lines, shard, chunk))
        assert len(mine) == share_size(total, shard, chunk)
        assert all((i // chunk) % world == rank and text == lines[i] for i, text in mine)
        # Rank r writes two output lines for each input line (as --nbest 2 does).
        tally = ChunkCounts(chunk)
        with open(part_path(tmp_path / "out", rank), "w") as part:
            for i, text in mine:
                part.write(f"{text} a\n{text} b\n")
                tally.add(i, 2)
        counts.append(tally.counts)
    merge_parts([part_path(tmp_path / "out", r) for r in range(world)], counts, tmp_path / "out")
    assert (tmp_path / "out").read_text().splitlines() == [f"{line} {x}" for line in lines for x in "ab"]
    assert not list(tmp_path.glob("out.part-*"))


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
@pytest.mark.parametrize("extra", [[], ["--nbest", "2", "--beam-size", "2"]], ids=["best", "nbest"])
def test_two_processes_write_what_one_process_writes(tmp_path, trained_model_dir, demo_dir, extra):
    # 150 lines in chunks of 16 × 4: three chunks, the last one partial; rank 1 gets the middle one.
    src = tmp_path / "src.en"
    src.write_text("".join(line + "\n" for line in read_lines(demo_dir / "train.en.gz")[:150]), encoding="utf-8")
    common = ["--model", trained_model_dir, "--input", src, "--batch-size", "4", "--quiet", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([str(c) for c in [BIN / "seq2seq-translate", *common, "--output", tmp_path / "one.de"]], capture_output=True, env=env, timeout=TIMEOUT)
    assert one.returncode == 0, one.stderr.decode()
    two = subprocess.run(
        [
            str(c)
            for c in [
                BIN / "torchrun",
                "--standalone",
                "--nproc_per_node=2",
                "--no-python",
                BIN / "seq2seq-translate",
                *common,
                "--output",
                tmp_path / "two.de",
            ]
        ],
        capture_output=True,
        env=env,
        timeout=TIMEOUT,
    )
    assert two.returncode == 0, two.stderr.decode()[-3000:]
    expected = (tmp_path / "one.de").read_bytes()
    assert expected.count(b"\n") == 150 * (2 if extra else 1)
    assert (tmp_path / "two.de").read_bytes() == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.de", "src.en", "two.de"]  # the parts are gone


def test_several_processes_need_a_file_to_share(tmp_path, monkeypatch):
    from seq2seq.cli.translate import main as translate_main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert translate_main(["--model", str(tmp_path), "--output", str(tmp_path / "out")]) == 2
