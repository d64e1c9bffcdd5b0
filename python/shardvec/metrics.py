"""Metric events and a Prometheus collector.

Any object with ``emit(event: str, payload: dict) -> None`` can be passed as ``metrics_collector``
to the writers and the reader; the engine calls it from its own threads (with the GIL taken), so it
must be thread-safe. An exception it raises is logged (``metrics_sink_failed``) and dropped.

:class:`PrometheusCollector` aggregates the events into counters and histograms and renders the
Prometheus text format 0.0.4; the engine feeds it directly, without calling into Python.
"""

from __future__ import annotations

from enum import Enum, unique
from typing import Any, Protocol

from shardvec._native import _engine

__all__ = ["MetricEvent", "MetricsCollector", "PrometheusCollector"]


@unique
class MetricEvent(str, Enum):
    """The event names a collector's ``emit`` receives (shardyfusion's ``MetricEvent``).

    A member equals its name text (``MetricEvent.VECTOR_SEARCH == "vector.reader.search"``), so a
    collector may compare the ``event`` it is given with members or look it up as
    ``MetricEvent(event)``. Every event the shardvec engine and package emit is a member: the
    reference's names, plus ``VECTOR_WRITE_PUBLISHED`` and ``VECTOR_SHARD_DOWNLOAD``, which only
    shardvec emits. Members for the reference's key-value writer and reader are kept so programs
    naming them still import; nothing in shardvec emits those. Collectors should ignore events they
    do not know, as the reference advises.
    """

    # Key-value writer and reader lifecycle (the reference's; not emitted by shardvec)
    WRITE_STARTED = "write.started"
    SHARDING_COMPLETED = "write.sharding_completed"
    SHARD_WRITE_STARTED = "write.shard.started"
    SHARD_WRITE_COMPLETED = "write.shard.completed"
    SHARD_WRITES_COMPLETED = "write.shards_completed"
    MANIFEST_PUBLISHED = "write.manifest_published"
    CURRENT_PUBLISHED = "write.current_published"
    WRITE_COMPLETED = "write.completed"
    BATCH_WRITTEN = "write.batch_written"
    READER_INITIALIZED = "reader.initialized"
    READER_GET = "reader.get"
    READER_MULTI_GET = "reader.multi_get"
    READER_REFRESHED = "reader.refreshed"
    READER_CLOSED = "reader.closed"
    SHARD_WRITE_RETRIED = "write.shard.retried"
    SHARD_WRITE_RETRY_EXHAUSTED = "write.shard.retry_exhausted"

    # Infrastructure
    S3_RETRY = "s3.retry"
    S3_RETRY_EXHAUSTED = "s3.retry_exhausted"
    RATE_LIMITER_THROTTLED = "rate_limiter.throttled"
    RATE_LIMITER_DENIED = "rate_limiter.denied"

    # Vector writer
    VECTOR_WRITE_STARTED = "vector.write.started"
    VECTOR_SHARD_WRITE_COMPLETED = "vector.write.shard.completed"
    VECTOR_WRITE_PUBLISHED = "vector.write.published"  # shardvec: run_id, manifest_ref
    VECTOR_WRITE_COMPLETED = "vector.write.completed"

    # Vector reader
    VECTOR_READER_INITIALIZED = "vector.reader.initialized"
    VECTOR_SEARCH = "vector.reader.search"
    VECTOR_SHARD_SEARCH = "vector.reader.shard_search"
    VECTOR_SHARD_DOWNLOAD = "vector.reader.shard_download"  # shardvec: shard_id, bytes, elapsed_ms
    VECTOR_READER_REFRESHED = "vector.reader.refreshed"
    # shardvec: manifest_ref, reason (refresh() refused a snapshot of another dim or metric)
    VECTOR_READER_REFRESH_REFUSED = "vector.reader.refresh_refused"
    VECTOR_READER_CLOSED = "vector.reader.closed"


class MetricsCollector(Protocol):
    def emit(self, event: str, payload: dict[str, Any]) -> None: ...


class PrometheusCollector:
    """Counters and histograms of the ``vector.*`` events, rendered by :meth:`exposition`."""

    def __init__(self, prefix: str = "shardvec_") -> None:
        self._native = _engine.PrometheusCollector(prefix)

    def emit(self, event: str, payload: dict[str, Any]) -> None:
        """Adds one event (numbers from ``payload``; other values are ignored by the metrics)."""
        self._native.emit(event, dict(payload))

    def exposition(self) -> str:
        """The text exposition (``Content-Type: text/plain; version=0.0.4``)."""
        return str(self._native.exposition())


def engine_sink(collector: Any) -> Any:
    """What the engine receives for ``collector``: the native collector when it is ours."""
    if isinstance(collector, PrometheusCollector):
        return collector._native
    return collector
