"""Dynamic batching: one queue of sentences, one or more inference workers (threads, or processes).

Requests put their sentences on the queue (`Batcher.submit`) and await a `Ticket`. The worker
takes sentences in arrival order until they hold `max_tokens` source subwords or `max_wait`
seconds have passed since it took the first; it waits only while another request is expected
within the wait (from the arrival rate of the last second), so a lone client is not kept waiting
for company that will not come, translates them with `Translator.translate_nbest`
(one call per distinct `SearchOptions` in the batch) and hands each result back to its ticket at
its index: a request's sentences may go in several batches and still come back in order. A
translation never depends on the batch it was in, so the answers are those of seq2seq-translate.

With `processes` (a `ModelSource`), each worker is a model of its own in a child process
(seq2seq.serve.processes), fed by two threads here: one collects batches and sends them, one receives
their translations and hands them back, without the GIL while they wait, which the event loop then
has to itself. A child holds up to PIPELINE batches, so that it starts the next the moment it is
done; else the worker threads share the server's `translator`, one batch each at a time.

With several workers (`workers`), they take turns at collecting: one gathers the next batch while
the others translate theirs, each with the model's threads (a translator keeps no state between
calls, and onnxruntime and torch release the GIL while they compute). A worker that collects while
others are idle takes only its share of what waits (the sentences over the idle workers; with worker
processes, over the free places in their pipelines), so that the others get work: 64 clients with a
sentence each would otherwise go to one worker in one batch, and their next 64 to the other, one
worker busy at a time (with processes: children waited 14-25% of the time for a batch, sent batches
of 1 to 55 sentences, where sharing over the places left 5%).

Cancelled tickets (the client went away, or the deadline passed) leave their sentences in the
queue; a worker drops them when it reaches them. Other work that needs the model (warm-up, an
attention map) goes through the same queue with `Batcher.call`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seq2seq.options import SearchOptions
from seq2seq.serve.metrics import Metrics
from seq2seq.serve.processes import ModelSource, WorkerError, WorkerProcess

if TYPE_CHECKING:
    from seq2seq.inference.translator import Translation, Translator

log = logging.getLogger("seq2seq.serve")


# Submits remembered for the arrival rate: enough to measure a few hundred requests a second.
ARRIVALS_KEPT = 256
# Batches a worker process holds at once: the one it translates and the next, in its pipe. Handed one
# at a time, the children sat idle 20-28% of the time between batches; with two, the server answered
# 0.93-1.15x (median 1.07x) the sentences/s at 64 clients in six alternating pairs
# (docs/logs/2026-12-07-worker-processes.md).
PIPELINE = 2


class Ticket:
    """One request's sentences on the queue; `future` resolves to their n-best lists, in order."""

    def __init__(self, size: int, loop: asyncio.AbstractEventLoop):
        self.results: list[list[Translation] | None] = [None] * size
        self.left = size  # written by the worker thread only
        self.loop = loop
        self.future: asyncio.Future = loop.create_future()
        # Set on the event loop, read by the worker (at worst one more batch translates it): why the
        # request no longer waits, "disconnected" or "deadline".
        self.cancelled: str | None = None
        if size == 0:
            self.future.set_result([])

    def cancel(self, reason: str) -> None:
        self.cancelled = reason

    def _deliver(self, index: int, hyps: list[Translation]) -> bool:
        """Put one sentence's n-best list in place: whether the ticket is complete."""
        self.results[index] = hyps
        self.left -= 1
        return self.left == 0

    def _fail(self, err: BaseException) -> None:
        self.loop.call_soon_threadsafe(_resolve, self.future, None, err)


def _resolve(future: asyncio.Future, result: Any, err: BaseException | None) -> None:
    if future.done():
        return
    if err is not None:
        future.set_exception(err)
    else:
        future.set_result(result)


def _resolve_all(tickets: list[Ticket]) -> None:
    for ticket in tickets:
        _resolve(ticket.future, ticket.results, None)


@dataclass(frozen=True)
class _Sentence:
    ticket: Ticket
    index: int
    text: str
    options: SearchOptions
    tokens: int


_Group = tuple[SearchOptions, list[_Sentence]]


def _groups(batch: list[_Sentence]) -> list[_Group]:
    """The batch's sentences by their SearchOptions, in order (compared with ==: a field may be unhashable)."""
    groups: list[_Group] = []
    for item in batch:
        for options, members in groups:
            if options == item.options:
                members.append(item)
                break
        else:
            groups.append((item.options, [item]))
    return groups


class _Lane:
    """One worker process's batches in flight, oldest first: each with its groups (one send each)."""

    def __init__(self) -> None:
        self.slots = threading.Semaphore(PIPELINE)
        self.cond = threading.Condition()
        self.sent: collections.deque[tuple[list[_Sentence], list[_Group], float] | None] = collections.deque()  # None: stop

    def put(self, job: tuple[list[_Sentence], list[_Group], float] | None) -> None:
        with self.cond:
            self.sent.append(job)
            self.cond.notify_all()

    def get(self) -> tuple[list[_Sentence], list[_Group], float] | None:
        with self.cond:
            while not self.sent:
                self.cond.wait()
            return self.sent[0]

    def done(self) -> None:
        with self.cond:
            self.sent.popleft()
            self.cond.notify_all()

    def wait_empty(self) -> None:
        with self.cond:
            while self.sent:
                self.cond.wait()


