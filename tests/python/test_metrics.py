"""Metric events through ``metrics_collector`` (writer, reader, Dask driver) and the Prometheus
collector's text exposition, parsed strictly."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import shards_downloaded
from shardvec.metrics import PrometheusCollector
from shardvec.vector import ShardedVectorReader, VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy
from test_distributed import EXPLICIT_INPUT, config_for, make_table, make_writer

DIM = 8
ROWS = 400


class Recorder:
    """A thread-safe collector keeping every (event, payload) and the threads that sent them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, dict[str, Any]]] = []

    def emit(self, event: str, payload: dict[str, Any]) -> None:
        with self.lock:
            self.events.append((event, dict(payload)))

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        with self.lock:
            out, self.events = self.events, []
        return out


def config(prefix: Path, collector: Any) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=4, strategy=VectorShardingStrategy.LSH), s3_prefix=str(prefix),
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2), metrics_collector=collector)


def data(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((ROWS, DIM)).astype(np.float32)


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\n]|\\[\\\"n])*\",?)*\})? "
                    r"(\+Inf|-Inf|NaN|-?[0-9.eE+-]+)$")
META = re.compile(r"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$")


def parse_exposition(text: str) -> dict[str, float]:
    """Every line must be HELP, TYPE or a sample (format 0.0.4); samples must follow their family's TYPE."""
    assert text.endswith("\n")
    samples: dict[str, float] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        meta = META.match(line)
        if meta:
            if meta.group(1) == "TYPE":
                assert meta.group(3) in ("counter", "gauge", "histogram"), line
                types[meta.group(2)] = meta.group(3)
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name = match.group(1)
        family = re.sub(r"(_total|_bucket|_sum|_count)$", "", name)
        assert family in types, f"{name} has no TYPE line"
        samples[name + (match.group(2) or "")] = float(match.group(3))
    # Histogram buckets are cumulative and end in +Inf = _count.
    for family, kind in types.items():
        if kind != "histogram":
            continue
        buckets = [v for k, v in samples.items() if k.startswith(family + "_bucket{")]
        assert buckets == sorted(buckets), family
        assert samples[family + '_bucket{le="+Inf"}'] == samples[family + "_count"]
    return samples


def test_a_write_and_a_search_deliver_the_spec_events_and_payloads(tmp_path: Path) -> None:
    recorder = Recorder()
    result = write_arrays(data(), config(tmp_path / "store", recorder))
    events = recorder.take()
    names = [e for e, _ in events]
    assert names[0] == "vector.write.started" and names[-2:] == ["vector.write.published", "vector.write.completed"]
    assert events[0][1] == {"run_id": result.run_id}
    shards = [p for e, p in events if e == "vector.write.shard.completed"]
    assert sorted(p["db_id"] for p in shards) == [w.db_id for w in result.winners]
    assert sum(p["row_count"] for p in shards) == ROWS
    assert events[-2][1] == {"run_id": result.run_id, "manifest_ref": result.manifest_ref}
    completed = events[-1][1]
    assert {k: completed[k] for k in ("run_id", "total_vectors", "num_shards")} == {
        "run_id": result.run_id, "total_vectors": ROWS, "num_shards": 4}
    assert isinstance(completed["elapsed_ms"], int)

    shards_downloaded(tmp_path / "store")  # so the cache receives them
    reader = ShardedVectorReader(s3_prefix=str(tmp_path / "store"), local_root=str(tmp_path / "cache"),
                                 metrics_collector=recorder)
    assert recorder.take() == [("vector.reader.initialized",
                                {"s3_prefix": "file://" + str(tmp_path / "store"), "num_shards": 4})]
    response = reader.search(data()[7], top_k=5, num_probes=2)
    events = recorder.take()
    search = [p for e, p in events if e == "vector.reader.search"]
    assert len(search) == 1
    assert {k: search[0][k] for k in ("top_k", "num_shards_queried", "num_results")} == {
        "top_k": 5, "num_shards_queried": response.num_shards_queried, "num_results": len(response.results)}
    assert isinstance(search[0]["elapsed_ms"], float)
    per_shard = [p for e, p in events if e == "vector.reader.shard_search"]
    assert len(per_shard) == response.num_shards_queried
    assert all(p["top_k"] == 5 and 0 <= p["shard_id"] < 4 for p in per_shard)
    assert sum(1 for e, _ in events if e == "vector.reader.shard_download") == response.num_shards_queried
    reader.close()
    assert recorder.take() == [("vector.reader.closed", {})]


