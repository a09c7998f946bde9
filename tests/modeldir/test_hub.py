"""Models from and to the Hugging Face Hub (seq2seq/modeldir/hub.py), offline: a hub cache laid out as
huggingface_hub lays it out (models--ORG--NAME/blobs, snapshots/COMMIT with links into blobs,
refs/BRANCH), HF_HUB_OFFLINE, an unreachable endpoint, and uploads."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from seq2seq.modeldir.hub import HubError, is_repo_id, resolve_model_dir, upload_model_dir

BIN = Path(sys.executable).parent
MAIN, V1 = "a" * 40, "b" * 40  # commit hashes


def cache_model(cache: Path, repo_id: str, files: Path, commit: str, refs: tuple[str, ...] = ("main",)) -> Path:
    """Put the files of a directory into a hub cache as snapshot_download leaves them; returns the snapshot."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for f in sorted(files.iterdir()):
        if f.is_file():
            blob = hashlib.sha256(f.read_bytes()).hexdigest()
            shutil.copyfile(f, repo / "blobs" / blob)
            (snapshot / f.name).symlink_to(Path("..", "..", "blobs", blob))
    (repo / "refs").mkdir(exist_ok=True)
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)  # no newline, as huggingface_hub writes it
    return snapshot


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # free once closed: nothing listens there


def hub_env(cache: Path, offline: bool) -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_CACHE": str(cache),
        "HF_HUB_OFFLINE": "1" if offline else "0",
        "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}",
        "HF_TOKEN": "hf_test_not_a_token",
    }


