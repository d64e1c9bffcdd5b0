"""What a write reports (the reference's ``BuildStats`` / ``BuildDurations`` fields, measured) and how a
record written with ``payload=None`` is stored and read back."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import numpy as np

from shardvec.vector import (
    BuildDurations,
    BuildStats,
    ShardedVectorReader,
    VectorRecord,
    VectorShardedWriteConfig,
    write_arrays,
    write_sharded,
)
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy


def explicit_config(prefix: str, num_dbs: int, dim: int = 4) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=num_dbs, strategy=VectorShardingStrategy.EXPLICIT),
        s3_prefix=prefix, index_config=VectorIndexConfig(dim=dim, metric=DistanceMetric.L2))


def test_stats_have_the_reference_fields_filled_with_measured_values(tmp_path: Path) -> None:
    assert [f.name for f in dataclasses.fields(BuildStats)] == [
        "durations", "num_attempt_results", "num_winners", "rows_written"]
    assert [f.name for f in dataclasses.fields(BuildDurations)] == ["sharding_ms", "write_ms", "manifest_ms", "total_ms"]
    rows = 30_000
    data = np.random.default_rng(1).standard_normal((rows, 64)).astype(np.float32)
    # Four shards, one of which gets no rows (so it is not built: three attempts).
    result = write_arrays(data, explicit_config(str(tmp_path / "s"), 4, dim=64), shard_ids=np.arange(rows) % 3)
    stats = result.stats
    assert (stats.num_attempt_results, stats.num_winners, stats.rows_written) == (3, 3, rows)
    d = stats.durations
    assert all(isinstance(v, int) for v in dataclasses.astuple(d))
    assert d.write_ms > 0 and d.total_ms > 0  # 30k rows of 64 floats take well over a millisecond to build
    assert d.sharding_ms + d.write_ms + d.manifest_ms <= d.total_ms
    assert stats.total_ms == d.total_ms


def test_payload_none_is_stored_as_no_row_and_read_back_as_none(tmp_path: Path) -> None:
    """``None`` (no payload) stays distinct from ``{}`` (an empty one), also within one write batch."""
    prefix = str(tmp_path / "s")
    payloads = [None, {}, {"a": 1}, None]
    records = [VectorRecord(id=i, vector=np.full(4, float(i), np.float32), payload=p, shard_id=0)
               for i, p in enumerate(payloads)]
    result = write_sharded(records, explicit_config(prefix, 1))
    shard = Path(result.winners[0].db_url.removeprefix("file://")) / "shard.db"
    with sqlite3.connect(f"file:{shard}?mode=ro", uri=True) as db:
        ids = {rowid: json.loads(v)["v"] for rowid, v in db.execute("SELECT internal_id, original_id FROM vec_id_map")}
        stored = {ids[rowid]: text for rowid, text in db.execute("SELECT rowid, payload FROM vec_payloads")}
    assert stored == {1: "{}", 2: '{"a": 1}'}  # no row for the two None payloads
    with ShardedVectorReader(s3_prefix=prefix, local_root=str(tmp_path / "cache")) as reader:
        hits = reader.search(np.zeros(4, np.float32), top_k=4, shard_ids=[0]).results
        assert {h.id: h.payload for h in hits} == dict(enumerate(payloads))