def test_the_prometheus_collector_counts_writes_searches_and_refreshes(tmp_path: Path) -> None:
    collector = PrometheusCollector()
    write_arrays(data(0), config(tmp_path / "store", collector))
    with ShardedVectorReader(s3_prefix=str(tmp_path / "store"), local_root=str(tmp_path / "cache"),
                             metrics_collector=collector) as reader:
        for row in range(6):
            reader.search(data(0)[row], top_k=3, shard_ids=[0, 1, 2, 3])
        reader.batch_search(data(0)[:10], top_k=3, num_probes=1)
        write_arrays(data(1), config(tmp_path / "store", collector))
        assert reader.refresh()
    samples = parse_exposition(collector.exposition())
    assert samples["shardvec_vector_writes_total"] == 2
    assert samples["shardvec_vector_vectors_written_total"] == 2 * ROWS
    assert samples["shardvec_vector_searches_total"] == 16
    assert samples["shardvec_vector_search_seconds_count"] == 16
    assert samples["shardvec_vector_shards_queried_total"] == 6 * 4 + 10
    assert samples["shardvec_vector_search_results_total"] == 16 * 3
    assert samples["shardvec_vector_reader_refreshes_total"] == 1
    assert samples["shardvec_vector_reader_closed_total"] == 1
    assert samples['shardvec_events_total{event="vector.reader.initialized"}'] == 1
    # Events from Python code count too, with the label escaped.
    collector.emit('my.event "quoted"', {"elapsed_ms": 1})
    assert parse_exposition(collector.exposition())['shardvec_events_total{event="my.event \\"quoted\\""}'] == 1


def test_a_collector_that_raises_is_logged_and_the_search_goes_on(tmp_path: Path,
                                                                 capfd: pytest.CaptureFixture[str]) -> None:
    write_arrays(data(), config(tmp_path / "store", None))

    class Broken:
        calls = 0

        def emit(self, event: str, payload: dict[str, Any]) -> None:
            Broken.calls += 1
            raise RuntimeError("collector is down")

    with ShardedVectorReader(s3_prefix=str(tmp_path / "store"), local_root=str(tmp_path / "cache"),
                             metrics_collector=Broken()) as reader:
        response = reader.search(data()[3], top_k=4, shard_ids=[0, 1, 2, 3])
        assert len(response.results) == 4 and response.results[0].id == 3
    assert Broken.calls >= 1 + 4 + 1  # initialized, per shard, search
    err = capfd.readouterr().err
    assert "metrics_sink_failed" in err and "collector is down" in err


def test_a_collector_without_emit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="emit"):
        write_arrays(data(), config(tmp_path / "store", object()))


def test_the_dask_driver_reports_its_published_shards(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    recorder = Recorder()
    cfg = config_for(str(tmp_path / "dask"), VectorShardingStrategy.EXPLICIT)
    cfg.metrics_collector = recorder
    result = make_writer(request, "dask")(make_table(), cfg, EXPLICIT_INPUT)
    events = recorder.take()
    assert [e for e, _ in events][0] == "vector.write.started"
    shards = {p["db_id"]: p["row_count"] for e, p in events if e == "vector.write.shard.completed"}
    assert shards == {w.db_id: w.row_count for w in result.winners}
    assert events[-1][0] == "vector.write.completed" and events[-1][1]["total_vectors"] == result.stats.rows_written
