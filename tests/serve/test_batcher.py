"""The batching queue with a stand-in translator (no model): token budget, wait, order, options, drops, calls."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

pytest.importorskip("prometheus_client", reason="the server's extra is not installed: pip install -e '.[serve]'")

from seq2seq.inference.translator import Translation
from seq2seq.options import SearchOptions
from seq2seq.serve.batcher import Batcher
from seq2seq.serve.metrics import new_metrics


class Echo:
    """Translates a sentence into itself, upper-cased; a token is a word. Records every call."""

    def __init__(self, delay: float = 0.0):
        self.tokenizer = self
        self.calls: list[tuple[list[str], SearchOptions]] = []
        self.delay = delay
        self.gate = threading.Event()
        self.gate.set()

    def encode_src(self, texts: list[str]) -> list[list[int]]:
        return [[0] * len(t.split()) for t in texts]

    def translate_nbest(self, texts: list[str], options: SearchOptions, *, batch_size: int) -> list[list[Translation]]:
        self.gate.wait()
        if "boom" in texts:
            raise RuntimeError("boom")
        self.calls.append((list(texts), options))
        time.sleep(self.delay)
        return [[Translation(t.upper(), -float(len(t)), t.split())] for t in texts]


def batcher_for(echo: Echo, max_tokens: int = 100, max_wait: float = 0.0) -> Batcher:
    return Batcher(echo, new_metrics(), max_tokens=max_tokens, max_wait=max_wait, batch_size=64)


def texts_of(results) -> list[str]:
    return [hyps[0].text for hyps in results]


def test_requests_share_batches_within_the_token_budget_and_come_back_in_order():
    async def main():
        echo = Echo()
        echo.gate.clear()  # the worker holds its first batch until every request is queued
        batcher = batcher_for(echo, max_tokens=6)
        batcher.start()
        first = batcher.submit(["a b"], SearchOptions())
        await asyncio.sleep(0.05)
        second = batcher.submit(["c d e", "f", "g h i j", "k l"], SearchOptions())
        third = batcher.submit(["m n o p q r s t"], SearchOptions())  # longer than the budget: a batch of its own
        echo.gate.set()
        results = await asyncio.gather(first.future, second.future, third.future)
        batcher.stop()
        return echo.calls, results

    calls, (first, second, third) = asyncio.run(main())
    assert texts_of(first) == ["A B"]
    assert texts_of(second) == ["C D E", "F", "G H I J", "K L"]  # split over batches, put back in order
    assert texts_of(third) == ["M N O P Q R S T"]
    assert [texts for texts, _ in calls] == [["a b"], ["c d e", "f"], ["g h i j", "k l"], ["m n o p q r s t"]]


def test_the_worker_waits_for_more_sentences_only_while_more_requests_are_coming():
    async def main(max_wait: float, busy: bool):
        echo = Echo()
        batcher = batcher_for(echo, max_wait=max_wait)
        batcher.start()
        if busy:  # ten requests 10 ms apart: at that rate another is expected within a wait of 0.3 s
            tickets = []
            for _ in range(10):
                tickets.append(batcher.submit(["x"], SearchOptions()))
                await asyncio.sleep(0.01)
            await asyncio.gather(*(t.future for t in tickets))
        first = batcher.submit(["a"], SearchOptions())
        await asyncio.sleep(0.05)
        second = batcher.submit(["b"], SearchOptions())
        await asyncio.gather(first.future, second.future)
        batcher.stop()
        return [texts for texts, _ in echo.calls if "x" not in texts]

    assert asyncio.run(main(max_wait=0.3, busy=True)) == [["a", "b"]]
    assert asyncio.run(main(max_wait=0.0, busy=True)) == [["a"], ["b"]]
    # A lone request (nothing else in the last second) goes at once, however long the wait may be.
    assert asyncio.run(main(max_wait=0.3, busy=False)) == [["a"], ["b"]]


def test_a_worker_holding_part_of_a_batch_goes_once_a_request_fills_its_budget():
    async def main():
        echo = Echo()
        batcher = batcher_for(echo, max_tokens=4, max_wait=1.0)
        batcher.start()
        alone = batcher.submit(["x"], SearchOptions())  # nothing came before it: it goes at once
        await asyncio.sleep(0.02)
        held = batcher.submit(["y"], SearchOptions())  # one request 20 ms ago: more are expected, the worker waits
        await asyncio.sleep(0.05)
        start = time.perf_counter()
        filling = batcher.submit(["a b c"], SearchOptions())  # the 3 subwords left in the budget
        await asyncio.gather(held.future, filling.future)
        seconds = time.perf_counter() - start
        await alone.future
        batcher.stop()
        return [texts for texts, _ in echo.calls], seconds

    calls, seconds = asyncio.run(main())
    assert calls == [["x"], ["y", "a b c"]]
    assert seconds < 0.5  # not the rest of the 1 s wait


def test_one_call_per_distinct_options_in_a_batch():
    async def main():
        echo = Echo()
        echo.gate.clear()
        batcher = batcher_for(echo)
        batcher.start()
        tickets = [batcher.submit([t], SearchOptions(beam_size=k)) for t, k in (("a", 5), ("b", 2), ("c", 5))]
        await asyncio.sleep(0.05)
        echo.gate.set()
        results = await asyncio.gather(*(t.future for t in tickets))
        batcher.stop()
        return echo.calls, results

    calls, results = asyncio.run(main())
    assert [(texts, o.beam_size) for texts, o in calls] == [(["a", "c"], 5), (["b"], 2)]
    assert [texts_of(r) for r in results] == [["A"], ["B"], ["C"]]


def test_cancelled_requests_are_dropped_from_the_queue_and_counted():
    async def main():
        echo = Echo()
        echo.gate.clear()
        batcher = batcher_for(echo, max_tokens=1)
        batcher.start()
        busy = batcher.submit(["a"], SearchOptions())
        await asyncio.sleep(0.05)  # the worker has taken "a" and waits at the gate
        gone = batcher.submit(["b", "c"], SearchOptions())
        late = batcher.submit(["d"], SearchOptions())
        kept = batcher.submit(["e"], SearchOptions())
        gone.cancel("disconnected")
        late.cancel("deadline")
        echo.gate.set()
        await asyncio.gather(busy.future, kept.future)
        batcher.stop()
        return echo.calls, batcher.metrics

    calls, metrics = asyncio.run(main())
    assert [texts for texts, _ in calls] == [["a"], ["e"]]
    assert metrics.dropped.labels("disconnected")._value.get() == 2
    assert metrics.dropped.labels("deadline")._value.get() == 1
    assert metrics.sentences._value.get() == 2
    assert metrics.queue_depth._value.get() == 0


def test_a_failing_batch_fails_its_requests_and_the_worker_goes_on():
    async def main():
        echo = Echo()
        echo.gate.clear()
        batcher = batcher_for(echo)
        batcher.start()
        bad = batcher.submit(["boom"], SearchOptions())
        good = batcher.submit(["fine"], SearchOptions(beam_size=2))
        echo.gate.set()
        with pytest.raises(RuntimeError, match="boom"):
            await bad.future
        result = await good.future
        batcher.stop()
        return result

    assert texts_of(asyncio.run(main())) == ["FINE"]


def test_calls_run_on_the_worker_between_batches():
    async def main():
        echo = Echo()
        batcher = batcher_for(echo)
        batcher.start()
        ticket = batcher.submit(["a"], SearchOptions())
        thread = await batcher.call(lambda: threading.current_thread().name)
        with pytest.raises(ZeroDivisionError):
            await batcher.call(lambda: 1 / 0)
        await ticket.future
        empty = batcher.submit([], SearchOptions())  # nothing to translate: answered at once
        assert await empty.future == []
        batcher.stop()
        return thread

    assert asyncio.run(main()).startswith("seq2seq-inference")


def test_workers_translate_their_batches_at_the_same_time_and_answers_keep_their_order():
    class Paired(Echo):
        """Each batch waits at a barrier for a second batch: only two workers at once get past it."""

        def __init__(self):
            super().__init__()
            self.barrier = threading.Barrier(2, timeout=10)
            self.threads: set[str] = set()

        def translate_nbest(self, texts, options, *, batch_size):
            self.threads.add(threading.current_thread().name)
            self.barrier.wait()
            return super().translate_nbest(texts, options, batch_size=batch_size)

    async def main():
        paired = Paired()
        batcher = Batcher(paired, new_metrics(), max_tokens=1, max_wait=0.0, batch_size=64, workers=2)
        batcher.start()
        ticket = batcher.submit(["a", "b", "c", "d"], SearchOptions())
        results = await asyncio.wait_for(ticket.future, 20)
        await asyncio.to_thread(batcher.stop)
        return texts_of(results), paired.threads, [texts for texts, _ in paired.calls]

    texts, threads, calls = asyncio.run(main())
    assert texts == ["A", "B", "C", "D"]
    assert threads == {"seq2seq-inference-0", "seq2seq-inference-1"}
    assert sorted(calls) == [["a"], ["b"], ["c"], ["d"]]


def test_a_worker_leaves_idle_workers_their_share_of_what_waits():
    """Four sentences queued at once, two idle workers, room for all four in one batch: each takes two,
    and both translate at once (each batch waits at a barrier for the other)."""

    class Paired(Echo):
        def __init__(self):
            super().__init__()
            self.barrier = threading.Barrier(2, timeout=10)

        def translate_nbest(self, texts, options, *, batch_size):
            self.barrier.wait()
            return super().translate_nbest(texts, options, batch_size=batch_size)

    async def main():
        paired = Paired()
        batcher = Batcher(paired, new_metrics(), max_tokens=100, max_wait=0.0, batch_size=64, workers=2)
        ticket = batcher.submit(["a", "b", "c", "d", "e"], SearchOptions())
        batcher.start()
        results = await asyncio.wait_for(ticket.future, 20)
        await asyncio.to_thread(batcher.stop)
        return texts_of(results), sorted(texts for texts, _ in paired.calls)

    assert asyncio.run(main()) == (["A", "B", "C", "D", "E"], [["a", "b", "c"], ["d", "e"]])


def test_stop_finishes_what_is_queued():
    async def main():
        echo = Echo(delay=0.01)
        batcher = batcher_for(echo, max_tokens=1)
        batcher.start()
        tickets = [batcher.submit([str(i)], SearchOptions()) for i in range(5)]
        await asyncio.to_thread(batcher.stop)
        return [texts_of(await t.future) for t in tickets]

    assert asyncio.run(main()) == [[str(i)] for i in range(5)]


class PipedChild:
    """A stand-in WorkerProcess (send, receive, alive, restart): it answers each batch sent, in order,
    once `release` allows, and records how many batches it held at once."""

    def __init__(self, source, *, name):
        self.name, self.alive, self.sent, self.held = name, True, [], 0
        self.release = threading.Semaphore(0)
        self.lock = threading.Lock()

    def wait_ready(self):
        pass

    def send(self, texts, options, *, batch_size):
        with self.lock:
            self.sent.append(list(texts))
            self.held = max(self.held, len(self.sent))
            self.batches = getattr(self, "batches", []) + [list(texts)]

    def receive(self):
        assert self.release.acquire(timeout=10), "the batch was never released"
        with self.lock:
            texts = self.sent.pop(0)
        if "boom" in texts:
            self.alive = False  # as a child killed while it held this batch
            from seq2seq.serve.processes import WorkerError

            raise WorkerError(f"{self.name} ended (exit code -9)")
        return [[Translation(t.upper(), 0.0, [t])] for t in texts]

    def restart(self):
        self.alive = True
        self.restarts = getattr(self, "restarts", 0) + 1

    def close(self):
        pass


def test_a_worker_process_holds_the_next_batch_while_it_translates_one_and_a_dead_one_starts_again(monkeypatch):
    """With worker processes, a child is sent its next batch before it has answered the last (PIPELINE),
    answers come back in order, a batch the child held when it died fails alone, and the next batch
    starts it again."""
    import seq2seq.serve.batcher as batcher_module
    from seq2seq.serve.processes import ModelSource

    children = []
    monkeypatch.setattr(batcher_module, "WorkerProcess", lambda source, name: children.append(PipedChild(source, name=name)) or children[-1])

    async def main():
        batcher = Batcher(Echo(), new_metrics(), max_tokens=1, max_wait=0.0, batch_size=64, workers=1, processes=ModelSource(("d",), "cpu", "fp32", 1, True))
        batcher.start()
        (child,) = children
        tickets = [batcher.submit([t], SearchOptions()) for t in ("a", "b", "c")]
        for _ in range(200):  # both of the child's slots fill before it answers anything
            if child.held == batcher_module.PIPELINE:
                break
            await asyncio.sleep(0.01)
        held = child.held
        for _ in range(3):
            child.release.release()
        answers = [texts_of(await asyncio.wait_for(t.future, 10)) for t in tickets]
        dead = batcher.submit(["boom"], SearchOptions())
        child.release.release()
        with pytest.raises(Exception, match="ended"):
            await asyncio.wait_for(dead.future, 10)
        after = batcher.submit(["d"], SearchOptions())
        child.release.release()
        answers.append(texts_of(await asyncio.wait_for(after.future, 10)))
        await asyncio.to_thread(batcher.stop)
        return held, answers, child.restarts

    assert asyncio.run(main()) == (2, [["A"], ["B"], ["C"], ["D"]], 1)


def test_worker_processes_share_what_waits_among_the_places_their_pipelines_have(monkeypatch):
    """Eight sentences queued at once, two worker processes holding up to PIPELINE batches each: the
    batches are shared out over the four places (2, 2, 2, 2), not one batch per child while the
    places for their next batches stay empty."""
    import seq2seq.serve.batcher as batcher_module
    from seq2seq.serve.processes import ModelSource

    children = []
    monkeypatch.setattr(batcher_module, "WorkerProcess", lambda source, name: children.append(PipedChild(source, name=name)) or children[-1])

    async def main():
        batcher = Batcher(Echo(), new_metrics(), max_tokens=100, max_wait=0.0, batch_size=64, workers=2, processes=ModelSource(("d",), "cpu", "fp32", 1, True))
        ticket = batcher.submit(list("abcdefgh"), SearchOptions())
        batcher.start()
        for _ in range(200):  # every place filled before any child answers
            if sum(len(getattr(c, "batches", [])) for c in children) == 2 * batcher_module.PIPELINE:
                break
            await asyncio.sleep(0.01)
        sizes = sorted(len(b) for c in children for b in getattr(c, "batches", []))
        for child in children:
            for _ in range(batcher_module.PIPELINE):
                child.release.release()
        results = await asyncio.wait_for(ticket.future, 10)
        await asyncio.to_thread(batcher.stop)
        return sizes, [c.held for c in children], texts_of(results)

    assert asyncio.run(main()) == ([2, 2, 2, 2], [2, 2], list("ABCDEFGH"))
