"""The README's bad-inputs table from Python: each bad input raises the reference's exception class
with the engine's message, and a failed write publishes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shardvec.errors import ConfigValidationError, ManifestParseError, ReaderStateError, VectorSearchError
from shardvec.vector import ShardedVectorReader, VectorRecord, VectorShardedWriteConfig, write_sharded
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

DIM = 4


def config(prefix: Path, metric: DistanceMetric = DistanceMetric.COSINE, **sharding: Any) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.EXPLICIT, **sharding),
        s3_prefix=str(prefix),
        index_config=VectorIndexConfig(dim=DIM, metric=metric),
    )


def records(rows: int = 20) -> list[VectorRecord]:
    rng = np.random.default_rng(7)
    return [VectorRecord(id=i, vector=rng.standard_normal(DIM).astype(np.float32), payload={"n": i}, shard_id=i % 2)
            for i in range(rows)]


def published(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    write_sharded(records(), config(store))
    return store


def open_strict(store: Path, tmp_path: Path) -> ShardedVectorReader:
    return ShardedVectorReader(s3_prefix=str(store), local_root=str(tmp_path / "cache"), max_fallback_attempts=0)


def run_sql(path: Path, sql: str) -> None:
    # In a child process: importing sqlite3 here would initialise SQLite before the engine does.
    subprocess.run([sys.executable, "-c", "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
                    "db.executescript(sys.argv[2]); db.commit()", str(path), sql], check=True)


def manifest_file(store: Path) -> Path:
    ref = json.loads((store / "_CURRENT").read_text())["manifest_ref"]
    return Path(ref.removeprefix("file://"))


@pytest.mark.parametrize("spoil, message", [
    (lambda r: r.__setattr__("vector", np.ones(DIM + 1, np.float32)), r"row 5.*vector has 5 values, expected dim=4"),
    (lambda r: r.vector.__setitem__(2, np.nan), r"row 5.*vector\[2\] is nan"),
    (lambda r: r.vector.__setitem__(0, np.inf), r"row 5.*vector\[0\] is inf"),
    (lambda r: r.vector.__setitem__(slice(None), 0.0), r"row 5.*all zeros"),
    (lambda r: r.__setattr__("payload", {"x": "x" * (16 << 20)}), r"row 5.*above the limit of 16777216 bytes"),
    (lambda r: r.__setattr__("shard_id", 2), r"shard_id 2 out of range"),
])
def test_bad_records_raise_config_validation_error_and_publish_nothing(tmp_path: Path, spoil: Any,
                                                                        message: str) -> None:
    store = published(tmp_path)
    before = (store / "_CURRENT").read_bytes()
    shard_runs = sorted((store / "shards").iterdir())
    bad = records()
    spoil(bad[5])
    with pytest.raises(ConfigValidationError, match=message):
        write_sharded(bad, config(store))
    assert (store / "_CURRENT").read_bytes() == before
    assert sorted((store / "shards").iterdir()) == shard_runs


@pytest.mark.parametrize("query, top_k, message", [
    ([1.0, 2.0, 3.0], 5, "query has 3 values, but the snapshot's dim is 4"),
    ([1.0, np.nan, 3.0, 4.0], 5, r"query\[1\] is nan"),
    ([1.0, 2.0, np.inf, 4.0], 5, r"query\[2\] is inf"),
    ([0.0, 0.0, 0.0, 0.0], 5, "all zeros"),
    ([1.0, 2.0, 3.0, 4.0], 0, r"top_k must be in 1..4096 \(got 0\)"),
    ([1.0, 2.0, 3.0, 4.0], 5000, r"top_k must be in 1..4096 \(got 5000\)"),
])
def test_bad_queries_raise_config_validation_error(tmp_path: Path, query: list[float], top_k: int,
                                                   message: str) -> None:
    with open_strict(published(tmp_path), tmp_path) as reader:
        with pytest.raises(ConfigValidationError, match=message):
            reader.search(np.asarray(query, np.float32), top_k=top_k, shard_ids=[0, 1])
        assert len(reader.search(np.ones(DIM, np.float32), top_k=3, shard_ids=[0, 1]).results) == 3  # still serving


def test_mixed_id_types_in_one_batch_keep_their_types(tmp_path: Path) -> None:
    """Whether int and str ids may mix must not depend on batch_size (one batch here holds both)."""
    rows = [VectorRecord(id=7, vector=[1, 0, 0, 0], payload={}, shard_id=0),
            VectorRecord(id="7", vector=[1, 0.01, 0, 0], shard_id=0),
            VectorRecord(id=7, vector=[1, 0.02, 0, 0], shard_id=1),
            VectorRecord(id="x", vector=[1, 0.03, 0, 0], shard_id=1)]
    store = tmp_path / "store"
    write_sharded(rows, config(store))
    with open_strict(store, tmp_path) as reader:
        hits = reader.search(np.asarray([1, 0, 0, 0], np.float32), top_k=4, shard_ids=[0, 1]).results
    assert [(h.id, type(h.id)) for h in hits] == [(7, int), ("7", str), (7, int), ("x", str)]
    assert [h.payload for h in hits] == [{}, None, None, None]
    for bad_id in (True, 1.5):
        with pytest.raises(ConfigValidationError, match="ids must be all int or all str"):
            write_sharded([VectorRecord(id=bad_id, vector=[1, 0, 0, 0], shard_id=0)], config(tmp_path / "other"))


@pytest.mark.parametrize("url", ["file:///elsewhere/shards/run_id=r/db=00000/attempt=00", "{store}/shards/../../x",
                                 "s3://other-bucket/p/shards/run_id=r/db=00000/attempt=00"])
def test_manifest_db_url_outside_the_store_raises_manifest_parse_error(tmp_path: Path, url: str) -> None:
    store = published(tmp_path)
    url = url.format(store=f"file://{store}")
    run_sql(manifest_file(store), f"UPDATE shards SET db_url = '{url}' WHERE db_id = 1")
    with pytest.raises(ManifestParseError, match=r"shard db_id 1 has db_url '" + url.replace(".", r"\.") + "'"):
        open_strict(store, tmp_path)
    assert not (tmp_path / "cache").exists()


def test_truncated_manifest_and_pointer_raise_manifest_parse_error(tmp_path: Path) -> None:
    store = published(tmp_path)
    manifest = manifest_file(store)
    manifest.write_bytes(manifest.read_bytes()[:-1])
    with pytest.raises(ManifestParseError, match="truncated"):
        open_strict(store, tmp_path)
    pointer = (store / "_CURRENT").read_bytes()
    (store / "_CURRENT").write_bytes(pointer[: len(pointer) // 2])
    with pytest.raises(ManifestParseError, match="CURRENT pointer validation failed"):
        open_strict(store, tmp_path)


def test_corrupt_shard_raises_vector_search_error(tmp_path: Path) -> None:
    store = published(tmp_path)
    shard = next((store / "shards").rglob("shard.db"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with open_strict(store, tmp_path) as reader:
        with pytest.raises(VectorSearchError, match="shard") as raised:
            reader.search(np.ones(DIM, np.float32), top_k=3, shard_ids=[0, 1])
    assert (raised.value.engine_code, raised.value.engine_kind) == ("Corruption", "ShardVerification")


def test_non_numeric_vectors_queries_and_out_of_range_ids_raise_config_validation_error(tmp_path: Path) -> None:
    """No raw NumPy error reaches the caller."""
    store = published(tmp_path)
    with pytest.raises(ConfigValidationError, match=r"record id=3 \(row 0\): vector must be numbers"):
        write_sharded([VectorRecord(id=3, vector=["a", "b", "c", "d"], shard_id=0)], config(store))
    with pytest.raises(ConfigValidationError, match="ids must be integers in the int64 range"):
        write_sharded([VectorRecord(id=2**70, vector=[1, 0, 0, 0], shard_id=0)], config(store))
    with open_strict(store, tmp_path) as reader:
        with pytest.raises(ConfigValidationError, match="query must be numbers convertible to float32"):
            reader.search(["x", "y", "z", "w"], top_k=3, shard_ids=[0])
        with pytest.raises(ConfigValidationError, match="queries must be numbers convertible to float32"):
            reader.batch_search([[1, 2, 3, "w"]], top_k=3, shard_ids=[0])


def test_corrupt_centroids_raise_reader_state_error(tmp_path: Path) -> None:
    store = tmp_path / "store"
    rng = np.random.default_rng(3)
    rows = [VectorRecord(id=i, vector=rng.standard_normal(DIM)) for i in range(40)]
    write_sharded(rows, VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.CLUSTER, train_centroids=True),
        s3_prefix=str(store), index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2)))
    centroids = next((store / "vector_meta").rglob("centroids.npy"))
    centroids.write_bytes(centroids.read_bytes()[:-3])
    # The manifest's artifact digest catches the truncated file before the .npy parser does.
    with pytest.raises(ReaderStateError, match=r"Failed to load centroids_ref artifact .*has digest xxh3:"):
        open_strict(store, tmp_path)
