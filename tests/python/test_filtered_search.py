"""Filtered search: at full probing the results equal a NumPy brute force over the rows the filter
passes (every column type, nulls, selectivities 50 % down to 0.01 %); at the default probing a search
never returns fewer than top_k rows when that many pass anywhere; sync, async, batch and the CLI
agree; a bound on extra probes takes effect; bad filters are refused with the position."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from shardvec.errors import ConfigValidationError

from shardvec.vector import AsyncShardedVectorReader, ShardedVectorReader, VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

DIM = 16
ROWS = 20000
NUM_DBS = 8
K = 10
LANGS = ["en", "de", "fr", "日本語"]
COLUMNS = {"lang": "string", "year": "int", "price": "double", "in_stock": "bool", "tags": "list<string>",
           "bucket": "int"}


def payload(i: int) -> dict[str, Any]:
    p: dict[str, Any] = {"bucket": (i * 7919) % ROWS}  # a permutation of 0..ROWS-1: selectivity by range
    if i % 5:
        p["lang"] = LANGS[(i * 31) % 4]
    if i % 9 == 3:
        p["lang"] = None
    if i % 4 != 1:
        p["year"] = 2000 + (i * 13) % 25
    if i % 6 != 2:
        p["price"] = ((i * 17) % 200) * 0.25
    if i % 3 != 2:
        p["in_stock"] = (i * 11) % 2 == 0
    if i % 8 != 4:
        p["tags"] = [t for j, t in enumerate(["sale", "new", "eco"]) if (i >> j) % 3 == 0]
    return p


PAYLOADS = [payload(i) for i in range(ROWS)]


def vectors() -> np.ndarray:
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((40, DIM)).astype(np.float32) * 4
    return (centres[rng.integers(0, 40, ROWS)] + rng.standard_normal((ROWS, DIM))).astype(np.float32)


DATA = vectors()
QUERIES = DATA[:: ROWS // 20][:20] + np.float32(0.05)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> str:
    prefix = str(tmp_path_factory.mktemp("filtered") / "store")
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=NUM_DBS, strategy=VectorShardingStrategy.CLUSTER, train_centroids=True),
        s3_prefix=prefix, index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2), filter_columns=COLUMNS)
    write_arrays(DATA, config, ids=np.arange(ROWS), payloads=PAYLOADS)
    return prefix


def brute(passes: Callable[[dict[str, Any]], bool], query: np.ndarray) -> list[int]:
    rows = np.array([i for i in range(ROWS) if passes(PAYLOADS[i])], dtype=np.int64)
    if len(rows) == 0:
        return []
    d = ((DATA[rows].astype(np.float64) - query.astype(np.float64)) ** 2).sum(axis=1)
    return [int(rows[i]) for i in np.argsort(d, kind="stable")[:K]]


def lang_is(v: str) -> Callable[[dict[str, Any]], bool]:
    return lambda p: p.get("lang") == v


CASES: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
    ("lang == 'en'", lang_is("en")),
    ("lang == '日本語' || lang == null", lambda p: p.get("lang") in ("日本語", None)),
    ("year >= 2020 && price < 10.0",
     lambda p: p.get("year") is not None and p["year"] >= 2020 and p.get("price") is not None and p["price"] < 10),
    ("in_stock && 'sale' in tags", lambda p: p.get("in_stock") is True and "sale" in (p.get("tags") or [])),
    ("!('new' in tags) && lang.startsWith('d')",
     lambda p: p.get("tags") is not None and "new" not in p["tags"] and (p.get("lang") or "").startswith("d")),
    ("year in [2001, 2003] || price == 0.25",
     lambda p: p.get("year") in (2001, 2003) or p.get("price") == 0.25),
] + [(f"bucket < {int(ROWS * s)}", (lambda n: lambda p: p["bucket"] < n)(int(ROWS * s)))
     for s in (0.5, 0.1, 0.01, 0.001, 0.0001)]


@pytest.mark.parametrize("expr,passes", CASES, ids=[c[0] for c in CASES])
def test_full_probing_equals_the_brute_force_and_default_probing_never_underfills(
        snapshot: str, tmp_path: Path, expr: str, passes: Callable[[dict[str, Any]], bool]) -> None:
    passing = sum(passes(p) for p in PAYLOADS)
    with ShardedVectorReader(s3_prefix=snapshot, local_root=str(tmp_path / "cache")) as reader:
        recall = 0.0
        for q in QUERIES:
            truth = brute(passes, q)
            full = reader.search(q, top_k=K, num_probes=NUM_DBS, filter=expr)
            assert [h.id for h in full.results] == truth, expr
            for h in full.results:
                assert passes(PAYLOADS[h.id])
            default = reader.search(q, top_k=K, filter=expr)
            assert len(default.results) == min(K, passing), (expr, default.num_shards_queried)
            assert all(passes(PAYLOADS[h.id]) for h in default.results)
            recall += len({h.id for h in default.results} & set(truth)) / max(1, len(truth))
        assert recall / len(QUERIES) >= 0.95, (expr, recall / len(QUERIES))


def test_batch_async_and_cli_answer_as_search(snapshot: str, tmp_path: Path) -> None:
    expr = "lang == 'fr' && year < 2010"
    with ShardedVectorReader(s3_prefix=snapshot, local_root=str(tmp_path / "c")) as reader:
        singles = [reader.search(q, top_k=K, filter=expr) for q in QUERIES]
        batch = reader.batch_search(QUERIES, top_k=K, filter=expr)
    assert [[h.id for h in r.results] for r in batch] == [[h.id for h in r.results] for r in singles]
    assert [[h.score for h in r.results] for r in batch] == [[h.score for h in r.results] for r in singles]

    async def run() -> list[list[int]]:
        async with AsyncShardedVectorReader(s3_prefix=snapshot, local_root=str(tmp_path / "a")) as areader:
            return [[h.id for h in (await areader.search(q, top_k=K, filter=expr)).results] for q in QUERIES]

    assert asyncio.run(run()) == [[h.id for h in r.results] for r in singles]
    cli = Path(sys.executable).parent / "shardvec"
    query = ",".join(str(float(v)) for v in QUERIES[0])
    done = subprocess.run([str(cli), "search", "--store", snapshot, "--cache-dir", str(tmp_path / "cli"),
                           "--query", query, "--top-k", str(K), "--filter", expr, "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    hits = out["results"] if isinstance(out, dict) else out[0]["results"]
    assert [h["id"] for h in hits] == [h.id for h in singles[0].results]


def test_max_extra_probes_bounds_the_shards_searched(snapshot: str, tmp_path: Path) -> None:
    expr = f"bucket < {int(ROWS * 0.001)}"  # 20 rows in all, spread over the shards
    with ShardedVectorReader(s3_prefix=snapshot, local_root=str(tmp_path / "c")) as reader:
        bounded = reader.search(QUERIES[0], top_k=K, num_probes=1, filter=expr, max_extra_probes=0)
        free = reader.search(QUERIES[0], top_k=K, num_probes=1, filter=expr)
        assert len(free.results) == K
        assert free.num_shards_queried > bounded.num_shards_queried
        assert len(bounded.results) <= len(free.results)
        one_more = reader.search(QUERIES[0], top_k=K, num_probes=1, filter=expr, max_extra_probes=1)
        assert one_more.num_shards_queried == bounded.num_shards_queried + 1


def test_bad_filters_and_settings_are_refused_naming_them(snapshot: str, tmp_path: Path) -> None:
    with ShardedVectorReader(s3_prefix=snapshot, local_root=str(tmp_path / "c")) as reader:
        q = QUERIES[0]
        with pytest.raises(Exception, match=r"filter: unknown column 'colour' at column 1"):
            reader.search(q, filter="colour == 'red'")
        with pytest.raises(Exception, match=r"column 'year' is int, so it cannot be compared with a string at column 9"):
            reader.search(q, filter="year == 'x'")
        with pytest.raises(Exception, match=r"filter: syntax error"):
            reader.batch_search(QUERIES[:2], filter="lang == ")
        with pytest.raises(Exception, match=r"max_extra_probes \(2\) applies to filtered searches only"):
            reader.search(q, max_extra_probes=2)
        with pytest.raises(Exception, match=r"max_extra_probes must be >= 0 \(got -1\)"):
            reader.search(q, filter="lang == 'en'", max_extra_probes=-1)
        with pytest.raises(Exception, match=r"max_extra_probes \(1\) cannot be combined with shard_ids"):
            reader.search(q, filter="lang == 'en'", shard_ids=[0], max_extra_probes=1)
        named = reader.search(q, top_k=K, filter="bucket < 2", shard_ids=[0])
        assert named.num_shards_queried == 1  # shard_ids is never widened


def test_a_snapshot_without_filter_columns_refuses_a_filter(tmp_path: Path) -> None:
    prefix = str(tmp_path / "plain")
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.CLUSTER, train_centroids=True),
        s3_prefix=prefix, index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2))
    write_arrays(DATA[:500], config, ids=np.arange(500))
    with ShardedVectorReader(s3_prefix=prefix, local_root=str(tmp_path / "c")) as reader:
        with pytest.raises(Exception, match="this snapshot declares no filter columns"):
            reader.search(DATA[0], filter="lang == 'en'")


def test_filter_cache_bytes_keeps_bitmaps_for_a_filter_asked_again(snapshot: str, tmp_path: Path) -> None:
    """read_stats() counts the bitmaps evaluated and reused; with filter_cache_bytes=0 none is kept.
    The answers are the same either way."""
    expr = "lang == 'en' && year >= 2015"
    answers = {}
    for budget, cache in ((None, "default"), (0, "none")):
        with ShardedVectorReader(s3_prefix=snapshot, local_root=str(tmp_path / cache), filter_cache_bytes=budget) as reader:
            first = reader.search(QUERIES[0], top_k=K, num_probes=NUM_DBS, filter=expr)
            stats = reader.read_stats()
            assert stats["filter_bitmaps_evaluated"] == NUM_DBS and stats["filter_bitmaps_reused"] == 0, stats
            again = reader.search(QUERIES[0], top_k=K, num_probes=NUM_DBS, filter="lang=='en'&&year>=2015")
            stats = reader.read_stats()
            if budget is None:  # the same filter in another spelling: every bitmap from the cache
                assert (stats["filter_bitmaps_evaluated"], stats["filter_bitmaps_reused"]) == (NUM_DBS, NUM_DBS), stats
            else:
                assert (stats["filter_bitmaps_evaluated"], stats["filter_bitmaps_reused"]) == (2 * NUM_DBS, 0), stats
            assert [r.id for r in again.results] == [r.id for r in first.results]
            answers[cache] = [(r.id, r.score) for r in first.results]
    assert answers["default"] == answers["none"]
    for bad in (-1, 1.5, True, "64"):
        with pytest.raises(ConfigValidationError, match="filter_cache_bytes must be an int >= 0"):
            ShardedVectorReader(s3_prefix=snapshot, local_root=str(tmp_path / "bad"), filter_cache_bytes=bad)
