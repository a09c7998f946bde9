"""Model workers in processes of their own: translating beside the event loop without sharing its GIL.

With worker threads (seq2seq.serve.batcher), the numpy half of every decoder step holds the GIL of
the server's one process, and the event loop waits for it to read the next requests and answer the
last ones. A `WorkerProcess` runs a `Translator` in a child process instead: the batcher's threads
send it batches over a pipe (the sentences and their `SearchOptions`; back: the n-best lists) and
wait for the answers without the GIL. What crosses the pipe is small (text, no arrays).
The batches are still taken from the one queue in the server's process, so the queue, the limits,
the metrics and the translated files stay where they were. docs/logs/2026-12-07-worker-processes.md
measures both kinds.

The children are started with "spawn": a fork would copy the parent's onnxruntime sessions and
its threads' locks. Each loads the model directories the server loaded (local paths, so a Hub model
is not fetched again), ignores SIGINT (Ctrl-C reaches the whole process group; the server stops its
children itself once the queue is worked off) and ends when its pipe closes. A child that has died
(killed, out of memory) fails the batches it held; the next batch starts it again.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from seq2seq.options import Precision, SearchOptions

if TYPE_CHECKING:
    from seq2seq.inference.translator import Translation

log = logging.getLogger("seq2seq.serve")

# Seconds a child may take to load its model before the server gives up on it.
LOAD_TIMEOUT_S = 300.0


class WorkerError(RuntimeError):
    """A worker process could not load its model or translate a batch, or it ended; the message says why."""


@dataclass(frozen=True)
class ModelSource:
    """What each worker process loads: `Translator.from_pretrained`'s arguments."""

    model_dirs: tuple[str, ...]  # local directories (an ensemble: several)
    device: str
    precision: Precision
    threads: int  # each process's CPU threads
    shortlist: bool


class WorkerProcess:
    """A child process that translates batches with its own `Translator`: `send` a batch, `receive` its n-best lists."""

    def __init__(self, source: ModelSource, *, name: str):
        self.source = source
        self.name = name
        self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, self.source), name=self.name, daemon=True)
        self._process.start()
        child.close()  # the parent keeps its own end only, so that it sees the child end (EOFError)

    def wait_ready(self) -> None:
        """Block until the child has loaded its model; WorkerError when it could not."""
        if not self._conn.poll(LOAD_TIMEOUT_S):
            self._process.kill()
            raise WorkerError(f"{self.name} did not load {', '.join(self.source.model_dirs)} within {LOAD_TIMEOUT_S:g} s")
        self._receive()

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def restart(self) -> None:
        """Start a child that died again (WorkerError if it cannot load its model)."""
        log.warning("%s ended (exit code %s); starting it again", self.name, self._process.exitcode)
        self._conn.close()
        self._start()
        self.wait_ready()

    def send(self, sentences: list[str], options: SearchOptions, *, batch_size: int) -> None:
        """Hand the child a batch; its n-best lists come from `receive`, in the order the batches were sent."""
        with contextlib.suppress(OSError):  # the child died: the receive says so
            self._conn.send((sentences, options, batch_size))

    def receive(self) -> list[list[Translation]]:
        """The n-best lists of the oldest batch sent and not yet received (WorkerError if the child failed or ended)."""
        return self._receive()

    def _receive(self) -> Any:
        try:
            ok, value = self._conn.recv()
        except (EOFError, OSError):
            self._process.join(timeout=5)
            raise WorkerError(f"{self.name} ended (exit code {self._process.exitcode})") from None
        if not ok:
            raise WorkerError(f"{self.name}: {value}")
        return value

    def close(self) -> None:
        """End the child: it leaves its loop when the pipe closes."""
        self._conn.close()
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def _serve(conn: Connection, source: ModelSource) -> None:
    """The child: load the model, then translate each batch that comes, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from seq2seq.inference.translator import Translator

    try:
        translator = Translator.from_pretrained(
            list(source.model_dirs),
            source.device,
            source.precision,
            threads=source.threads,
            shortlist=source.shortlist,
        )
    except Exception as err:  # sent to the parent, which does not start without its workers
        conn.send((False, f"loading {', '.join(source.model_dirs)}: {err}"))
        return
    conn.send((True, None))
    while True:
        try:
            sentences, options, batch_size = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send((True, translator.translate_nbest(sentences, options, batch_size=batch_size)))
        except Exception as err:  # a bug, not the input's fault: the parent fails these requests and goes on
            conn.send((False, f"{type(err).__name__}: {err}"))
