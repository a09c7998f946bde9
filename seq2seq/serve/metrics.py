"""The server's Prometheus metrics, in a registry of their own (two apps in one process never share counts)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Powers of two up to the largest batch a token budget of 8k allows for one-token sentences.
BATCH_BUCKETS = tuple(float(2**i) for i in range(14))
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter  # labels: endpoint, status
    latency: Histogram  # labels: endpoint; seconds from the request's start to its response
    sentences: Counter  # sentences translated by the worker
    target_tokens: Counter  # subwords of the best translations
    batch_sentences: Histogram  # sentences per batch the worker took
    queue_depth: Gauge  # sentences waiting for the worker
    dropped: Counter  # labels: reason (disconnected, deadline); sentences taken off the queue untranslated


def new_metrics() -> Metrics:
    r = CollectorRegistry()
    return Metrics(
        registry=r,
        requests=Counter("seq2seq_requests", "HTTP requests answered, by endpoint and status", ["endpoint", "status"], registry=r),
        latency=Histogram("seq2seq_request_seconds", "HTTP request latency", ["endpoint"], buckets=LATENCY_BUCKETS, registry=r),
        sentences=Counter("seq2seq_sentences", "sentences translated", registry=r),
        target_tokens=Counter("seq2seq_target_tokens", "target subwords of the best translations", registry=r),
        batch_sentences=Histogram("seq2seq_batch_sentences", "sentences per batch taken by the inference worker", buckets=BATCH_BUCKETS, registry=r),
        queue_depth=Gauge("seq2seq_queue_sentences", "sentences waiting in the queue", registry=r),
        dropped=Counter("seq2seq_dropped_sentences", "queued sentences dropped untranslated, by reason", ["reason"], registry=r),
    )
