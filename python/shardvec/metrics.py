"""Metric events and a Prometheus collector.

Any object with ``emit(event: str, payload: dict) -> None`` can be passed as ``metrics_collector``
to the writers and the reader; the engine calls it from its own threads (with the GIL taken), so it
must be thread-safe. An exception it raises is logged (``metrics_sink_failed``) and dropped.

:class:`PrometheusCollector` aggregates the events into counters and histograms and renders the
Prometheus text format 0.0.4; the engine feeds it directly, without calling into Python.
"""

from __future__ import annotations

from typing import Any, Protocol

from shardvec._native import _engine

__all__ = ["MetricsCollector", "PrometheusCollector"]


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
