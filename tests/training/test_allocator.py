"""seq2seq/training/allocator.py: when seq2seq-train runs itself again with tcmalloc, and with what."""

import pytest

from seq2seq.training import allocator
from seq2seq.training.allocator import chosen_allocator, preloaded, run_with_tcmalloc, tcmalloc_environment


def test_the_choice_defaults_to_tcmalloc_and_a_bad_value_lists_the_valid_ones():
    assert chosen_allocator({}) == "tcmalloc" and chosen_allocator({"SEQ2SEQ_ALLOCATOR": "system"}) == "system"
    with pytest.raises(ValueError, match="SEQ2SEQ_ALLOCATOR must be one of tcmalloc, system; got 'jemalloc'"):
        chosen_allocator({"SEQ2SEQ_ALLOCATOR": "jemalloc"})


def test_the_environment_preloads_tcmalloc_first_and_keeps_the_users_settings():
    env = tcmalloc_environment({"LD_PRELOAD": "libother.so", "TCMALLOC_RELEASE_RATE": "2", "PATH": "/bin"}, "libtcmalloc_minimal.so.4")
    assert env["LD_PRELOAD"] == "libtcmalloc_minimal.so.4 libother.so" and env["PATH"] == "/bin"
    assert env["TCMALLOC_RELEASE_RATE"] == "2" and env["TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"] == str(1 << 40)
    assert tcmalloc_environment({}, "/usr/lib/libtcmalloc.so.4")["TCMALLOC_RELEASE_RATE"] == "0"
    # Once preloaded, the command does not run itself again.
    assert preloaded(env) and preloaded({"LD_PRELOAD": "/a/b:/usr/lib/libtcmalloc.so.4"})
    assert not preloaded({"LD_PRELOAD": "libother.so"}) and not preloaded({})


@pytest.mark.parametrize(
    "env,device,found,says",
    [
        ({"SEQ2SEQ_ALLOCATOR": "system"}, "cpu", "libtcmalloc_minimal.so.4", "SEQ2SEQ_ALLOCATOR=system"),
        ({}, "cuda:0", "libtcmalloc_minimal.so.4", "a CUDA run"),
        ({"NVIDIA": "yes"}, "auto", "libtcmalloc_minimal.so.4", "a CUDA run"),
        ({}, "auto", None, "apt install libtcmalloc-minimal4"),
        ({"LD_PRELOAD": "libtcmalloc_minimal.so.4"}, "cpu", "libtcmalloc_minimal.so.4", "tcmalloc (preloaded)"),
    ],
)
def test_where_the_command_keeps_its_allocator_it_says_why(monkeypatch, env, device, found, says):
    for name in ("SEQ2SEQ_ALLOCATOR", "LD_PRELOAD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(allocator, "NVIDIA_DEVICE", __file__ if "NVIDIA" in env else "/nonexistent/nvidiactl")
    monkeypatch.setattr(allocator, "find_tcmalloc", lambda: found)
    monkeypatch.setattr(allocator.os, "execve", lambda *a: pytest.fail(f"executed itself again: {a}"))
    assert says in run_with_tcmalloc(device)


def test_with_tcmalloc_found_the_command_executes_itself_with_it_preloaded(monkeypatch):
    monkeypatch.delenv("SEQ2SEQ_ALLOCATOR", raising=False)
    monkeypatch.setenv("LD_PRELOAD", "")
    monkeypatch.setattr(allocator, "find_tcmalloc", lambda: "libtcmalloc_minimal.so.4")
    monkeypatch.setattr(allocator, "NVIDIA_DEVICE", "/nonexistent/nvidiactl")
    monkeypatch.setattr(allocator.sys, "orig_argv", ["python3", "/venv/bin/seq2seq-train", "recipes/en-de.yaml", "train.epochs=1"])
    executed = []

    class Executed(Exception):
        pass

    def execve(path, args, env):
        executed.append((path, args, env))
        raise Executed

    monkeypatch.setattr(allocator.os, "execve", execve)
    with pytest.raises(Executed):
        run_with_tcmalloc("auto")
    ((path, args, env),) = executed
    assert path == allocator.sys.executable and args == [path, "/venv/bin/seq2seq-train", "recipes/en-de.yaml", "train.epochs=1"]
    assert env["LD_PRELOAD"] == "libtcmalloc_minimal.so.4" and env["TCMALLOC_RELEASE_RATE"] == "0"
