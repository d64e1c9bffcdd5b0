"""update_sharded: upserts (records or arrays) and deletes by id in the current snapshot, on a folder
and on S3; the result searches like a full rebuild of the same records; a config that disagrees with
the base and a base that is no longer current are refused by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import check_id_index
from shardvec.config import WriterOutputConfig
from shardvec.errors import ConfigValidationError, PublishConflictError
from shardvec.vector import (
    ShardedVectorReader,
    UpdateResult,
    VectorRecord,
    VectorShardedWriteConfig,
    update_sharded,
    write_arrays,
    write_sharded,
)
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

DIM = 8


def make_config(prefix: str, tmp_path: Path, storage: dict[str, Any], num_probes: int = 1) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=4, strategy=VectorShardingStrategy.LSH, num_probes=num_probes),
        s3_prefix=prefix,
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2),
        output=WriterOutputConfig(local_root=str(tmp_path / "build")),
        **storage,
    )


def cluster_config(tmp_path: Path) -> VectorShardedWriteConfig:
    """3 CLUSTER shards with centroids trained at the build, a folder store under tmp_path."""
    return VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=3, strategy=VectorShardingStrategy.CLUSTER, train_centroids=True),
        s3_prefix=str(tmp_path / "store"),
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2),
        output=WriterOutputConfig(local_root=str(tmp_path / "build")),
    )


def top_ids(rows: dict[int, np.ndarray], query: np.ndarray, k: int) -> list[int]:
    ids = sorted(rows)
    data = np.stack([rows[i] for i in ids])
    order = np.argsort(((data - query) ** 2).sum(axis=1), kind="stable")[:k]
    return [ids[i] for i in order]


def test_upserts_and_deletes_publish_what_a_full_rebuild_holds(
        tmp_path: Path, prefix_and_storage: tuple[str, dict[str, Any]]) -> None:
    prefix, storage = prefix_and_storage
    config = make_config(prefix, tmp_path, storage)
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((100, DIM)).astype(np.float32)
    write_arrays(vectors, config, ids=np.arange(100), payloads=[{"n": i} for i in range(100)])
    rows = {i: vectors[i] for i in range(100)}

    # Records: one replaces id 4, one is new; deletes: two held ids and one the snapshot never had.
    replaced = rng.standard_normal(DIM).astype(np.float32)
    added = rng.standard_normal(DIM).astype(np.float32)
    result = update_sharded(upserts=[VectorRecord(id=4, vector=replaced, payload={"n": -4}),
                                     VectorRecord(id=500, vector=added, payload={"n": 500})],
                            deletes=[7, 8, 9999], config=config)
    assert isinstance(result, UpdateResult)
    assert (result.report.upserted, result.report.replaced, result.report.deleted,
            result.report.missing_deletes) == (2, 1, 2, 1)
    assert result.report.used_id_index is True  # the build's index
    assert result.build.stats.rows_written == 99
    assert result.report.shared_shards + len(result.report.rebuilt) == 4
    rows.update({4: replaced, 500: added})
    del rows[7], rows[8]

    # Arrays, through the id index the first update wrote.
    more = rng.standard_normal((3, DIM)).astype(np.float32)
    second = update_sharded(upserts={"vectors": more, "ids": np.array([10, 600, 601])}, deletes=np.array([11]),
                            config=config)
    assert second.report.used_id_index is True
    assert second.report.base_run_id == result.build.run_id
    rows.update({10: more[0], 600: more[1], 601: more[2]})
    del rows[11]

    reader = ShardedVectorReader(s3_prefix=prefix, local_root=str(tmp_path / "cache"), **storage)
    try:
        assert reader.snapshot_info().total_vectors == len(rows)
        for query in rng.standard_normal((5, DIM)).astype(np.float32):
            hits = reader.search(query, top_k=10, shard_ids=[0, 1, 2, 3]).results
            assert [hit.id for hit in hits] == top_ids(rows, query, 10)
        hit = reader.search(replaced, top_k=1, shard_ids=[0, 1, 2, 3]).results[0]
        assert (hit.id, hit.payload) == (4, {"n": -4})
    finally:
        reader.close()


def test_an_int8_snapshot_is_edited_in_place_and_its_pre_scan_finds_the_new_rows(tmp_path: Path) -> None:
    # 1,000 rows a shard: enough for the reader to pre-scan the int8 codes at top 10.
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=4, strategy=VectorShardingStrategy.LSH, num_probes=1),
        s3_prefix=str(tmp_path / "store"),
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2, quantization="int8"),
        output=WriterOutputConfig(local_root=str(tmp_path / "build")))
    rng = np.random.default_rng(21)
    vectors = rng.standard_normal((4000, DIM)).astype(np.float32)
    write_arrays(vectors, config, ids=np.arange(4000))
    rows = {i: vectors[i] for i in range(4000)}
    fresh = rng.standard_normal((60, DIM)).astype(np.float32)  # the built rows' distribution
    ids = np.concatenate([np.arange(0, 3000, 100), np.arange(5000, 5030)])  # 30 replaced, 30 new
    result = update_sharded(upserts={"vectors": fresh, "ids": ids}, deletes=np.arange(1, 3000, 100), config=config)
    assert (result.report.replaced, result.report.deleted) == (30, 30)
    assert result.report.edited_in_place == [0, 1, 2, 3]
    rows.update({int(i): v for i, v in zip(ids, fresh)})
    for i in range(1, 3000, 100):
        del rows[i]

    with ShardedVectorReader(s3_prefix=config.s3_prefix, local_root=str(tmp_path / "cache")) as reader:
        every = [0, 1, 2, 3]
        for i, vector in zip(ids, fresh):
            assert reader.search(vector, top_k=1, shard_ids=every).results[0].id == i
        found = 0
        queries = rng.standard_normal((40, DIM)).astype(np.float32)
        for query in queries:
            found += len({hit.id for hit in reader.search(query, top_k=10, shard_ids=every).results}
                         & set(top_ids(rows, query, 10)))
        assert found / (10 * len(queries)) >= 0.95


@pytest.mark.parametrize("writer", ["write_arrays", "write_sharded"])
def test_a_python_build_writes_the_id_index_and_the_first_update_rebuilds_only_the_shard_it_names(
        tmp_path: Path, writer: str) -> None:
    config = make_config(str(tmp_path / "store"), tmp_path, {})
    rng = np.random.default_rng(11)
    vectors = rng.standard_normal((200, DIM)).astype(np.float32)
    ids = [f"doc-{i}" if i % 2 else i for i in range(200)]  # str and int ids
    if writer == "write_arrays":
        built = write_arrays(vectors, config, ids=[str(i) for i in ids])
        ids = [str(i) for i in ids]
    else:
        built = write_sharded((VectorRecord(id=i, vector=v) for i, v in zip(ids, vectors, strict=True)), config)
    assert check_id_index(built.manifest_ref) == 200

    # Row 3 upserted with its own vector (so routed to the shard that holds it): one shard rebuilt.
    result = update_sharded(upserts=[VectorRecord(id=ids[3], vector=vectors[3], payload={"n": 3})], config=config)
    assert result.report.used_id_index is True
    assert (result.report.replaced, len(result.report.rebuilt), result.report.shared_shards) == (1, 1, 3)
    assert check_id_index(result.build.manifest_ref) == 200


def test_a_config_that_disagrees_with_the_base_is_refused_naming_the_field(tmp_path: Path) -> None:
    prefix = str(tmp_path / "store")
    config = make_config(prefix, tmp_path, {})
    write_arrays(np.ones((10, DIM), dtype=np.float32), config, ids=np.arange(10))
    with pytest.raises(ConfigValidationError, match="sharding.num_probes is 2 but the base snapshot"):
        update_sharded(deletes=[1], config=make_config(prefix, tmp_path, {}, num_probes=2))
    with pytest.raises(ConfigValidationError, match="upserts need ids"):
        update_sharded(upserts={"vectors": np.ones((1, DIM), dtype=np.float32)}, config=config)
    with pytest.raises(ConfigValidationError, match="needs upserts, deletes, or both"):
        update_sharded(config=config)
    limited = make_config(prefix, tmp_path, {})
    limited.rate_limits.max_writes_per_second = 100.0
    with pytest.raises(ConfigValidationError, match="rate_limits.max_writes_per_second=100.0 is not applied"):
        update_sharded(deletes=[1], config=limited)


def test_a_base_that_is_no_longer_current_is_a_publish_conflict(tmp_path: Path) -> None:
    prefix = str(tmp_path / "store")
    config = make_config(prefix, tmp_path, {})
    first = write_arrays(np.ones((10, DIM), dtype=np.float32), config, ids=np.arange(10))
    write_arrays(np.ones((10, DIM), dtype=np.float32) * 2, config, ids=np.arange(10))
    with pytest.raises(PublishConflictError, match="is not the current one"):
        update_sharded(deletes=[1], config=config, base=first.run_id)
    with pytest.raises(Exception, match="strict: 1 id"):
        update_sharded(deletes=[12345], config=config, strict=True)


def test_a_cluster_snapshot_built_from_python_updates_with_the_same_config(tmp_path: Path) -> None:
    # The Python config carries every sharding default (num_hash_bits too): an update with it is not
    # refused for fields the strategy does not use.
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((60, DIM)).astype(np.float32)
    config = cluster_config(tmp_path)
    write_arrays(vectors, config, ids=np.arange(60))
    result = update_sharded(upserts={"vectors": vectors[:2] + 1, "ids": [0, 1]}, deletes=[2], config=config)
    assert (result.report.replaced, result.report.deleted) == (2, 1)
    assert result.report.upsert_centroid_distance is not None
    assert result.report.base_centroid_distance is not None


def test_retrain_builds_the_snapshot_anew_from_its_rows_and_the_changes(tmp_path: Path) -> None:
    # Upserts far from every centroid: the report advises a retrain; retrain=True then builds the whole
    # snapshot anew, centroids trained on the final records, and it answers as brute force does.
    rng = np.random.default_rng(8)
    vectors = rng.standard_normal((300, DIM)).astype(np.float32)
    config = cluster_config(tmp_path)
    write_arrays(vectors, config, ids=np.arange(300))
    far = rng.standard_normal((40, DIM)).astype(np.float32) + 25
    drifted = update_sharded(upserts={"vectors": far[:20], "ids": np.arange(300, 320)}, config=config)
    assert drifted.report.rebuild_advised
    assert "retrain" in drifted.report.advice
    result = update_sharded(upserts={"vectors": far[20:], "ids": np.arange(320, 340)}, deletes=[0, 1, 5000],
                            config=config, retrain=True)
    report = result.report
    assert (report.upserted, report.replaced, report.deleted, report.missing_deletes) == (20, 0, 2, 1)
    assert report.shared_shards == 0 and report.edited_in_place == []
    rows = {i: vectors[i] for i in range(2, 300)}
    rows.update({300 + i: far[i] for i in range(40)})
    assert sum(w.row_count for w in result.build.winners) == len(rows)
    with ShardedVectorReader(s3_prefix=str(tmp_path / "store"), local_root=str(tmp_path / "cache")) as reader:
        for query in [far[3], far[30], vectors[10]]:
            got = [int(h.id) for h in reader.search(query, 5, num_probes=3).results]
            assert got == top_ids(rows, query, 5)
    with pytest.raises(ConfigValidationError, match="compact cannot take effect with retrain"):
        update_sharded(deletes=[7], config=config, retrain=True, compact=True)
    with pytest.raises(ConfigValidationError, match="retrain must be a bool"):
        update_sharded(deletes=[7], config=config, retrain="yes")  # type: ignore[arg-type]


def test_shards_are_edited_in_place_unless_compact_and_a_stale_base_is_rebased(tmp_path: Path) -> None:
    prefix = str(tmp_path / "store")
    config = make_config(prefix, tmp_path, {})
    rng = np.random.default_rng(8)
    vectors = rng.standard_normal((200, DIM)).astype(np.float32)
    first = write_arrays(vectors, config, ids=np.arange(200))
    rows = {i: vectors[i] for i in range(200)}

    fresh = rng.standard_normal((4, DIM)).astype(np.float32)
    edited = update_sharded(upserts={"vectors": fresh[:2], "ids": [1, 2]}, deletes=[3], config=config)
    assert edited.report.edited_in_place == sorted(db for db, _, _ in edited.report.rebuilt)
    assert edited.report.edited_in_place and edited.report.rebased == 0
    compacted = update_sharded(upserts={"vectors": fresh[2:3], "ids": [4]}, config=config, compact=True)
    assert compacted.report.rebuilt and compacted.report.edited_in_place == []
    rows.update({1: fresh[0], 2: fresh[1], 4: fresh[2]})
    del rows[3]

    # The build is no longer current: rebase redoes the update on the current snapshot.
    with pytest.raises(PublishConflictError):
        update_sharded(deletes=[5], config=config, base=first.run_id)
    rebased = update_sharded(upserts={"vectors": fresh[3:], "ids": [6]}, deletes=[5], config=config,
                             base=first.run_id, rebase=True)
    assert (rebased.report.rebased, rebased.report.base_run_id) == (1, compacted.build.run_id)
    assert (rebased.report.replaced, rebased.report.deleted) == (1, 1)
    rows[6] = fresh[3]
    del rows[5]
    with pytest.raises(ConfigValidationError, match="rebase cannot take effect with publish_policy last-writer-wins"):
        update_sharded(deletes=[7], config=config, rebase=True, last_writer_wins=True)

    reader = ShardedVectorReader(s3_prefix=prefix, local_root=str(tmp_path / "cache"))
    try:
        assert reader.snapshot_info().total_vectors == len(rows)
        for query in rng.standard_normal((5, DIM)).astype(np.float32):
            hits = reader.search(query, top_k=10, shard_ids=[0, 1, 2, 3]).results
            assert [hit.id for hit in hits] == top_ids(rows, query, 10)
    finally:
        reader.close()