@pytest.fixture
def offline(monkeypatch):
    """HF_HUB_OFFLINE=1 for this process: huggingface_hub reads it once, on import, into constants."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def fake_model(tmp_path) -> Path:
    d = tmp_path / "fake"
    d.mkdir()
    for name in ("config.json", "meta.json", "model.safetensors", "README.md", "training_state.pt"):
        (d / name).write_text(name)
    return d


def test_repo_ids():
    assert is_repo_id("org/name") and is_repo_id("Org-1/name_2.v3")
    for not_an_id in ("name", "runs/demo/best", "/abs/dir", "./org/name", "org/", "../x", "org/name/"):
        assert not is_repo_id(not_an_id), not_an_id


def test_resolve_from_the_cache_offline_with_revisions(tmp_path, fake_model, offline):
    cache = tmp_path / "hub"
    main = cache_model(cache, "org/name", fake_model, MAIN)
    v1 = cache_model(cache, "org/name", fake_model, V1, refs=("v1",))
    assert resolve_model_dir("org/name", cache_dir=cache) == main
    assert resolve_model_dir("org/name", revision="v1", cache_dir=cache) == v1
    assert resolve_model_dir("org/name", revision=V1, cache_dir=cache) == v1  # a commit hash
    assert (main / "config.json").read_text() == "config.json"
    with pytest.raises(HubError, match=r"not in the Hugging Face cache .* HF_HUB_OFFLINE=1 forbids downloading it"):
        resolve_model_dir("org/other", cache_dir=cache)
    with pytest.raises(HubError, match="HF_HUB_OFFLINE"):
        resolve_model_dir("org/name", revision="v2", cache_dir=cache)


def test_a_local_directory_wins_over_a_hub_id(tmp_path, fake_model, offline, monkeypatch):
    cache = tmp_path / "hub"
    cache_model(cache, "org/name", fake_model, MAIN)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert resolve_model_dir("org/name", cache_dir=cache) == Path("org/name")
    assert resolve_model_dir(Path("org/missing"), cache_dir=cache) == Path("org/missing")  # a Path is always local
    assert resolve_model_dir("runs/x/best", cache_dir=cache) == Path("runs/x/best")  # not an id: loading reports it missing


def test_hub_module_imports_no_torch(tmp_path, fake_model):
    cache = tmp_path / "hub"
    snapshot = cache_model(cache, "org/name", fake_model, MAIN)
    code = (
        "import sys; from seq2seq.modeldir.hub import resolve_model_dir; print(resolve_model_dir('org/name')); "
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, env=hub_env(cache, offline=True), timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == str(snapshot)


def test_an_unreachable_hub_says_what_to_do(tmp_path):
    result = subprocess.run(
        [BIN / "seq2seq-translate", "--model", "org/name"], input=b"A dog.\n", capture_output=True, env=hub_env(tmp_path / "hub", offline=False), timeout=120
    )
    err = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in err
    assert "org/name is not a local directory, and the Hugging Face Hub (http://127.0.0.1:" in err and "could not be reached" in err
    assert "check the network (and HF_ENDPOINT)" in err and "HF_HUB_OFFLINE=1 skips the network" in err
    offline = subprocess.run(
        [BIN / "seq2seq-translate", "--model", "org/name", "--revision", "v1"],
        input=b"A dog.\n",
        capture_output=True,
        env=hub_env(tmp_path / "hub", offline=True),
        timeout=120,
    )
    assert offline.returncode == 2 and "at revision 'v1' is not in the Hugging Face cache" in offline.stderr.decode()


@pytest.mark.slow
def test_translate_a_model_from_the_hub_cache(trained_model_dir, tmp_path, offline):
    """The command and the API with `org/name`, offline: the same translations as the directory itself;
    --revision picks the snapshot (main's is broken here, v1's is the model)."""
    from seq2seq.inference.translator import Translator
    from seq2seq.modeldir.meta import CheckpointError

    cache = tmp_path / "hub"
    broken = tmp_path / "broken"
    shutil.copytree(trained_model_dir, broken)
    (broken / "model.safetensors").unlink()
    cache_model(cache, "org/demo", broken, MAIN)
    cache_model(cache, "org/demo", trained_model_dir, V1, refs=("v1",))
    sentences = ["The small woman gives the child an apple.", "We see the dogs."]
    local = Translator.from_pretrained(trained_model_dir, device="cpu").translate(sentences)
    hub = subprocess.run(
        [BIN / "seq2seq-translate", "--model", "org/demo", "--revision", "v1"],
        input="\n".join(sentences).encode(),
        capture_output=True,
        env=hub_env(cache, True),
        timeout=120,
    )
    assert hub.returncode == 0, hub.stderr.decode()
    assert hub.stdout.decode().splitlines() == local
    (tmp_path / "src.en").write_text("\n".join(sentences) + "\n")
    evaluate = subprocess.run(
        [
            BIN / "seq2seq-evaluate",
            "--model",
            "org/demo",
            "--revision",
            "v1",
            "--src",
            tmp_path / "src.en",
            "--ref",
            tmp_path / "src.en",
            "--output",
            tmp_path / "hyp.de",
        ],
        capture_output=True,
        env=hub_env(cache, True),
        timeout=120,
    )
    assert evaluate.returncode == 0, evaluate.stderr.decode()
    assert (tmp_path / "hyp.de").read_text().splitlines() == local
    translator = Translator.from_pretrained("org/demo", device="cpu", revision="v1", cache_dir=cache)
    assert translator.model_dir == cache / "models--org--demo" / "snapshots" / V1
    assert translator.translate(sentences) == local
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        Translator.from_pretrained("org/demo", device="cpu", cache_dir=cache)


def test_upload_sends_the_model_directory_without_the_resume_state(fake_model, monkeypatch):
    from huggingface_hub import HfApi
    from huggingface_hub.utils import filter_repo_objects

    calls = {}
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.setdefault("create_repo", (repo_id, kw)))
    monkeypatch.setattr(HfApi, "create_branch", lambda self, repo_id, **kw: calls.setdefault("create_branch", (repo_id, kw)))

    def upload_folder(self, **kw):
        calls["upload_folder"] = kw
        return type("CommitInfo", (), {"commit_url": "https://hub.example/org/name/commit/1"})()

    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    assert upload_model_dir(fake_model, "org/name", revision="v1", private=True) == "https://hub.example/org/name/commit/1"
    assert calls["create_repo"] == ("org/name", {"private": True, "exist_ok": True})
    assert calls["create_branch"] == ("org/name", {"branch": "v1", "exist_ok": True})
    sent = calls["upload_folder"]
    assert sent["repo_id"] == "org/name" and sent["revision"] == "v1" and Path(sent["folder_path"]) == fake_model
    files = sorted(p.name for p in fake_model.iterdir())
    assert sorted(filter_repo_objects(files, ignore_patterns=sent["ignore_patterns"])) == ["README.md", "config.json", "meta.json", "model.safetensors"]


def test_upload_errors_say_what_to_do(tmp_path, fake_model, monkeypatch, capsys):
    from huggingface_hub import constants

    from seq2seq.cli.upload import main as upload_main

    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{closed_port()}")  # HF_ENDPOINT, as read on import
    monkeypatch.setenv("HF_TOKEN", "hf_test_not_a_token")
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    assert upload_main([str(not_a_model), "org/name"]) == 2
    assert "is not a model directory (it lacks config.json, meta.json)" in capsys.readouterr().err
    assert upload_main([str(fake_model), "not an id"]) == 2
    assert "is not a Hub model id; give ORG/NAME" in capsys.readouterr().err
    assert upload_main([str(fake_model), "org/name"]) == 2
    err = capsys.readouterr().err
    assert "could not upload" in err and "127.0.0.1" in err and "check the network (and HF_ENDPOINT)" in err
