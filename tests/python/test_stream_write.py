"""write_sharded streams its records into the engine: read once, one batch alive, errors kept intact."""

from __future__ import annotations

import sqlite3
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from shardvec.errors import ConfigValidationError
from shardvec.vector import BuildResult, VectorRecord, VectorShardedWriteConfig, write_arrays, write_sharded
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy


def make_config(prefix: Path, dim: int, strategy: VectorShardingStrategy, **sharding: object) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        sharding=VectorShardingConfig(strategy=strategy, **sharding),
        s3_prefix=str(prefix),
        index_config=VectorIndexConfig(dim=dim, metric=DistanceMetric.L2),
        batch_size=1000,
    )


def ids_per_shard(result: BuildResult) -> dict[int, list[str]]:
    """Original ids of every shard, read from the shard files with plain SQLite (no vec0 needed)."""
    out = {}
    for shard in result.winners:
        path = shard.db_url.removeprefix("file://") + "/shard.db"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            out[shard.db_id] = [row[0] for row in db.execute("SELECT original_id FROM vec_id_map ORDER BY original_id")]
    return out


class OnceOnly:
    """An iterable that refuses a second pass, as a generator or a database cursor would."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.passes = 0

    def __iter__(self) -> Iterator[VectorRecord]:
        self.passes += 1
        assert self.passes == 1, "the records were iterated twice"
        return (VectorRecord(id=i, vector=row) for i, row in enumerate(self.data))


def test_trained_cluster_stream_matches_the_bulk_path_and_reads_once(tmp_path: Path) -> None:
    data = np.random.default_rng(3).standard_normal((5000, 16)).astype(np.float32)
    data[:2500] += 6
    records = OnceOnly(data)
    streamed = write_sharded(records, make_config(tmp_path / "a", 16, VectorShardingStrategy.CLUSTER,
                                                  num_dbs=4, train_centroids=True,
                                                  centroids_training_sample_size=1000))
    bulk = write_arrays(data, make_config(tmp_path / "b", 16, VectorShardingStrategy.CLUSTER, num_dbs=4,
                                          train_centroids=True, centroids_training_sample_size=1000))
    assert records.passes == 1
    assert streamed.stats.rows_written == 5000
    assert ids_per_shard(streamed) == ids_per_shard(bulk)
    assert not list((tmp_path / "a").rglob("*.spool"))


def test_stream_holds_one_batch_not_the_input(tmp_path: Path) -> None:
    rows, dim = 60_000, 64  # 15 MB of vectors, made one record at a time
    rng = np.random.default_rng(4)
    records = (VectorRecord(id=i, vector=rng.standard_normal(dim, dtype=np.float32), payload={"i": i})
               for i in range(rows))
    tracemalloc.start()
    result = write_sharded(records, make_config(tmp_path / "s", dim, VectorShardingStrategy.LSH, num_dbs=4))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.stats.rows_written == rows
    # One batch of 1000 records with their payloads is well under 2 MB; the whole input is 15 MB+.
    assert peak < 4 * 1024 * 1024, peak


def test_an_exception_from_the_records_propagates_unchanged_and_publishes_nothing(tmp_path: Path) -> None:
    class SourceBroke(Exception):
        pass

    def records() -> Iterator[VectorRecord]:
        for i in range(2500):
            yield VectorRecord(id=i, vector=np.ones(8, dtype=np.float32) * i)
        raise SourceBroke("upstream table vanished")

    with pytest.raises(SourceBroke, match="upstream table vanished"):
        write_sharded(records(), make_config(tmp_path / "s", 8, VectorShardingStrategy.LSH, num_dbs=2))
    assert not (tmp_path / "s" / "_CURRENT").exists()


def test_stream_record_errors_name_the_record(tmp_path: Path) -> None:
    config = make_config(tmp_path / "s", 4, VectorShardingStrategy.EXPLICIT, num_dbs=2)
    good = [VectorRecord(id=f"doc-{i}", vector=[1.0, 2.0, 3.0, 4.0], shard_id=i % 2) for i in range(1500)]
    with pytest.raises(ConfigValidationError, match=r"record id='doc-x' \(row 1500\): vector has 3 values, expected dim=4"):
        write_sharded([*good, VectorRecord(id="doc-x", vector=[1.0, 2.0, 3.0], shard_id=0)], config)
    with pytest.raises(ConfigValidationError, match="EXPLICIT sharding requires shard_id.*doc-y"):
        write_sharded([*good, VectorRecord(id="doc-y", vector=[1.0, 2.0, 3.0, 4.0])], config)
    assert not (tmp_path / "s" / "_CURRENT").exists()
    result = write_sharded(good, config)
    assert {k: len(v) for k, v in ids_per_shard(result).items()} == {0: 750, 1: 750}
