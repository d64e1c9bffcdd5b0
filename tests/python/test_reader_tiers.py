"""Reader factories select the reader's tier and their settings take effect: the download tier
(``SqliteVecReaderFactory``), the range tier (``SqliteVecRangeReaderFactory``: shards queried on
the store through ranged reads, nothing downloaded), ``auto`` (``AdaptiveSqliteVecReaderFactory``,
``make_sqlite_vec_reader_factory``) and the async names, on a folder and on the S3 test server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shardvec.errors import ConfigValidationError, SqliteVecAdapterError, ShardvecError
from shardvec.sqlite_vec_adapter import (
    DEFAULT_MMAP_SIZE,
    AdaptiveSqliteVecReaderFactory,
    AsyncAdaptiveSqliteVecReaderFactory,
    AsyncSqliteVecRangeReaderFactory,
    AsyncSqliteVecReaderFactory,
    SqliteVecRangeReaderFactory,
    SqliteVecReaderFactory,
    check_reader_factory,
    decide_access_mode,
    make_async_sqlite_vec_reader_factory,
    make_sqlite_vec_reader_factory,
    make_threshold_policy,
)
from shardvec.vector import ShardedVectorReader, VectorShardedWriteConfig, write_arrays
from shardvec.vector._bridge import reader_options
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

DIM = 32
DATA = np.random.default_rng(3).standard_normal((2000, DIM)).astype(np.float32)
QUERIES = np.random.default_rng(4).standard_normal((12, DIM)).astype(np.float32)


def brute_force(query: np.ndarray, k: int) -> list[int]:
    distance = np.linalg.norm(DATA - query, axis=1)
    return [int(i) for i in np.argsort(distance, kind="stable")[:k]]


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """A snapshot of DATA (ids = rows, payload {"n": id}) and the reader arguments that reach it."""
    storage: dict[str, Any] = {}
    if request.param == "local":
        prefix = str(tmp_path / "store")
    else:
        server = request.getfixturevalue("s3_server")
        creds = server["credentials"]
        prefix = server["prefix"]
        storage = {"s3_connection_options": server["s3_connection_options"], "credential_provider": lambda: creds}
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=4, strategy=VectorShardingStrategy.CLUSTER, train_centroids=True),
        s3_prefix=prefix, index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2), **storage)
    write_arrays(DATA, config, payloads=[{"n": i} for i in range(len(DATA))])
    return {"s3_prefix": prefix, **storage}


def hits(reader: ShardedVectorReader) -> list[list[tuple[Any, float, Any]]]:
    return [[(h.id, h.score, h.payload) for h in r.results] for r in reader.batch_search(QUERIES, top_k=10, num_probes=4)]


def test_range_factory_answers_the_download_tiers_hits_without_downloading(store: dict[str, Any],
                                                                           tmp_path: Path) -> None:
    with ShardedVectorReader(local_root=str(tmp_path / "d"), reader_factory=SqliteVecReaderFactory(), **store) as d:
        expected = hits(d)
        assert d.read_stats()["reader_mode"] == "download"
        # A folder store's shards are read in place (never downloaded); an S3 store's are downloaded.
        assert d.read_stats()["shards_downloaded"] == (4 if store["s3_prefix"].startswith("s3://") else 0)
    for q, row in zip(QUERIES, expected):
        assert [h[0] for h in row] == brute_force(q, 10)
        assert all(h[2] == {"n": h[0]} for h in row)
    for factory in (SqliteVecRangeReaderFactory(), SqliteVecRangeReaderFactory(page_cache_pages=0),
                    AsyncSqliteVecRangeReaderFactory(page_cache_pages=2)):
        cache = tmp_path / f"r{id(factory)}"
        with ShardedVectorReader(local_root=str(cache), reader_factory=factory, **store) as r:
            assert hits(r) == expected
            stats = r.read_stats()
            assert stats["reader_mode"] == "range"
            assert stats["shards_downloaded"] == 0
            total = sum(s.db_bytes for s in r.shard_details())
            assert 0 < stats["range_bytes_fetched"] <= total * (2 if factory.page_cache_pages < 4 else 1)
        assert not [p for p in cache.rglob("*") if p.is_file()]  # nothing written locally


def test_adaptive_factory_picks_the_tier_by_shard_sizes(store: dict[str, Any], tmp_path: Path) -> None:
    with ShardedVectorReader(local_root=str(tmp_path / "a"), reader_factory=AdaptiveSqliteVecReaderFactory(),
                             **store) as reader:
        sizes = [s.db_bytes for s in reader.shard_details()]
        assert reader.read_stats()["reader_mode"] == decide_access_mode(db_bytes_per_shard=sizes) == "download"
        expected = hits(reader)
    for factory in (AdaptiveSqliteVecReaderFactory(per_shard_threshold=max(sizes)),
                    AsyncAdaptiveSqliteVecReaderFactory(total_budget=sum(sizes)),
                    AdaptiveSqliteVecReaderFactory(policy=make_threshold_policy(per_shard_threshold=min(sizes))),
                    make_sqlite_vec_reader_factory(mode="auto", total_budget=sum(sizes) - 1)):
        with ShardedVectorReader(local_root=str(tmp_path / "b"), reader_factory=factory, **store) as reader:
            assert reader.read_stats()["reader_mode"] == "range", factory
            assert hits(reader) == expected
    with ShardedVectorReader(local_root=str(tmp_path / "c"), **store,
                             reader_factory=AdaptiveSqliteVecReaderFactory(per_shard_threshold=max(sizes) + 1,
                                                                           total_budget=sum(sizes) + 1)) as reader:
        assert reader.read_stats()["reader_mode"] == "download"


def test_factory_store_settings_reach_the_shards_merged_over_the_readers(s3_server: dict[str, Any],
                                                                         tmp_path: Path) -> None:
    creds = s3_server["credentials"]
    options = s3_server["s3_connection_options"]
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.LSH), s3_prefix=s3_server["prefix"],
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2), s3_connection_options=options,
        credential_provider=lambda: creds)
    write_arrays(DATA[:300], config)
    reader_args = {"s3_prefix": s3_server["prefix"], "s3_connection_options": options,
                   "credential_provider": lambda: creds}
    bad = {"access_key_id": creds["access_key_id"], "secret_access_key": "not-the-secret"}
    # The factory's credentials win for the shards (the manifest is still read with the reader's).
    for factory in (SqliteVecReaderFactory(credential_provider=lambda: bad, s3_connection_options={"max_attempts": 1}),
                    SqliteVecRangeReaderFactory(credential_provider=lambda: bad,
                                                s3_connection_options={"max_attempts": 1})):
        with ShardedVectorReader(local_root=str(tmp_path / "x"), reader_factory=factory, **reader_args) as reader:
            assert reader.snapshot_info().num_dbs == 2
            with pytest.raises(ShardvecError, match="shard"):
                reader.search(DATA[7], top_k=1, num_probes=2)
    # Only the key given: the endpoint and region still come from the reader's settings.
    good = SqliteVecRangeReaderFactory(credential_provider=lambda: creds)
    with ShardedVectorReader(local_root=str(tmp_path / "y"), reader_factory=good, **reader_args) as reader:
        assert reader.search(DATA[7], top_k=1, num_probes=2).results[0].id == 7


def test_tier_settings_reach_the_engine_options() -> None:
    opts = reader_options("/tmp/x", {}, "", 0, 3, 0, False, None, None, check_reader_factory(None))
    assert (opts.reader_mode.name, opts.mmap_size, opts.shard_store_options) == ("DOWNLOAD", None, None)
    opts = reader_options("/tmp/x", {}, "", 0, 3, 0, False, None, None,
                          check_reader_factory(SqliteVecReaderFactory(mmap_size=4096)))
    assert (opts.reader_mode.name, opts.mmap_size) == ("DOWNLOAD", 4096)
    opts = reader_options("/tmp/x", {}, "", 0, 3, 0, False, None, None,
                          check_reader_factory(SqliteVecRangeReaderFactory(page_cache_pages=7)))
    assert (opts.reader_mode.name, opts.page_cache_pages, opts.mmap_size) == ("RANGE", 7, None)
    opts = reader_options("s3://b/p", {"endpoint_url": "http://127.0.0.1:1", "region": "r1"}, "", 0, 3, 0, False, None, None,
                          check_reader_factory(AdaptiveSqliteVecReaderFactory(
                              per_shard_threshold=5, total_budget=9, page_cache_pages=3, mmap_size=0,
                              s3_connection_options={"region": "r2"})))
    assert (opts.reader_mode.name, opts.auto_per_shard_threshold_bytes, opts.auto_total_budget_bytes,
            opts.page_cache_pages, opts.mmap_size) == ("AUTO", 5, 9, 3, 0)
    assert (opts.shard_store_options.endpoint_url, opts.shard_store_options.region) == ("http://127.0.0.1:1", "r2")
    assert opts.store_options.region == "r1"


def test_bad_factory_settings_are_refused_naming_them(tmp_path: Path) -> None:
    cases = [
        (lambda: SqliteVecReaderFactory(mmap_size=-1), "mmap_size must be >= 0, got -1"),
        (lambda: SqliteVecReaderFactory(mmap_size="big"), "mmap_size must be an int, got 'big'"),
        (lambda: SqliteVecRangeReaderFactory(page_cache_pages=-2), "page_cache_pages must be >= 0, got -2"),
        (lambda: SqliteVecRangeReaderFactory(s3_connection_options={"bogus": 1}),
         "SqliteVecRangeReaderFactory.s3_connection_options has unknown key(s) ['bogus']"),
        (lambda: AsyncSqliteVecReaderFactory(credential_provider=42), "AsyncSqliteVecReaderFactory.credential_provider"),
        (lambda: AdaptiveSqliteVecReaderFactory(per_shard_threshold=0), "per_shard_threshold must be >= 1, got 0"),
        (lambda: AdaptiveSqliteVecReaderFactory(policy=object()), "AdaptiveSqliteVecReaderFactory.policy"),
        (lambda: AdaptiveSqliteVecReaderFactory(policy=make_threshold_policy(), total_budget=5),
         "give either policy or total_budget"),
        (lambda: make_sqlite_vec_reader_factory(mode="download", page_cache_pages=5),
         "page_cache_pages=5 applies to mode='range' or 'auto' only"),
        (lambda: make_sqlite_vec_reader_factory(mode="range", mmap_size=5),
         "mmap_size=5 applies to mode='download' or 'auto' only"),
        (lambda: make_async_sqlite_vec_reader_factory(mode="range", total_budget=5),
         "total_budget=5 applies to mode='auto' only"),
        (lambda: ShardedVectorReader(s3_prefix=str(tmp_path), reader_factory=SqliteVecReaderFactory(
            s3_connection_options={"region": "x"})), "reader_factory's s3_connection_options / credential_provider"),
        (lambda: ShardedVectorReader(s3_prefix=str(tmp_path), reader_factory=lambda **kw: None),
         "reader_factory=<function"),
    ]
    for make, message in cases:
        with pytest.raises(ConfigValidationError) as caught:
            make()
        assert message in str(caught.value), (message, str(caught.value))
    with pytest.raises(SqliteVecAdapterError, match="mode must be 'download', 'range' or 'auto', got 'fast'"):
        make_sqlite_vec_reader_factory(mode="fast")  # type: ignore[arg-type]


def test_make_factory_and_the_async_names_select_the_same_tiers() -> None:
    assert make_sqlite_vec_reader_factory(mode="download", mmap_size=1) == SqliteVecReaderFactory(mmap_size=1)
    assert make_sqlite_vec_reader_factory(mode="range", page_cache_pages=9) == SqliteVecRangeReaderFactory(9)
    assert isinstance(make_async_sqlite_vec_reader_factory(mode="download"), AsyncSqliteVecReaderFactory)
    assert isinstance(make_async_sqlite_vec_reader_factory(mode="range"), AsyncSqliteVecRangeReaderFactory)
    assert isinstance(make_async_sqlite_vec_reader_factory(mode="auto"), AsyncAdaptiveSqliteVecReaderFactory)
    assert check_reader_factory(AsyncSqliteVecReaderFactory()).mmap_size == DEFAULT_MMAP_SIZE
    assert check_reader_factory(AsyncSqliteVecRangeReaderFactory(page_cache_pages=3)).page_cache_pages == 3
    assert check_reader_factory(AsyncAdaptiveSqliteVecReaderFactory(total_budget=10)).total_budget == 10
    with pytest.raises(NotImplementedError, match="engine builds"):
        asyncio.run(AsyncSqliteVecRangeReaderFactory()(db_url="s3://b/p", local_dir=Path("/tmp")))
    with pytest.raises(NotImplementedError, match="engine builds"):
        SqliteVecRangeReaderFactory()(db_url="s3://b/p", local_dir=Path("/tmp"))


def test_a_shardyfusion_program_using_the_range_tier_runs_with_the_prefix_changed(tmp_path: Path) -> None:
    # The program as a shardyfusion user writes it; only "shardyfusion" became "shardvec".
    from shardvec.sqlite_vec_adapter import make_sqlite_vec_reader_factory as make_factory
    from shardvec.vector import ShardedVectorReader as Reader

    prefix = str(tmp_path / "snap")
    write_arrays(DATA, VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=4, strategy=VectorShardingStrategy.CLUSTER, train_centroids=True),
        s3_prefix=prefix, index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2)))
    factory = make_factory(mode="range", page_cache_pages=256)
    with Reader(s3_prefix=prefix, local_root=str(tmp_path / "cache"), reader_factory=factory) as reader:
        response = reader.search(DATA[11], top_k=5, num_probes=4)
        assert [hit.id for hit in response.results] == brute_force(DATA[11], 5)
