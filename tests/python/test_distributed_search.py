"""Distributed batch search (shardvec.reader.spark / .dask / .ray) on real local clusters: Spark
local[2], a Dask LocalCluster with 2 worker processes, a local Ray with 2 CPUs. Every answer must
equal ShardedVectorReader.batch_search on one machine: the same ids, scores and payloads, rank by rank."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from shardvec.errors import ConfigValidationError, ShardvecError
from shardvec.vector import ShardedVectorReader, VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

DIM = 16
ROWS = 2400
NUM_DBS = 4
QUERIES = 150
REGIONS = ["eu", "us", "apac", "latam", "mena"]

Search = Callable[..., pd.DataFrame]


def corpus(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((8, DIM)).astype(np.float32) * 5
    vectors = (centers[rng.integers(0, 8, ROWS)] + rng.standard_normal((ROWS, DIM))).astype(np.float32)
    queries = (centers[rng.integers(0, 8, QUERIES)] + rng.standard_normal((QUERIES, DIM))).astype(np.float32)
    return vectors, queries


def write(store: Path, seed: int, string_ids: bool = False, strategy: str = "cluster",
          metric: DistanceMetric = DistanceMetric.L2) -> None:
    vectors, _ = corpus(seed)
    ids: Any = np.arange(ROWS, dtype=np.int64) * 7 + seed
    if string_ids:
        ids = [f"doc-{i}" for i in ids]
    sharding: dict[str, Any] = {"strategy": VectorShardingStrategy(strategy), "num_dbs": NUM_DBS}
    if strategy == "cluster":
        sharding["train_centroids"] = True
    config = VectorShardedWriteConfig(
        index_config=VectorIndexConfig(dim=DIM, metric=metric),
        sharding=VectorShardingConfig(**sharding), s3_prefix=str(store), filter_columns={"region": "string"})
    payloads = [{"region": REGIONS[i % len(REGIONS)], "n": i} for i in range(ROWS)]
    write_arrays(vectors, config, ids=ids, payloads=payloads,
                 shard_ids=np.arange(ROWS) % NUM_DBS if strategy == "explicit" else None)


def query_frame(queries: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"qid": np.arange(QUERIES, dtype=np.int64) * 10 + 1, "emb": list(queries)})


def expected(store: Path, queries: np.ndarray, tmp_path: Path, **options: Any) -> dict[int, list[tuple[Any, float, Any]]]:
    with ShardedVectorReader(s3_prefix=str(store), local_root=str(tmp_path / "one-machine")) as reader:
        responses = reader.batch_search(queries, **options)
    return {int(q) * 10 + 1: [(r.id, r.score, r.payload) for r in response.results]
            for q, response in enumerate(responses)}


def answers(frame: pd.DataFrame) -> dict[int, list[tuple[Any, float, Any]]]:
    assert list(frame.columns) == ["query_id", "rank", "id", "score", "payload"]
    out: dict[int, list[tuple[Any, float, Any]]] = {}
    for query_id, rows in frame.sort_values(["query_id", "rank"]).groupby("query_id", sort=True):
        assert list(rows["rank"]) == list(range(len(rows))), query_id
        out[int(query_id)] = [(i, float(s), None if p is None else json.loads(p))
                              for i, s, p in zip(rows["id"], rows["score"], rows["payload"])]
    return out


def make_search(request: pytest.FixtureRequest, engine: str) -> Search:
    """search(frame, store, ...) through `engine`, collected into pandas (3 input partitions)."""
    if engine == "spark":
        session = request.getfixturevalue("spark")
        from shardvec.reader.spark import search_sharded as spark_search

        def run_spark(frame: pd.DataFrame, store: str, *args: Any, **kw: Any) -> pd.DataFrame:
            df = session.createDataFrame(frame.assign(emb=[v.tolist() for v in frame["emb"]])).repartition(3)
            return spark_search(df, store, *args, **kw).toPandas()
        return run_spark
    if engine == "dask":
        request.getfixturevalue("dask_client")
        import dask.dataframe as dd

        from shardvec.reader.dask import search_sharded as dask_search

        def run_dask(frame: pd.DataFrame, store: str, *args: Any, **kw: Any) -> pd.DataFrame:
            packed = frame.assign(emb=pd.Series(pd.arrays.ArrowExtensionArray(
                pa.FixedSizeListArray.from_arrays(pa.array(np.stack(frame["emb"]).reshape(-1)), DIM))))
            return dask_search(dd.from_pandas(packed, npartitions=3), store, *args, **kw).compute()
        return run_dask
    request.getfixturevalue("ray_session")
    import ray.data

    from shardvec.reader.ray import search_sharded as ray_search

    def run_ray(frame: pd.DataFrame, store: str, *args: Any, **kw: Any) -> pd.DataFrame:
        table = pa.table({"qid": frame["qid"].to_numpy(),
                          "emb": pa.FixedSizeListArray.from_arrays(pa.array(np.stack(frame["emb"]).reshape(-1)), DIM)})
        return ray_search(ray.data.from_arrow(table).repartition(3), store, *args, **kw).to_pandas()
    return run_ray


@pytest.fixture(params=["spark", "dask", "ray"])
def search(request: pytest.FixtureRequest) -> Search:
    return make_search(request, request.param)


@pytest.mark.parametrize("options", [
    {"top_k": 10},
    {"top_k": 7, "num_probes": 1, "filter": "region == 'eu' || region == 'us'"},
    {"top_k": 5, "num_probes": NUM_DBS},
    {"top_k": 3, "shard_ids": [1, 2], "filter": "region == 'mena'"},
], ids=["default", "filtered", "every-shard", "shard-ids"])
def test_results_equal_batch_search_on_one_machine(search: Search, options: dict[str, Any], tmp_path: Path) -> None:
    store = tmp_path / "store"
    write(store, seed=1)
    _, queries = corpus(1)
    want = expected(store, queries, tmp_path, **options)
    got = answers(search(query_frame(queries), str(store), "emb", "qid", local_root=str(tmp_path / "workers"),
                         **options))
    assert got.keys() == {q for q, hits in want.items() if hits}
    for query_id, hits in got.items():
        assert hits == want[query_id], query_id  # ids, scores (bit for bit) and payloads, rank by rank


def test_the_snapshot_is_pinned_when_the_search_is_planned(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """A snapshot published after search_sharded returned (its DataFrame not yet computed) is not seen:
    every task reads the pinned one. String ids come back as strings."""
    from shardvec.reader.dask import search_sharded as dask_search

    request.getfixturevalue("dask_client")
    import dask.dataframe as dd

    store = tmp_path / "store"
    write(store, seed=2, string_ids=True)
    _, queries = corpus(2)
    want = expected(store, queries, tmp_path, top_k=4)
    frame = query_frame(queries)
    packed = frame.assign(emb=pd.Series(pd.arrays.ArrowExtensionArray(
        pa.FixedSizeListArray.from_arrays(pa.array(np.stack(frame["emb"]).reshape(-1)), DIM))))
    lazy = dask_search(dd.from_pandas(packed, npartitions=3), str(store), "emb", "qid", top_k=4,
                       local_root=str(tmp_path / "workers"))
    write(store, seed=3, string_ids=True)  # a newer snapshot: other vectors and ids
    got = answers(lazy.compute())
    assert got == want
    assert all(isinstance(hit[0], str) for hits in got.values() for hit in hits)


def test_a_cosine_snapshot(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    search = make_search(request, "dask")
    store = tmp_path / "store"
    write(store, seed=9, metric=DistanceMetric.COSINE)
    _, queries = corpus(9)
    want = expected(store, queries, tmp_path, top_k=6, num_probes=2)
    assert answers(search(query_frame(queries), str(store), "emb", "qid", top_k=6, num_probes=2,
                          local_root=str(tmp_path / "workers"))) == want


def test_manifest_ref_searches_that_manifest(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from shardvec.manifest_store import S3ManifestStore
    from shardvec.reader.dask import search_sharded as dask_search

    request.getfixturevalue("dask_client")
    import dask.dataframe as dd

    store = tmp_path / "store"
    write(store, seed=4)
    first = S3ManifestStore(str(store)).load_current()
    assert first is not None
    _, queries = corpus(4)
    want = expected(store, queries, tmp_path, top_k=3)
    write(store, seed=5)
    frame = query_frame(queries).assign(emb=lambda f: [v.astype(np.float64) for v in f["emb"]])
    with pytest.raises(ShardvecError, match="nope"):
        dask_search(dd.from_pandas(frame, npartitions=2), str(store), "emb", "qid", manifest_ref="nope")
    got = answers(dask_search(dd.from_pandas(frame, npartitions=2), str(store), "emb", "qid", top_k=3,
                              manifest_ref=first.ref, local_root=str(tmp_path / "workers")).compute())
    assert got == want


def test_an_explicit_snapshot_is_searched_with_shard_ids_only(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    search = make_search(request, "ray")
    store = tmp_path / "store"
    write(store, seed=6, strategy="explicit")
    _, queries = corpus(6)
    with pytest.raises(ShardvecError, match="shard_ids"):
        search(query_frame(queries), str(store), "emb", "qid")
    want = expected(store, queries, tmp_path, top_k=5, shard_ids=[0, 3])
    got = answers(search(query_frame(queries), str(store), "emb", "qid", top_k=5, shard_ids=[0, 3],
                         local_root=str(tmp_path / "workers")))
    assert got == want


@pytest.mark.parametrize("engine", ["spark", "dask", "ray"])
def test_bad_arguments_are_refused_on_the_driver_naming_them(request: pytest.FixtureRequest, engine: str,
                                                             tmp_path: Path) -> None:
    search = make_search(request, engine)
    store = tmp_path / "store"
    write(store, seed=7)
    frame = query_frame(corpus(7)[1])
    cases: list[tuple[tuple[Any, ...], dict[str, Any], type[Exception], str]] = [
        ((str(store), "vec", "qid"), {}, ConfigValidationError, "query_col 'vec'"),
        ((str(store), "emb", "query"), {}, ConfigValidationError, "id_col 'query'"),
        ((str(store), "emb", "qid"), {"top_k": 0}, ConfigValidationError, "top_k"),
        ((str(store), "emb", "qid"), {"max_workers": 0}, ConfigValidationError, "max_workers"),
        ((str(store), "emb", "qid"), {"num_probes": NUM_DBS + 1}, ShardvecError, "num_probes"),
        ((str(store), "emb", "qid"), {"filter": "region == "}, ShardvecError, "filter: syntax error: .* at column 11"),
        ((str(store), "emb", "qid"), {"filter": "colour == 'red'"}, ShardvecError, "colour"),
        ((str(tmp_path / "empty"), "emb", "qid"), {}, ShardvecError, "current"),
    ]
    (tmp_path / "empty").mkdir()
    for args, kw, kind, text in cases:
        with pytest.raises(kind, match=text):
            search(frame, *args, **kw)


def test_a_wrong_length_query_names_the_column_and_row(tmp_path: Path) -> None:
    from shardvec.reader._batch import plan_search, search_table

    store = tmp_path / "store"
    write(store, seed=8)
    spec = plan_search(store=str(store), query_col="emb", id_col="qid", columns=["qid", "emb"], top_k=3,
                       num_probes=None, filter=None, sublist_probes=None, max_extra_probes=None, shard_ids=None,
                       routing_context=None, manifest_ref=None, local_root=str(tmp_path / "cache"), max_workers=1,
                       credential_provider=None, s3_connection_options=None)
    table = pa.table({"qid": [1, 2], "emb": pa.array([[0.0] * DIM, [0.0] * (DIM - 1)], pa.list_(pa.float32()))})
    with pytest.raises(ConfigValidationError, match=r"query_col 'emb' row 1: vector has 15 values, expected dim=16"):
        search_table(spec, table)