@dataclass(frozen=True)
class _Call:
    fn: Callable[[], Any]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


class Batcher:
    """The queue and its worker. `submit` and `call` are for the event loop's thread."""

    def __init__(
        self,
        translator: Translator,
        metrics: Metrics,
        *,
        max_tokens: int,
        max_wait: float,
        batch_size: int,
        workers: int = 1,
        processes: ModelSource | None = None,
    ):
        self.translator = translator
        self.processes = processes
        self.metrics = metrics
        self.max_tokens = max_tokens
        self.max_wait = max_wait
        self.batch_size = batch_size
        self.workers = workers
        self._items: collections.deque[_Sentence | _Call] = collections.deque()
        self._cond = threading.Condition()
        self._collecting = threading.Lock()  # held by the one worker gathering a batch
        self._busy = 0  # batches taken and not yet done, a worker process holding up to PIPELINE (under _cond)
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._children: list[WorkerProcess] = []
        self._rate = 0.0  # sentences/s of recent batches, all workers together, for Retry-After
        self._arrivals: collections.deque[float] = collections.deque(maxlen=ARRIVALS_KEPT)  # monotonic times of recent submits
        # While a worker waits with part of a batch: the source subwords its batch has room for. A submit
        # wakes it only once they are taken; else it collects what came when its wait ends.
        self._room: int | None = None

    @property
    def queued(self) -> int:
        return len(self._items)

    def start(self) -> None:
        """Start the workers (with `processes`, load their models first: WorkerError if one cannot)."""
        if self.processes is None:
            self._threads = [
                threading.Thread(target=self._work, args=(self.translator,), name=f"seq2seq-inference-{i}", daemon=True) for i in range(self.workers)
            ]
        else:
            self._children = [WorkerProcess(self.processes, name=f"seq2seq-worker-{i}") for i in range(self.workers)]
            try:
                for child in self._children:
                    child.wait_ready()
            except BaseException:
                self._close_children()
                raise
            self._threads = []
            for i, child in enumerate(self._children):
                lane = _Lane()
                self._threads.append(threading.Thread(target=self._feed, args=(child, lane), name=f"seq2seq-feed-{i}", daemon=True))
                self._threads.append(threading.Thread(target=self._drain, args=(child, lane), name=f"seq2seq-drain-{i}", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Finish what is queued, then end the workers."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()
        self._close_children()

    def _close_children(self) -> None:
        for child in self._children:
            child.close()
        self._children = []

    def submit(self, texts: list[str], options: SearchOptions) -> Ticket:
        ticket = Ticket(len(texts), asyncio.get_running_loop())
        if texts:
            lengths = [len(ids) for ids in self.translator.tokenizer.encode_src(texts)]
            with self._cond:
                self._arrivals.append(time.monotonic())
                self._items.extend(_Sentence(ticket, i, t, options, n) for i, (t, n) in enumerate(zip(texts, lengths)))
                self.metrics.queue_depth.set(len(self._items))
                if self._room is not None:
                    self._room -= sum(lengths)
                if self._room is None or self._room <= 0:
                    self._cond.notify()
        return ticket

    def call(self, fn: Callable[[], Any]) -> asyncio.Future:
        """Run fn() on the worker thread, between batches; the future resolves to its result or error."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._cond:
            self._items.append(_Call(fn, future, loop))
            self._cond.notify()
        return future

    def retry_after(self) -> int:
        """Seconds after which the queue as it stands now should have been worked off (1 to 60)."""
        return int(min(60, max(1, math.ceil(self.queued / self._rate)))) if self._rate > 0 else 1

    # --- the worker thread -----------------------------------------------------------------------

    def _work(self, translator: Translator) -> None:
        while True:
            with self._collecting:
                taken = self._take()
            if taken is None:
                return
            if isinstance(taken, _Call):
                self._run_call(taken)
            elif taken:
                try:
                    self._translate(taken, translator)
                finally:
                    self._batch_done()

    def _batch_done(self) -> None:
        with self._cond:
            self._busy -= 1  # counted by _take as it handed the batch over

    def _feed(self, child: WorkerProcess, lane: _Lane) -> None:
        """A worker process's first thread: collect a batch whenever the child holds fewer than PIPELINE, and send it."""
        while True:
            lane.slots.acquire()
            with self._collecting:
                taken = self._take()
            if taken is None:
                lane.put(None)
                return
            if isinstance(taken, _Call):
                self._run_call(taken)
            if isinstance(taken, _Call) or not taken:  # nothing sent: the slot stays free
                lane.slots.release()
                continue
            groups = _groups(taken)
            if not child.alive:  # its batches in flight fail first (the other thread reads the old pipe)
                lane.wait_empty()
                try:
                    child.restart()
                except WorkerError as err:
                    log.exception("%s could not start again", child.name)
                    self._fail(taken, err)
                    self._batch_done()
                    lane.slots.release()
                    continue
            for options, members in groups:
                child.send([m.text for m in members], options, batch_size=self.batch_size)
            lane.put((taken, groups, time.perf_counter()))

    def _drain(self, child: WorkerProcess, lane: _Lane) -> None:
        """A worker process's second thread: receive each batch's translations, in the order sent, and hand them back."""
        last = time.perf_counter()
        while True:
            job = lane.get()
            if job is None:
                return
            batch, groups, sent = job
            for _, members in groups:
                try:
                    self._deliver(members, child.receive())
                except WorkerError as err:  # the child failed or died: not the input's fault; fail these requests (500), keep serving
                    log.error("translating a batch of %d sentences failed: %s", len(members), err)
                    self._fail(members, err)
            now = time.perf_counter()
            self._record(batch, now - max(sent, last))  # since the child could start it
            last = now
            self._batch_done()
            lane.done()
            lane.slots.release()

    def _take(self) -> list[_Sentence] | _Call | None:
        """The next call, or sentences up to the token budget or the wait; None when stopped and empty."""
        with self._cond:
            while not self._items and not self._stopping:
                self._cond.wait()
            if not self._items:
                return None
            if isinstance(self._items[0], _Call):
                return self._items.popleft()
            batch: list[_Sentence] = []
            tokens, until = 0, time.monotonic() + self.max_wait
            idle = self.workers * (PIPELINE if self.processes else 1) - self._busy  # free places for a batch, this one among them
            try:
                while True:
                    while self._items and not isinstance(self._items[0], _Call):
                        item = self._items[0]
                        if item.ticket.cancelled:
                            self._items.popleft()
                            self.metrics.dropped.labels(item.ticket.cancelled).inc()
                            continue
                        if batch and (tokens + item.tokens > self.max_tokens or len(batch) * idle >= len(batch) + len(self._items)):
                            return batch  # the budget is full, or this worker has its share
                        batch.append(self._items.popleft())
                        tokens += item.tokens
                        if tokens >= self.max_tokens:
                            return batch
                    now = time.monotonic()
                    remaining = until - now
                    if not batch or remaining <= 0 or self._stopping or self._items:  # a call waits behind this batch: go now
                        return batch
                    expected = self._expected_arrivals(now, remaining)
                    if expected < 1:
                        return batch
                    self._room = self.max_tokens - tokens
                    try:  # until fewer than one more request is expected in what is left of the wait
                        self._cond.wait(remaining * (1 - 1 / expected))
                    finally:
                        self._room = None
            finally:
                self.metrics.queue_depth.set(len(self._items))
                if batch:  # busy from now, before the next worker collects and counts the idle ones
                    self._busy += 1

    def _expected_arrivals(self, now: float, seconds: float) -> float:
        """Requests expected in the next `seconds`, at the rate they came in over the last second."""
        recent = [t for t in self._arrivals if t > now - 1.0]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(now - recent[0], 1e-3) * seconds

    def _translate(self, batch: list[_Sentence], translator: Translator) -> None:
        start = time.perf_counter()
        for options, members in _groups(batch):
            try:
                results = translator.translate_nbest([m.text for m in members], options, batch_size=self.batch_size)
            except Exception as err:  # a bug, not the input's fault: fail these requests (500), keep serving
                log.exception("translating a batch of %d sentences failed", len(members))
                self._fail(members, err)
                continue
            self._deliver(members, results)
        self._record(batch, time.perf_counter() - start)

    def _deliver(self, members: list[_Sentence], results: list[list[Translation]]) -> None:
        """Hand each sentence's n-best list to its ticket; the complete tickets are resolved by one
        callback on their loop: one wake-up of the event loop per batch, not per request."""
        complete: dict[asyncio.AbstractEventLoop, list[Ticket]] = {}
        for m, hyps in zip(members, results):
            if m.ticket._deliver(m.index, hyps):
                complete.setdefault(m.ticket.loop, []).append(m.ticket)
        self.metrics.target_tokens.inc(sum(len(hyps[0].tokens) for hyps in results))
        for loop, tickets in complete.items():
            loop.call_soon_threadsafe(_resolve_all, tickets)

    @staticmethod
    def _fail(members: list[_Sentence], err: BaseException) -> None:
        for ticket in {id(m.ticket): m.ticket for m in members}.values():
            ticket._fail(err)

    def _record(self, batch: list[_Sentence], seconds: float) -> None:
        """A batch translated in `seconds`: the metrics, and the rate Retry-After is computed from."""
        self.metrics.sentences.inc(len(batch))
        self.metrics.batch_sentences.observe(len(batch))
        current = self.workers * len(batch) / max(seconds, 1e-6)
        self._rate = current if self._rate == 0 else 0.8 * self._rate + 0.2 * current

    @staticmethod
    def _run_call(call: _Call) -> None:
        try:
            result, err = call.fn(), None
        except Exception as e:  # handed to the caller, which turns it into a response
            result, err = None, e
        call.loop.call_soon_threadsafe(_resolve, call.future, result, err)
