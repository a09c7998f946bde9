"""tools/crash_test.py: training killed with SIGKILL at random moments resumes to the same result."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_crash_test_tool_with_sigkill(tmp_path):
    result = subprocess.run([sys.executable, REPO / "tools" / "crash_test.py", "--kills", "2", "--work-dir", tmp_path, "--seed", "3"],
                            capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert b"2 of 2 resumed runs ended identical" in result.stdout
