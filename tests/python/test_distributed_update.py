"""update_sharded through the Spark, Dask and Ray writers on real local clusters (Spark local[2], a
Dask LocalCluster with 2 worker processes, a local Ray with 2 CPUs; started once per session by
conftest): the published snapshot searches exactly as the single-process update_sharded's on the
same base and inputs (ids and scores at full probing, and brute force), the report's counts are
exact, a base that is no longer current is a PublishConflictError, and a strict update deleting an
id the base does not hold fails with nothing published and its uploads removed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from shardvec.config import VectorColumnInput
from shardvec.errors import ConfigValidationError, PublishConflictError, ShardvecError
from shardvec.vector import ShardedVectorReader, UpdateResult, VectorShardedWriteConfig, update_sharded, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

DIM = 16
ROWS = 600
NUM_DBS = 4
ENGINES = ["spark", "dask", "ray"]
INPUT = VectorColumnInput(vector_col="embedding", id_col="doc_id", payload_cols=["title"])
QUERIES = np.random.default_rng(99).standard_normal((12, DIM)).astype(np.float32) * 3

Update = Callable[..., UpdateResult]


def base_rows() -> dict[int, tuple[np.ndarray, str]]:
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((6, DIM)).astype(np.float32) * 4
    vectors = (centers[rng.integers(0, 6, ROWS)] + rng.standard_normal((ROWS, DIM))).astype(np.float32)
    return {i * 3: (vectors[i], f"t{i}") for i in range(ROWS)}


def changes() -> tuple[dict[int, tuple[np.ndarray, str]], list[int]]:
    """40 upserts (25 replace held ids, some with far-away vectors that move them; 15 are new) and 23
    deletes (20 held ids, 3 the base never had)."""
    rng = np.random.default_rng(1)
    held = sorted(base_rows())
    picked = rng.choice(len(held), 45, replace=False)
    replaced = [held[i] for i in picked[:25]]
    deleted = [held[i] for i in picked[25:45]]
    upserts = {i: ((rng.standard_normal(DIM) * (6 if n % 3 == 0 else 1)).astype(np.float32), f"u{i}")
               for n, i in enumerate(replaced + [10_000 + k for k in range(15)])}
    return upserts, deleted + [-1, -2, 99_999]


def table(rows: dict[int, tuple[np.ndarray, str]]) -> pa.Table:
    ids = sorted(rows)
    return pa.table({
        "doc_id": pa.array(ids, type=pa.int64()),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(np.stack([rows[i][0] for i in ids]).reshape(-1)), DIM),
        "title": pa.array([rows[i][1] for i in ids]),
    })


def config(prefix: Path) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        sharding=VectorShardingConfig(strategy=VectorShardingStrategy.CLUSTER, num_dbs=NUM_DBS, train_centroids=True),
        s3_prefix=str(prefix), index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2), batch_size=100)


def build_base(prefix: Path) -> str:
    rows = base_rows()
    ids = sorted(rows)
    return write_arrays(np.stack([rows[i][0] for i in ids]), config(prefix), ids=np.array(ids),
                        payloads=[{"title": rows[i][1]} for i in ids]).run_id


def answers(prefix: Path, cache: Path) -> list[list[tuple[Any, float, Any]]]:
    with ShardedVectorReader(s3_prefix=str(prefix), local_root=str(cache)) as reader:
        return [[(h.id, h.score, h.payload) for h in response.results]
                for response in reader.batch_search(QUERIES, top_k=10, num_probes=NUM_DBS)]


def brute_force(rows: dict[int, tuple[np.ndarray, str]]) -> list[list[int]]:
    ids = np.array(sorted(rows))
    data = np.stack([rows[i][0] for i in ids])
    return [list(ids[np.argsort(((data - q) ** 2).sum(axis=1), kind="stable")[:10]]) for q in QUERIES]


def make_update(request: pytest.FixtureRequest, name: str) -> Update:
    """update(upserts_table | None, deletes_table | None, config, **kw) through engine `name`."""
    if name == "spark":
        session = request.getfixturevalue("spark")
        from shardvec.writer.spark import update_sharded as spark_update

        def frame(t: pa.Table | None) -> Any:
            return None if t is None else session.createDataFrame(t.to_pandas()).repartition(3)
        return lambda u, d, c, **kw: spark_update(frame(u), frame(d), c, INPUT, **kw)
    if name == "dask":
        request.getfixturevalue("dask_client")
        import dask.dataframe as dd

        from shardvec.writer.dask import update_sharded as dask_update

        def dframe(t: pa.Table | None) -> Any:
            return None if t is None else dd.from_pandas(t.to_pandas(types_mapper=pd.ArrowDtype), npartitions=3)
        return lambda u, d, c, **kw: dask_update(dframe(u), dframe(d), c, INPUT, **kw)
    request.getfixturevalue("ray_session")
    import ray.data

    from shardvec.writer.ray import update_sharded as ray_update

    def dataset(t: pa.Table | None) -> Any:
        return None if t is None else ray.data.from_arrow(t).repartition(3)
    return lambda u, d, c, **kw: ray_update(dataset(u), dataset(d), c, INPUT, **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[UpdateResult, list[list[tuple[Any, float, Any]]]]:
    """The single-process update_sharded of the same base and changes, and its answers."""
    root = tmp_path_factory.mktemp("reference")
    build_base(root / "store")
    upserts, deletes = changes()
    ids = sorted(upserts)
    result = update_sharded(upserts={"vectors": np.stack([upserts[i][0] for i in ids]), "ids": np.array(ids),
                                     "payloads": [{"title": upserts[i][1]} for i in ids]},
                            deletes=deletes, config=config(root / "store"))
    return result, answers(root / "store", root / "cache")


def deletes_table(ids: list[int]) -> pa.Table:
    return pa.table({"doc_id": pa.array(ids, type=pa.int64())})


@pytest.mark.parametrize("engine", ENGINES)
def test_an_update_publishes_what_the_single_process_update_publishes(
        request: pytest.FixtureRequest, engine: str, tmp_path: Path,
        reference: tuple[UpdateResult, list[list[tuple[Any, float, Any]]]]) -> None:
    update = make_update(request, engine)
    store = tmp_path / "store"
    base_run = build_base(store)
    upserts, deletes = changes()
    result = update(table(upserts), deletes_table(deletes), config(store))

    single, expected = reference
    report = result.report
    assert (report.upserted, report.replaced, report.deleted, report.missing_deletes) == (40, 25, 20, 3)
    for field in ("upserted", "replaced", "deleted", "missing_deletes", "used_id_index", "rebuilt", "edited_in_place",
                  "shared_shards", "base_imbalance", "imbalance", "rebuild_advised"):
        assert getattr(report, field) == getattr(single.report, field), field
    assert report.upsert_centroid_distance == pytest.approx(single.report.upsert_centroid_distance, rel=1e-12)
    assert report.base_centroid_distance == pytest.approx(single.report.base_centroid_distance, rel=1e-12)
    assert report.base_run_id == base_run and result.build.stats.rows_written == single.build.stats.rows_written
    got = answers(store, tmp_path / "cache")
    assert got == expected
    rows = base_rows()
    rows.update(upserts)
    for i in deletes:
        rows.pop(i, None)
    assert [[hit[0] for hit in hits] for hits in got] == brute_force(rows)

    assert report.edited_in_place, "the tasks edit their shards in place"

    # Deletes only, through the id index the update wrote: each changed shard is rebuilt by a task of
    # its own (no upsert routes there), whole with compact.
    gone = sorted(rows)[:7]
    second = update(None, deletes_table(gone), config(store), compact=True)
    assert (second.report.deleted, second.report.missing_deletes, second.report.upserted) == (7, 0, 0)
    assert second.report.rebuilt and second.report.edited_in_place == []
    assert second.report.used_id_index and second.report.base_run_id == result.build.run_id
    for i in gone:
        del rows[i]
    assert [[hit[0] for hit in hits] for hits in answers(store, tmp_path / "cache2")] == brute_force(rows)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_stale_base_conflicts_and_a_strict_missing_delete_publishes_nothing(
        request: pytest.FixtureRequest, engine: str, tmp_path: Path) -> None:
    update = make_update(request, engine)
    store = tmp_path / "store"
    first = build_base(store)
    current = build_base(store)
    upserts, _ = changes()
    with pytest.raises(PublishConflictError, match="is not the current one"):
        update(None, deletes_table([0]), config(store), base=first)
    with pytest.raises(ShardvecError, match=r"strict: 1 id\(s\) to delete are not in the base snapshot"):
        update(table(dict(list(upserts.items())[:5])), deletes_table([3, 424242]), config(store), strict=True)
    with ShardedVectorReader(s3_prefix=str(store), local_root=str(tmp_path / "cache")) as reader:
        assert reader.snapshot_info().run_id == current
    # The failed runs' rebuilt shards were uploaded, then removed: only the two builds' runs remain.
    assert sorted(p.name for p in (store / "shards").iterdir()) == sorted([f"run_id={first}", f"run_id={current}"])


def test_refusals_name_the_parameter(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    update = make_update(request, "dask")
    store = tmp_path / "store"
    build_base(store)
    with pytest.raises(ConfigValidationError, match="needs df_upserts, df_deletes, or both"):
        update(None, None, config(store))
    with pytest.raises(ConfigValidationError, match="delete_id_col 'doc_id' is not a column of the deletes"):
        update(None, pa.table({"other": pa.array([1])}), config(store))
    limited = config(store)
    limited.rate_limits.max_writes_per_second = 10.0
    with pytest.raises(ConfigValidationError, match="rate_limits.max_writes_per_second=10.0 is not applied"):
        update(None, deletes_table([0]), limited)
    with pytest.raises(ConfigValidationError, match="sharding.num_dbs is 5 but the base snapshot"):
        wrong = config(store)
        wrong.sharding.num_dbs = 5
        update(None, deletes_table([0]), wrong)
    twice = table(dict(list(changes()[0].items())[:2]))
    with pytest.raises(ConfigValidationError, match="appears at rows"):
        update(pa.concat_tables([twice, twice]), None, config(store))


@pytest.mark.parametrize("engine", ["dask", "ray"])
def test_s3_store(request: pytest.FixtureRequest, engine: str, tmp_path: Path, s3_server: dict[str, Any]) -> None:
    from conftest import s3_storage

    update = make_update(request, engine)
    storage = s3_storage(s3_server)
    prefix = s3_server["prefix"]

    def s3_config() -> VectorShardedWriteConfig:
        c = config(Path("unused"))
        return VectorShardedWriteConfig(sharding=c.sharding, s3_prefix=prefix, index_config=c.index_config,
                                        batch_size=100, **storage)

    rows = base_rows()
    ids = sorted(rows)
    write_arrays(np.stack([rows[i][0] for i in ids]), s3_config(), ids=np.array(ids),
                 payloads=[{"title": rows[i][1]} for i in ids])
    upserts, deletes = changes()
    result = update(table(upserts), deletes_table(deletes), s3_config())
    assert (result.report.replaced, result.report.deleted, result.report.missing_deletes) == (25, 20, 3)
    rows.update(upserts)
    for i in deletes:
        rows.pop(i, None)
    with ShardedVectorReader(s3_prefix=prefix, local_root=str(tmp_path / "cache"), **storage) as reader:
        got = [[h.id for h in r.results] for r in reader.batch_search(QUERIES, top_k=10, num_probes=NUM_DBS)]
    assert got == brute_force(rows)


@pytest.mark.parametrize("engine", ENGINES)
def test_rebase_redoes_a_stale_or_raced_update_on_the_current_snapshot(
        request: pytest.FixtureRequest, engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shardvec.vector._distributed_update import DistributedUpdate

    update = make_update(request, engine)
    store = tmp_path / "store"
    first = build_base(store)
    build_base(store)  # now `first` is stale
    held = sorted(base_rows())
    # A stale base at the start: the update is redone on the current snapshot.
    stale = update(None, deletes_table([held[0]]), config(store), base=first, rebase=True)
    assert stale.report.rebased == 1 and stale.report.deleted == 1 and stale.report.base_run_id != first
    # A snapshot published while the tasks ran (a single-process update deleting held[1], just before
    # the driver publishes): the publish conflicts, and the update is redone on that snapshot.
    real_finish = DistributedUpdate.finish
    raced: list[str] = []

    def racing_finish(self: DistributedUpdate, results: Any) -> UpdateResult:
        if not raced:
            raced.append(update_sharded(deletes=[held[1]], config=config(store)).build.run_id)
        return real_finish(self, results)

    monkeypatch.setattr(DistributedUpdate, "finish", racing_finish)
    new_rows = {20_000 + k: (np.full(DIM, 50.0 + k, dtype=np.float32), f"n{k}") for k in range(3)}
    result = update(table(new_rows), deletes_table([held[2]]), config(store), rebase=True)
    assert result.report.rebased == 1 and result.report.base_run_id == raced[0]
    assert result.report.upserted == 3 and result.report.deleted == 1
    # Every change is in the final snapshot: the three deletes and the three new rows (exact search).
    final = {i: base_rows()[i] for i in held[3:]} | new_rows
    got = answers(store, tmp_path / "cache")
    assert [[hit[0] for hit in hits] for hits in got] == brute_force(final)
    with ShardedVectorReader(s3_prefix=str(store), local_root=str(tmp_path / "cache2")) as reader:
        assert reader.snapshot_info().run_id == result.build.run_id
        assert reader.snapshot_info().total_vectors == len(final)
    # The raced attempt's rebuilt shards were removed: the runs left are the builds and the 3 updates.
    assert len(list((store / "shards").iterdir())) == 5
    # Without rebase the same race is a PublishConflictError; with last_writer_wins rebase is refused.
    raced.clear()
    with pytest.raises(PublishConflictError):
        update(None, deletes_table([held[3]]), config(store))
    with pytest.raises(ConfigValidationError, match="rebase cannot take effect with last_writer_wins"):
        update(None, deletes_table([held[4]]), config(store), rebase=True, last_writer_wins=True)
