"""Shards split into sub-lists: other readers (plain SQLite with sqlite-vec's ``vec0``) still get exact
per-shard answers, and the reader's ``sublist_probes`` takes effect in sync, async and batch search."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from shardvec.errors import ConfigValidationError
from shardvec.vector import AsyncShardedVectorReader, ShardedVectorReader, VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy
from test_score_parity import match

DIM = 20


def clustered(rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((25, DIM)).astype(np.float32) * 4
    return (centres[rng.integers(0, 25, rows)] + rng.standard_normal((rows, DIM))).astype(np.float32)


def build(tmp_path: Path, name: str, data: np.ndarray, metric: DistanceMetric, sublists: int) -> tuple[str, list[Path]]:
    prefix = str(tmp_path / name)
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.CLUSTER, train_centroids=True,
                                      sublists_per_shard=sublists),
        s3_prefix=prefix, index_config=VectorIndexConfig(dim=DIM, metric=metric))
    result = write_arrays(data, config, ids=np.arange(len(data)))
    return prefix, [Path(w.db_url.removeprefix("file://")) / "shard.db" for w in result.winners]


def exact(data: np.ndarray, rows: np.ndarray, query: np.ndarray, metric: DistanceMetric, k: int) -> list[int]:
    x = data[rows].astype(np.float64)
    q = query.astype(np.float64)
    if metric is DistanceMetric.L2:
        d = ((x - q) ** 2).sum(axis=1)
    else:
        d = 1 - x @ q / (np.linalg.norm(x, axis=1) * np.linalg.norm(q))
    return [int(rows[i]) for i in np.argsort(d, kind="stable")[:k]]


@pytest.mark.parametrize("metric", [DistanceMetric.L2, DistanceMetric.COSINE])
def test_plain_sqlite_vec_match_is_exact_on_a_shard_with_sublists(tmp_path: Path, metric: DistanceMetric) -> None:
    data = clustered(1200, 3)
    _, shards = build(tmp_path, "lists", data, metric, 0)
    queries = clustered(5, 4)
    for shard in shards:
        with sqlite3.connect(f"file:{shard}?mode=ro", uri=True) as plain:
            lists = plain.execute("SELECT list_id, rowid_lo, rowid_hi FROM shardvec_sublists ORDER BY list_id").fetchall()
            rows = np.array([json.loads(v)["v"] for (v,) in
                             plain.execute("SELECT original_id FROM vec_id_map ORDER BY internal_id")])
        assert len(lists) > 1 and lists[0][1] == 0 and lists[-1][2] == len(rows)
        assert all(a[2] == b[1] for a, b in zip(lists, lists[1:]))
        for query in queries:
            got = [hit_id for hit_id, _ in match(shard, query, 10)]
            assert got == exact(data, rows, query, metric, 10)


def test_sublist_probes_take_effect_in_sync_async_and_batch(tmp_path: Path) -> None:
    data = clustered(3000, 5)
    prefix, _ = build(tmp_path, "lists", data, DistanceMetric.L2, 0)
    queries = clustered(8, 6)
    all_rows = np.arange(len(data))
    with ShardedVectorReader(s3_prefix=prefix, local_root=str(tmp_path / "cache")) as reader:
        for q in queries:  # every list of every shard: the exact answer
            hits = reader.search(q, top_k=10, num_probes=2, sublist_probes=10**6).results
            assert [h.id for h in hits] == exact(data, all_rows, q, DistanceMetric.L2, 10)
        one = [[h.id for h in reader.search(q, top_k=10, sublist_probes=1).results] for q in queries]
        many = [[h.id for h in reader.search(q, top_k=10, sublist_probes=40).results] for q in queries]
        assert one != many  # the option changes what is scanned
        batch = [[h.id for h in r.results] for r in reader.batch_search(queries, top_k=10, sublist_probes=1)]
        assert batch == one

    async def scenario() -> list[list[int]]:
        async with AsyncShardedVectorReader(s3_prefix=prefix, local_root=str(tmp_path / "acache")) as areader:
            single = [[h.id for h in (await areader.search(q, top_k=10, sublist_probes=1)).results] for q in queries]
            batched = await areader.batch_search(queries, top_k=10, sublist_probes=1)
            assert [[h.id for h in r.results] for r in batched] == single
            return single

    assert asyncio.run(scenario()) == one


def test_sublist_settings_are_refused_naming_them(tmp_path: Path) -> None:
    data = clustered(600, 7)
    for bad in (-1, 65537, 2.5):
        with pytest.raises(ConfigValidationError, match="sublists_per_shard"):
            build(tmp_path, f"bad{bad}", data, DistanceMetric.L2, bad)  # type: ignore[arg-type]
    lists, _ = build(tmp_path, "lists", data, DistanceMetric.L2, 0)
    whole, _ = build(tmp_path, "whole", data, DistanceMetric.L2, 1)
    with ShardedVectorReader(s3_prefix=lists, local_root=str(tmp_path / "c1")) as reader:
        with pytest.raises(Exception, match="sublist_probes must be >= 1"):
            reader.search(data[0], top_k=5, sublist_probes=0)
    with ShardedVectorReader(s3_prefix=whole, local_root=str(tmp_path / "c2")) as reader:
        with pytest.raises(Exception, match=r"sublist_probes \(3\) applies to snapshots built with sub-lists"):
            reader.search(data[0], top_k=5, sublist_probes=3)
        with pytest.raises(Exception, match="sublist_probes"):
            reader.batch_search(data[:2], top_k=5, sublist_probes=3)


@pytest.mark.parametrize("engine", ["spark", "dask", "ray"])
def test_distributed_writes_record_their_sublists_and_readers_use_them(
        request: pytest.FixtureRequest, tmp_path: Path, engine: str) -> None:
    """Each task's sub-list count reaches the driver (ShardResult.sublists) and the manifest's
    custom.shardvec.sublists, so a reader ranks sub-lists (sublist_probes is accepted, not refused)."""
    from test_distributed import INPUT, NUM_DBS, config_for, make_table, make_writer

    write = make_writer(request, engine)
    table = make_table()
    prefix = str(tmp_path / "store")
    cfg = config_for(prefix, VectorShardingStrategy.LSH, sublists_per_shard=4)
    result = write(table, cfg, INPUT, None)
    assert all(w.sublists == 4 for w in result.winners), [w.sublists for w in result.winners]
    with sqlite3.connect(result.manifest_ref.removeprefix("file://")) as manifest:
        custom = json.loads(manifest.execute("SELECT custom FROM build_meta").fetchone()[0])
    assert custom["shardvec"]["sublists"] == {"lists": 4 * len(result.winners), "shards": len(result.winners)}
    vectors = np.asarray(table.column(INPUT.vector_col).combine_chunks().flatten()).reshape(table.num_rows, -1)
    with ShardedVectorReader(s3_prefix=prefix, local_root=str(tmp_path / "cache")) as reader:
        hits = reader.search(vectors[0], top_k=5, num_probes=NUM_DBS, sublist_probes=4 * NUM_DBS).results
        assert hits[0].id == table.column(INPUT.id_col)[0].as_py()
