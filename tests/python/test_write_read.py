"""The seed program, run unchanged apart from the import prefix, and what its snapshot answers."""

from __future__ import annotations

import json
import subprocess
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import CLI
from shardvec import VectorSpec
from shardvec.errors import ConfigValidationError
from shardvec.sqlite_vec_adapter import SqliteVecFactory
from shardvec.vector import ShardedVectorReader, VectorRecord, VectorShardedWriteConfig, write_arrays, write_sharded
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

DIM = 384


def clustered(rows: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((16, dim)).astype(np.float32) * 4
    return (centers[rng.integers(0, 16, rows)] + rng.standard_normal((rows, dim))).astype(np.float32)


def cosine_top_k(data: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    normed = data / np.linalg.norm(data, axis=1, keepdims=True)
    distance = 1.0 - normed @ (query / np.linalg.norm(query))
    return [int(i) for i in np.argsort(distance, kind="stable")[:k]]


def seed_config(prefix: str, **storage: Any) -> VectorShardedWriteConfig:
    # The seed program's configuration, verbatim except the prefix (and S3 settings for the server).
    vector_spec = VectorSpec(dim=384, metric="cosine")
    return VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=16, strategy=VectorShardingStrategy.CLUSTER, train_centroids=True),
        s3_prefix=prefix,
        index_config=VectorIndexConfig(dim=384, metric=DistanceMetric.COSINE),
        adapter_factory=SqliteVecFactory(vector_spec=vector_spec),
        **storage,
    )


def check_recall(reader: ShardedVectorReader, data: np.ndarray, queries: np.ndarray) -> None:
    for query in queries:
        response = reader.search(query, top_k=10, num_probes=16)
        assert [hit.id for hit in response.results] == cosine_top_k(data, query, 10)
        assert response.num_shards_queried >= 1
        assert all(hit.payload == {"n": hit.id} for hit in response.results)


@pytest.mark.parametrize("where", ["local", "s3"])
def test_seed_program_builds_a_snapshot_searched_with_full_recall(tmp_path: Path, where: str,
                                                                  request: pytest.FixtureRequest) -> None:
    data = clustered(3000, DIM, 1)
    records = (VectorRecord(id=i, vector=data[i], payload={"n": i}) for i in range(len(data)))
    if where == "local":
        config = seed_config(str(tmp_path / "store"))
        reader_args: dict[str, Any] = {}
    else:
        server = request.getfixturevalue("s3_server")
        creds = server["credentials"]
        config = seed_config(server["prefix"], s3_connection_options=server["s3_connection_options"],
                             credential_provider=lambda: creds)
        reader_args = {"s3_connection_options": server["s3_connection_options"], "credential_provider": lambda: creds}
    result = write_sharded(records, config)
    assert result.stats.rows_written == 3000
    assert sum(w.row_count for w in result.winners) == 3000

    with ShardedVectorReader(s3_prefix=config.s3_prefix, local_root=str(tmp_path / "cache"), **reader_args) as reader:
        info = reader.snapshot_info()
        assert (info.run_id, info.num_dbs, info.dim, info.total_vectors) == (result.run_id, 16, DIM, 3000)
        check_recall(reader, data, clustered(20, DIM, 2))
        batch = reader.batch_search(clustered(5, DIM, 3), top_k=10, num_probes=16)
        assert [len(r.results) for r in batch] == [10] * 5
        assert reader.health().status == "healthy"
    with pytest.raises(Exception, match="closed"):
        reader.search(data[0])


def test_python_and_cli_read_each_others_snapshots(tmp_path: Path) -> None:
    data = clustered(1500, 32, 4)
    queries = clustered(4, 32, 5)
    np.save(tmp_path / "v.npy", data)
    np.save(tmp_path / "q.npy", queries)
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=4, strategy=VectorShardingStrategy.LSH),
        s3_prefix=str(tmp_path / "py"), index_config=VectorIndexConfig(dim=32, metric=DistanceMetric.L2))
    write_arrays(data, config)
    subprocess.run([str(CLI), "build", "--quiet", "--store", str(tmp_path / "cli"), "--input", str(tmp_path / "v.npy"),
                    "--metric", "l2", "--strategy", "lsh", "--num-dbs", "4"], check=True)

    def cli_hits(store: str) -> list[list[tuple[Any, float]]]:
        out = subprocess.run([str(CLI), "search", "--store", store, "--query-file", str(tmp_path / "q.npy"),
                              "--shard-ids", "0,1,2,3", "--top-k", "5", "--json", "--cache-dir",
                              str(tmp_path / ("c-" + Path(store).name))], check=True, capture_output=True, text=True)
        return [[(h["id"], h["score"]) for h in json.loads(line)["results"]] for line in out.stdout.splitlines()]

    def py_hits(store: str) -> list[list[tuple[Any, float]]]:
        with ShardedVectorReader(s3_prefix=store, local_root=str(tmp_path / ("p-" + Path(store).name))) as reader:
            return [[(h.id, h.score) for h in r.results]
                    for r in reader.batch_search(queries, top_k=5, shard_ids=[0, 1, 2, 3])]

    for store in (str(tmp_path / "py"), str(tmp_path / "cli")):
        cli, py = cli_hits(store), py_hits(store)
        assert [[i for i, _ in q] for q in cli] == [[i for i, _ in q] for q in py]
        assert np.allclose([[s for _, s in q] for q in cli], [[s for _, s in q] for q in py], rtol=1e-5)


