"""The reader's shard cache under ``max_cache_bytes`` (on the S3 test server, where shards are
downloaded), a folder store's shards read in place (nothing copied), and guarded publishes: another
dim or metric is refused unless ``allow_schema_change``, and a live reader refuses to refresh onto
it while it keeps serving (on a folder and on S3)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shardvec.config import WriterManifestConfig
from shardvec.metrics import MetricEvent
from shardvec.errors import ConfigValidationError, PublishConflictError, ReaderStateError
from shardvec.sqlite_vec_adapter import SqliteVecRangeReaderFactory
from shardvec.vector import AsyncShardedVectorReader, ShardedVectorReader, VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy


def config(prefix: str, storage: dict[str, Any], dim: int = 16, metric: DistanceMetric = DistanceMetric.L2,
           allow: bool = False) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.LSH),
        s3_prefix=prefix, index_config=VectorIndexConfig(dim=dim, metric=metric),
        manifest=WriterManifestConfig(allow_schema_change=allow), **storage)


def data(seed: int, dim: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((300, dim)).astype(np.float32)


def cache_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def shard_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("shard.db")]


def test_the_cache_stays_under_its_budget_across_refreshes_on_s3(s3_server: dict[str, Any], tmp_path: Path) -> None:
    creds = s3_server["credentials"]
    storage = {"s3_connection_options": s3_server["s3_connection_options"], "credential_provider": lambda: creds}
    prefix = s3_server["prefix"]
    rows = data(0)
    write_arrays(rows, config(prefix, storage))
    cache = tmp_path / "cache"
    with ShardedVectorReader(s3_prefix=prefix, local_root=str(cache), **storage) as probe:
        snapshot = sum(s.db_bytes for s in probe.shard_details())
    budget = 2 * snapshot + snapshot // 2
    sizes = []
    with ShardedVectorReader(s3_prefix=prefix, local_root=str(cache), max_cache_bytes=budget, **storage) as reader:
        for round_ in range(6):
            rows = data(round_ + 1)
            write_arrays(rows, config(prefix, storage))
            assert reader.refresh()
            hit = reader.search(rows[5], top_k=1, shard_ids=[0, 1]).results[0]
            assert (hit.id, hit.score) == (5, 0.0)
            sizes.append(cache_bytes(cache))
            assert sizes[-1] <= budget, sizes
    print(f"cache bytes after each refresh (budget {budget}, one snapshot {snapshot}): {sizes}")
    assert len(shard_files(cache)) >= 4  # at least the last snapshot's shards and the previous one's


def test_a_folder_stores_shards_are_read_in_place(tmp_path: Path) -> None:
    prefix = str(tmp_path / "store")
    rows = data(1)
    write_arrays(rows, config(prefix, {}))
    cache = tmp_path / "cache"
    with ShardedVectorReader(s3_prefix=prefix, local_root=str(cache)) as reader:
        hits = reader.batch_search(rows[:20], top_k=1, shard_ids=[0, 1])
        assert [r.results[0].id for r in hits] == list(range(20))
        assert reader.read_stats()["shards_downloaded"] == 0
    assert shard_files(cache) == []
    assert cache_bytes(cache) == 0


def test_max_cache_bytes_is_checked_and_reaches_the_async_reader(tmp_path: Path) -> None:
    prefix = str(tmp_path / "store")
    write_arrays(data(1), config(prefix, {}))
    for bad in (-1, "1", 1.5, True):
        with pytest.raises(ConfigValidationError, match="max_cache_bytes"):
            ShardedVectorReader(s3_prefix=prefix, max_cache_bytes=bad)
    with pytest.raises(ConfigValidationError, match=r"max_cache_bytes \(100\) applies to the download tier"):
        ShardedVectorReader(s3_prefix=prefix, max_cache_bytes=100, reader_factory=SqliteVecRangeReaderFactory())

    async def main() -> None:
        with pytest.raises(ConfigValidationError, match="max_cache_bytes must be >= 0"):
            await AsyncShardedVectorReader.open(s3_prefix=prefix, max_cache_bytes=-5)
        reader = await AsyncShardedVectorReader.open(s3_prefix=prefix, max_cache_bytes=0,
                                                     local_root=str(tmp_path / "c"))
        await reader.close()

    asyncio.run(main())


def test_another_schema_is_refused_unless_allowed_and_live_readers_keep_serving(
        prefix_and_storage: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    prefix, storage = prefix_and_storage
    old = data(1, dim=8)
    write_arrays(old, config(prefix, storage, dim=8, metric=DistanceMetric.COSINE))
    events: list[tuple[str, dict[str, Any]]] = []

    class Collector:
        def emit(self, event: str, payload: dict[str, Any]) -> None:
            events.append((event, payload))

    reader = ShardedVectorReader(s3_prefix=prefix, local_root=str(tmp_path / "c"),
                                 metrics_collector=Collector(), **storage)
    with pytest.raises(PublishConflictError, match=r"dim 16 \(current: 8\) and metric l2 \(current: cosine\)"):
        write_arrays(data(2), config(prefix, storage))
    assert not reader.refresh()  # nothing was published
    with pytest.raises(ConfigValidationError, match="manifest.allow_schema_change must be a bool"):
        write_arrays(data(2), config(prefix, storage, allow="yes"))  # type: ignore[arg-type]
    result = write_arrays(data(2), config(prefix, storage, allow=True))
    with pytest.raises(ReaderStateError, match="has dim 16 and metric l2, but this reader serves dim 8"):
        reader.refresh()
    assert reader.snapshot_info().dim == 8
    assert reader.search(old[4], top_k=1, shard_ids=[0, 1]).results[0].id == 4
    refused = [p for e, p in events if e == MetricEvent.VECTOR_READER_REFRESH_REFUSED]
    assert len(refused) == 1 and result.run_id in refused[0]["manifest_ref"]
    reader.close()
    with ShardedVectorReader(s3_prefix=prefix, local_root=str(tmp_path / "d"), **storage) as fresh:
        assert fresh.snapshot_info().dim == 16


def test_an_empty_write_arrays_follows_the_clis_rule(tmp_path: Path) -> None:
    """The CLI publishes an empty snapshot for an input of 0 rows whose dimension is known (an .npy
    of shape (0, dim)); write_arrays does the same for a (0, dim) array."""
    prefix = str(tmp_path / "store")
    result = write_arrays(np.zeros((0, 16), np.float32), config(prefix, {}))
    assert result.winners == []
    with ShardedVectorReader(s3_prefix=prefix, local_root=str(tmp_path / "c")) as reader:
        assert reader.snapshot_info().dim == 16
        assert reader.snapshot_info().total_vectors == 0
        assert reader.search(np.ones(16, np.float32), top_k=3, shard_ids=[0, 1]).results == []
