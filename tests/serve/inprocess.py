"""The server's app in this process, on uvicorn in a thread, over a stand-in translator (no model, no
torch): fast tests of the web layer (limits, files, detection, the OpenAPI contract)."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from serving import free_port, request

from seq2seq.inference.translator import Attention, Translation
from seq2seq.options import SearchOptions


@dataclass
class Meta:
    src_lang: str = "en"
    tgt_lang: str = "de"
    training: None = None
    format_version: int = 1
    package_version: str = "0"


class Shouter:
    """Translates a sentence into itself upper-cased (its n-best: with 1, 2, … "!" appended); a token is a word."""

    def __init__(self) -> None:
        self.meta = Meta()
        self.tokenizer = self
        self.model_dirs = [Path("shouter")]
        self.is_exported = False
        self.precision = "fp32"
        self.device = "cpu"
        self.sentences: list[str] = []  # every sentence translated, in order

    def encode_src(self, texts: list[str]) -> list[list[int]]:
        return [[0] * len(t.split()) for t in texts]

    def translate(self, texts: list[str], options: SearchOptions | None = None) -> list[str]:
        return [hyps[0].text for hyps in self.translate_nbest(texts, options or SearchOptions(), batch_size=64)]

    def translate_nbest(self, texts: list[str], options: SearchOptions, *, batch_size: int) -> list[list[Translation]]:
        self.sentences += texts
        return [[Translation(t.upper() + "!" * k, -float(k), t.split()) for k in range(options.nbest)] for t in texts]

    def attention(self, text: str, options: SearchOptions) -> Attention:
        if not text.strip():
            raise ValueError("the sentence is empty")
        words = text.split()
        return Attention(text.upper(), words + ["</s>"], words + ["</s>"], [[1.0 / (len(words) + 1)] * (len(words) + 1)] * (len(words) + 1))


@dataclass
class Running:
    url: str
    translator: Shouter
    app: object
    thread: threading.Thread = field(repr=False)


def settings(**changes) -> object:
    from seq2seq.serve.app import Settings
    from seq2seq.serve.inputs import Limits

    limits = Limits(max_body_bytes=changes.pop("max_body_bytes", 1 << 20), max_lines=100, max_beam_size=8, **changes.pop("limits", {}))
    base = Settings(limits=limits, max_tokens=256, max_wait=0.0, batch_size=64, timeout=10.0, max_queue=10_000, api_keys=frozenset(), defaults=SearchOptions())
    return dataclasses.replace(base, **changes)


@contextlib.contextmanager
def serving_app(**changes) -> Iterator[Running]:
    """create_app(Shouter(), settings(**changes)) on uvicorn in a thread, once /ready answers; stopped afterwards."""
    import uvicorn

    from seq2seq.serve.app import create_app

    translator = Shouter()
    app = create_app(translator, settings(**changes))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    until = time.monotonic() + 30
    while True:
        with contextlib.suppress(OSError):
            if request(url + "/ready", timeout=5).status == 200:
                break
        if time.monotonic() > until or not thread.is_alive():
            raise RuntimeError("the in-process server did not start")
        time.sleep(0.05)
    try:
        yield Running(url, translator, app, thread)
    finally:
        server.should_exit = True
        thread.join(30)