def test_bulk_path_reads_the_array_in_place(tmp_path: Path) -> None:
    data = np.random.default_rng(6).standard_normal((20000, 64)).astype(np.float32)
    data.flags.writeable = False  # a copy would be writeable; the engine only reads
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.LSH),
        s3_prefix=str(tmp_path / "s"), index_config=VectorIndexConfig(dim=64, metric=DistanceMetric.L2))
    ids = np.arange(20000, dtype=np.int64) * 7
    tracemalloc.start()
    result = write_arrays(data, config, ids=ids)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.stats.rows_written == 20000
    # Python-side allocations stay far below the 5 MB input: neither vectors nor ids were copied.
    assert peak < data.nbytes // 10, peak
    with ShardedVectorReader(s3_prefix=str(tmp_path / "s"), local_root=str(tmp_path / "c")) as reader:
        assert reader.search(data[123], top_k=1, shard_ids=[0, 1]).results[0].id == 123 * 7


def test_engine_errors_arrive_as_the_reference_classes(tmp_path: Path) -> None:
    with pytest.raises(ConfigValidationError, match="dot_product"):
        VectorShardedWriteConfig(
            sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.LSH), s3_prefix=str(tmp_path),
            index_config=VectorIndexConfig(dim=4, metric=DistanceMetric.DOT_PRODUCT))
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.LSH), s3_prefix=str(tmp_path / "s"),
        index_config=VectorIndexConfig(dim=4, metric=DistanceMetric.L2))
    bad = np.ones((3, 4), dtype=np.float32)
    bad[1, 2] = np.nan
    with pytest.raises(ConfigValidationError, match=r"row 1.*nan"):
        write_arrays(bad, config)
    assert not (tmp_path / "s" / "_CURRENT").exists()


def test_a_shard_ids_array_of_the_wrong_length_is_refused_naming_it(tmp_path: Path) -> None:
    # Read past its end, it used to give rows the values after the array (a shard_id out of range).
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.EXPLICIT),
        s3_prefix=str(tmp_path / "s"), index_config=VectorIndexConfig(dim=4, metric=DistanceMetric.L2))
    vectors = np.random.default_rng(2).standard_normal((5, 4)).astype(np.float32)
    with pytest.raises(ConfigValidationError, match=r"record batch: shard_ids has 3 entries for 5 rows"):
        write_arrays(vectors, config, shard_ids=np.array([0, 1, 0], dtype=np.int64))
    assert not (tmp_path / "s").exists()


def test_importing_shardvec_leaves_sqlite_for_the_engine_to_configure() -> None:
    """Python's sqlite3 would initialise SQLite first and keep its global memory-statistics mutex on,
    which serialises parallel shard builds; the engine warns when that happened."""
    import os
    import sys

    code = ("import sys, shardvec.vector; from shardvec._native import _engine; "
            "assert 'sqlite3' not in sys.modules, 'sqlite3 imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
    late = ("import sqlite3; sqlite3.connect(':memory:').close(); import numpy as np, tempfile\n"
            "from shardvec.vector import VectorShardedWriteConfig, write_arrays\n"
            "from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig\n"
            "from shardvec.vector.types import VectorShardingStrategy\n"
            "write_arrays(np.random.default_rng(1).standard_normal((400, 4), dtype=np.float32),\n"
            "  VectorShardedWriteConfig(s3_prefix=tempfile.mkdtemp(), index_config=VectorIndexConfig(dim=4),\n"
            "  sharding=VectorShardingConfig(num_dbs=4, strategy=VectorShardingStrategy.LSH)))")
    warned = subprocess.run([sys.executable, "-c", late], check=True, capture_output=True, text=True)
    if (os.cpu_count() or 1) > 1:  # one core builds one shard at a time: nothing to warn about
        assert "SQLite was initialised before shardvec" in warned.stderr


@pytest.mark.parametrize("empty", [[], np.zeros((0,), np.float32), np.zeros((0, 8), np.float32)],
                         ids=["list", "1-d", "2-d"])
def test_empty_write_arrays_publishes_an_empty_snapshot_as_the_cli_does(tmp_path: Path, empty: Any) -> None:
    # The CLI publishes an empty snapshot for an input of shape (0, dim); write_arrays does the same
    # for no rows in any shape, taking dim from the config, instead of refusing a 1-D empty list.
    np.save(tmp_path / "empty.npy", np.zeros((0, 8), np.float32))
    subprocess.run([str(CLI), "build", "--quiet", "--store", str(tmp_path / "cli"), "--input",
                    str(tmp_path / "empty.npy"), "--metric", "l2", "--strategy", "lsh", "--num-dbs", "2"], check=True)
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.LSH),
        s3_prefix=str(tmp_path / "py"), index_config=VectorIndexConfig(dim=8, metric=DistanceMetric.L2))
    assert write_arrays(empty, config).manifest_ref

    def summary(store: str) -> tuple[Any, ...]:
        with ShardedVectorReader(s3_prefix=store, local_root=str(tmp_path / ("r-" + Path(store).name))) as reader:
            info = reader.snapshot_info()
            return (info.num_dbs, info.dim, info.total_vectors, reader.search(np.ones(8, np.float32), top_k=3).results)

    assert summary(str(tmp_path / "py")) == summary(str(tmp_path / "cli")) == (2, 8, 0, [])
