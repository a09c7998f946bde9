"""seq2seq-serve under load beside seq2seq-translate, in one sitting.

    flock /tmp/seq2seq-bench.lock python tools/benchmark_serve.py --model runs/en-de/best \\
        --src ../shared/data/multi30k/test_2016_flickr.en.gz [--concurrency 1 8 64] [--json out.json]

1. `seq2seq-translate --batch-size 64` on the file, `--command-runs` times (3): the median of the
   lines/s it reports (the model loaded, start-up left out; one pass over 1,000 lines takes 1-3 s and
   moved ±10% from run to run), and its output, which every server answer is checked against.
2. In process, each sentence alone through `Translator.translate`: the latency a server answering
   one sentence at a time cannot beat.
3. `seq2seq-serve` (default settings) on a free loopback port; for each concurrency C, C clients
   (coroutines of one event loop) with a keep-alive connection each send the sentences as one-sentence LibreTranslate
   requests (POST /translate): sentences/s over the whole file, and p50/p95/p99 request latency.
   Also the CPU time each side spent per sentence (the clients': this process's; the server's: its
   /proc/PID/stat and its worker processes', Linux only, and in brackets its own process's: HTTP, the
   queue, the pipes), against the command's cores' worth (threads ÷ its sentences/s):
   the clients share the server's cores, so what they and HTTP take is what the server lacks. And
   the mean sentences per batch its workers took (from /metrics).

All three use the decoding defaults (beam 5) and `--threads` CPU threads for the model (default 1:
on a small shared machine more threads mostly wait on one another), and the clients run on the
same machine as the server. A benchmark, not a test: compare figures of one sitting.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]  # nearest rank


def command_rate(model: str, sentences: list[str], threads: int, shortlist: bool) -> tuple[float, float, list[str]]:
    """seq2seq-translate --batch-size 64: (sentences/s as it reports, wall seconds with start-up, output lines)."""
    with tempfile.NamedTemporaryFile("w", suffix=".en", encoding="utf-8", delete=False) as f:
        f.writelines(s + "\n" for s in sentences)
    start = time.perf_counter()
    done = subprocess.run(
        [
            str(BIN / "seq2seq-translate"),
            "--model",
            model,
            "--batch-size",
            "64",
            "--threads",
            str(threads),
            "--input",
            f.name,
            *([] if shortlist else ["--no-shortlist"]),
        ],
        capture_output=True,
        check=True,
    )
    wall = time.perf_counter() - start
    Path(f.name).unlink()
    found = re.search(r"translated \d+ lines in [\d.]+ s \(([\d.]+) lines/s\)", done.stderr.decode())
    assert found is not None, done.stderr.decode()
    return float(found[1]), wall, done.stdout.decode("utf-8").split("\n")[:-1]


def in_process_latencies(model: str, sentences: list[str], threads: int, shortlist: bool) -> list[float]:
    import torch

    from seq2seq.inference.output import clean_line
    from seq2seq.inference.translator import Translator

    if threads:  # 0: the library's default, as the commands take it
        torch.set_num_threads(threads)
    translator = Translator.from_pretrained(model, device="cpu", threads=threads, shortlist=shortlist)
    translator.translate(sentences[:4])  # warm-up
    out = []
    for s in sentences:
        start = time.perf_counter()
        translator.translate([clean_line(s)])
        out.append(time.perf_counter() - start)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, extra: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen([str(BIN / "seq2seq-serve"), "--model", model, "--port", str(port), "--quiet", *extra], stdin=subprocess.DEVNULL)
    until = time.monotonic() + 300
    while time.monotonic() < until:
        if proc.poll() is not None:
            raise SystemExit(f"seq2seq-serve exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/ready")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("seq2seq-serve was not ready within 300 s")


def cpu_seconds(pid: int) -> tuple[float, float] | None:
    """User + system CPU seconds so far of process `pid` and its threads, and of its running children
    (the server's worker processes) and theirs, from /proc (None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    except OSError:
        return None
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15
    return own, sum(sum(cpu_seconds(c) or (0.0, 0.0)) for c in children)


def batches_so_far(port: int) -> tuple[float, float]:
    """(batches, sentences) the server's workers have taken so far, from its /metrics."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    found = {name: float(value) for name, value in re.findall(r"^seq2seq_batch_sentences_(count|sum) ([\d.e+]+)$", text, re.M)}
    return found.get("count", 0.0), found.get("sum", 0.0)


def load(port: int, sentences: list[str], concurrency: int) -> tuple[float, list[float], list[str]]:
    """Every sentence as its own request from `concurrency` clients: (wall seconds, latencies, answers in order).

    The clients are coroutines of one event loop (uvloop's where installed), each with its own
    keep-alive connection, writing the request bytes and reading the answer by its Content-Length:
    they share the server's cores, so the less CPU a request costs them, the more is left to the
    server (64 threads of http.client took 0.2-0.3 ms per request). A failed request (a non-200
    answer, a closed connection) stops the load with SystemExit, naming the first failure.
    """
    answers: list[str] = [""] * len(sentences)
    latencies: list[float] = [0.0] * len(sentences)
    next_index = iter(range(len(sentences)))

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in next_index:  # one iterator shared by the clients: each sentence is sent once
                body = json.dumps({"q": sentences[i], "source": "en", "target": "de"}).encode()
                head = f"POST /translate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                start = time.perf_counter()
                writer.write(head.encode() + body)
                status, data = await read_response(reader)
                latencies[i] = time.perf_counter() - start
                if status != 200:
                    raise SystemExit(f"request {i} answered {status}: {data[:200]!r}")
                answers[i] = json.loads(data)["translatedText"]
        finally:
            writer.close()

    async def clients() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return time.perf_counter() - start

    try:
        seconds = event_loop_runner()(clients())
    except (OSError, asyncio.IncompleteReadError) as err:
        raise SystemExit(f"a client's request failed: {type(err).__name__}: {err}") from err
    return seconds, latencies, answers


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(status, body) of one HTTP/1.1 answer with a Content-Length, as seq2seq-serve sends them."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")), None)
    if length is None:
        raise SystemExit(f"an answer without a Content-Length: {lines[0]!r}")
    return int(lines[0].split(" ", 2)[1]), await reader.readexactly(length)


def event_loop_runner():
    """uvloop's `run` where installed (the serve extra), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--src", required=True, help="source sentences, one per line (.gz allowed)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N sentences (0: all)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for the model, in all three (0: the default of each, e.g. one single-thread server worker per CPU for an exported directory)",
    )
    parser.add_argument("--command-runs", type=int, default=3, help="runs of seq2seq-translate; the median sentences/s is the reference")
    parser.add_argument(
        "--no-shortlist", dest="shortlist", action="store_false", help="the command, the server and the in-process figure score the whole vocabulary"
    )
    parser.add_argument("--serve-args", default="", help="more seq2seq-serve arguments, e.g. '--max-wait-ms 2'")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    from seq2seq.textfiles import read_lines

    sentences = read_lines(args.src)
    sentences = sentences[: args.limit] if args.limit else sentences

    runs = [command_rate(args.model, sentences, args.threads, args.shortlist) for _ in range(args.command_runs)]
    if any(out != runs[0][2] for _, _, out in runs):
        raise SystemExit("seq2seq-translate gave other output on another run of the same file")
    rate, wall, expected = statistics.median(r for r, _, _ in runs), runs[0][1], runs[0][2]
    each = ", ".join(f"{r:.1f}" for r, _, _ in runs)
    print(f"seq2seq-translate --batch-size 64: {rate:.1f} sentences/s, the median of {each} (model loaded; {wall:.1f} s with start-up)", flush=True)
    alone = in_process_latencies(args.model, sentences, args.threads, args.shortlist)
    alone_p50 = statistics.median(alone)
    print(f"in process, one sentence at a time: p50 {1000 * alone_p50:.1f} ms, {len(alone) / sum(alone):.1f} sentences/s", flush=True)

    port = free_port()
    server = start_server(args.model, port, ["--threads", str(args.threads), *([] if args.shortlist else ["--no-shortlist"]), *args.serve_args.split()])
    rows = []
    try:
        load(port, sentences[:16], 4)  # warm the connections and the allocator
        # The clients' process holds torch and a model from step 2: out of the garbage collector's
        # passes, which would otherwise walk them while the clients run and count as their CPU.
        gc.collect()
        gc.freeze()
        for c in args.concurrency:
            rows.append(measure(port, server.pid, sentences, c, expected, rate, alone_p50))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(120)

    report(args, len(sentences), rate, alone_p50, code, rows)
    return 0 if code == 0 and all(r["answers_unlike_command"] == 0 for r in rows) else 1


def measure(port: int, server_pid: int, sentences: list[str], concurrency: int, expected: list[str], rate: float, alone_p50: float) -> dict:
    """One load at `concurrency` clients: sentences/s (and × the command's), latency percentiles, the
    CPU milliseconds per sentence of the clients and of the server, and how many answers differ from
    seq2seq-translate's."""
    server_before, clients_before, batches_before = cpu_seconds(server_pid), time.process_time(), batches_so_far(port)
    seconds, latencies, answers = load(port, sentences, concurrency)
    clients_cpu, server_after, batches_after = time.process_time() - clients_before, cpu_seconds(server_pid), batches_so_far(port)
    server_cpu = None if server_before is None or server_after is None else [after - before for before, after in zip(server_before, server_after)]
    return {
        "concurrency": concurrency,
        "sentences_per_s": round(len(sentences) / seconds, 1),
        "vs_command": round(len(sentences) / seconds / rate, 2),
        "p50_ms": round(1000 * percentile(latencies, 50), 1),
        "p95_ms": round(1000 * percentile(latencies, 95), 1),
        "p99_ms": round(1000 * percentile(latencies, 99), 1),
        "p50_vs_in_process": round(percentile(latencies, 50) / alone_p50, 2),
        "sentences_per_batch": round((batches_after[1] - batches_before[1]) / max(batches_after[0] - batches_before[0], 1), 1),
        "client_cpu_ms_per_sentence": round(1000 * clients_cpu / len(sentences), 2),
        "server_cpu_ms_per_sentence": None if server_cpu is None else round(1000 * sum(server_cpu) / len(sentences), 2),
        "server_process_cpu_ms_per_sentence": None if server_cpu is None else round(1000 * server_cpu[0] / len(sentences), 2),
        "answers_unlike_command": sum(a != e for a, e in zip(answers, expected)),
    }


def report(args: argparse.Namespace, n: int, rate: float, alone_p50: float, code: int, rows: list[dict]) -> None:
    """The summary line and the Markdown table on stdout; the JSON file with --json."""
    print(
        f"\n{n} sentences of {args.src}; seq2seq-translate --batch-size 64: {rate:.1f} sentences/s; "
        f"in process one at a time: p50 {1000 * alone_p50:.1f} ms; server exit code after SIGTERM: {code}\n"
    )
    from seq2seq.export.runtime import usable_cpus

    cores = usable_cpus()
    threads = args.threads or cores  # the command's: 0 takes every usable CPU
    print(
        "| concurrency | sentences/s | × command | p50 ms | p95 ms | p99 ms | p50 × in-process | sentences per batch | "
        "CPU ms per sentence: clients | server (its own process) | answers unlike the command |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['concurrency']} | {r['sentences_per_s']} | {r['vs_command']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | "
            f"{r['p50_vs_in_process']} | {r['sentences_per_batch']} | {r['client_cpu_ms_per_sentence']} | {r['server_cpu_ms_per_sentence']} ({r['server_process_cpu_ms_per_sentence']}) | {r['answers_unlike_command']} |"
        )
    print(
        f"\nThe command at {rate:.1f} sentences/s on {threads} thread(s) of {cores} CPU(s): at most "
        f"{1000 * threads / rate:.2f} CPU ms per sentence, all of it translation."
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "sentences": n,
                    "command_sentences_per_s": round(rate, 1),
                    "in_process_p50_ms": round(1000 * alone_p50, 1),
                    "cpus": cores,
                    "server_exit_code": code,
                    "rows": rows,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    sys.exit(main())
