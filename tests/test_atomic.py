"""seq2seq/atomic.py: a write that fails leaves the previous file in place and no temporary file."""

import pytest

from seq2seq.atomic import atomic_write


def test_atomic_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "state.pt"
    atomic_write(target, lambda tmp: tmp.write_bytes(b"old"))

    def crash(tmp):
        tmp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, crash)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"], "no temporary file left behind"
