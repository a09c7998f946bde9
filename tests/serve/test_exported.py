"""seq2seq-serve with an exported model: /v1/attention answers 501 (its runtime has no attention
weights) with the way to get them, and the server goes on translating."""

from __future__ import annotations

import pytest
from serving import post_json, running_server

from seq2seq.cli.export import main as export_main

pytestmark = pytest.mark.slow  # trained_model_dir trains


def test_attention_of_an_exported_model_is_501_naming_the_model_directory(trained_model_dir, tmp_path):
    exported = tmp_path / "onnx"
    assert export_main(["--model", str(trained_model_dir), "--output", str(exported), "--quiet"]) == 0
    with running_server(exported, tmp_path / "stderr.log") as server:
        reply = post_json(server.url + "/v1/attention", {"q": "A man is sleeping."})
        assert reply.status == 501, reply.body
        assert "exported model" in reply.json()["error"] and "model directory" in reply.json()["error"]
        assert post_json(server.url + "/v1/translate", {"q": "A man is sleeping.", "beam_size": 1}).status == 200
