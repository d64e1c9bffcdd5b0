"""The Spark, Dask and Ray writers on real local clusters: Spark local[2] (3 task tries), a Dask
LocalCluster with 2 worker processes, and a local Ray with 2 CPUs."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import xxhash

from conftest import check_id_index
from shardvec.config import VectorColumnInput
from shardvec.errors import ConfigValidationError, ShardAssignmentError
from shardvec.vector import (
    BuildResult,
    ShardedVectorReader,
    VectorRecord,
    VectorShardedWriteConfig,
    update_sharded,
    write_arrays,
)
from shardvec.vector._distributed import DistributedRun
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig, VectorWriteOptions
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

DIM = 16
ROWS = 1200
NUM_DBS = 4
ENGINES = ["spark", "dask", "ray"]
# The fault hooks' module, importable here and (PYTHONPATH, set before any cluster starts so every
# worker process inherits it) in the workers that unpickle a hook.
WORKER_SUPPORT = str(Path(__file__).resolve().parent / "worker_support")
sys.path.insert(0, WORKER_SUPPORT)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (WORKER_SUPPORT, os.environ.get("PYTHONPATH")) if p)
from fault_hooks import FailFirstAttemptAfterUpload  # noqa: E402
INPUT = VectorColumnInput(vector_col="embedding", id_col="doc_id", payload_cols=["title"])
# EXPLICIT reads each row's shard from "bucket"; the other strategies refuse a shard id column.
EXPLICIT_INPUT = VectorColumnInput(vector_col="embedding", id_col="doc_id", payload_cols=["title"], shard_id_col="bucket")


def input_for(strategy: VectorShardingStrategy) -> VectorColumnInput:
    return EXPLICIT_INPUT if strategy == VectorShardingStrategy.EXPLICIT else INPUT
REGIONS = ["eu", "us", "apac", "latam"]


def make_table(rows: int = ROWS, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((8, DIM)).astype(np.float32) * 5
    vectors = (centers[rng.integers(0, 8, rows)] + rng.standard_normal((rows, DIM))).astype(np.float32)
    return pa.table({
        "doc_id": pa.array(np.arange(rows, dtype=np.int64) * 3),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), DIM),
        "title": pa.array([f"t{i}" for i in range(rows)]),
        "bucket": pa.array(np.arange(rows, dtype=np.int64) % NUM_DBS),
        "region": pa.array([REGIONS[(i * 7) % 5 % len(REGIONS)] for i in range(rows)]),
        "tenant": pa.array(rng.integers(-(2**62), 2**62, rows), type=pa.int64()),
    })


def vectors_of(table: pa.Table) -> np.ndarray:
    return table.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, DIM)


# --- engines --------------------------------------------------------------------------------------


Writer = Callable[[pa.Table, VectorShardedWriteConfig, VectorColumnInput, VectorWriteOptions | None], BuildResult]


def make_writer(request: pytest.FixtureRequest, name: str) -> Writer:
    """A function writing an Arrow table through the engine `name` (3 input partitions)."""
    if name == "spark":
        session = request.getfixturevalue("spark")
        from shardvec.writer.spark import write_sharded

        return lambda t, c, i, o=None: write_sharded(session.createDataFrame(t.to_pandas()).repartition(3), c, i, o)
    if name == "dask":
        request.getfixturevalue("dask_client")
        import dask.dataframe as dd

        from shardvec.writer.dask import write_sharded

        return lambda t, c, i, o=None: write_sharded(
            dd.from_pandas(t.to_pandas(types_mapper=pd.ArrowDtype), npartitions=3), c, i, o)
    request.getfixturevalue("ray_session")
    import ray.data

    from shardvec.writer.ray import write_sharded

    return lambda t, c, i, o=None: write_sharded(ray.data.from_arrow(t).repartition(3), c, i, o)


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> Writer:
    return make_writer(request, request.param)


def config_for(prefix: str, strategy: VectorShardingStrategy, **extra: Any) -> VectorShardedWriteConfig:
    sharding: dict[str, Any] = {"strategy": strategy, "num_dbs": NUM_DBS}
    storage = {k: extra.pop(k) for k in ("s3_connection_options", "credential_provider") if k in extra}
    sharding.update(extra)
    return VectorShardedWriteConfig(sharding=VectorShardingConfig(**sharding), s3_prefix=prefix,
                                    index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2),
                                    batch_size=250, **storage)


def ids_per_shard(result: BuildResult) -> dict[int, list[int]]:
    out = {}
    for shard in result.winners:
        path = shard.db_url.removeprefix("file://") + "/shard.db"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            out[shard.db_id] = sorted(json.loads(r[0])["v"] for r in db.execute("SELECT original_id FROM vec_id_map"))
    return out


def check_snapshot(result: BuildResult, table: pa.Table, prefix: str, cache: Path, **reader_args: Any) -> None:
    """Every id exactly once, in the shard the reader's router picks, and recall@10 = 1.0 at full probing."""
    vectors = vectors_of(table)
    ids = table.column("doc_id").to_numpy()
    assert result.stats.rows_written == len(ids)
    # Every task's attempt is counted (empty shards' and retried ones' too); the phases add up.
    assert result.stats.num_winners == len(result.winners) <= result.stats.num_attempt_results
    d = result.stats.durations
    assert d.total_ms > 0 and d.sharding_ms + d.write_ms + d.manifest_ms <= d.total_ms
    with ShardedVectorReader(s3_prefix=prefix, local_root=str(cache), **reader_args) as reader:
        assert reader.snapshot_info().total_vectors == len(ids)
        explicit = reader.snapshot_info().sharding == VectorShardingStrategy.EXPLICIT
        every = list(range(NUM_DBS))
        for row in range(0, len(ids), 97):
            home = int(table.column("bucket")[row].as_py()) if explicit else reader.route_vector(vectors[row])[0]
            hits = reader.search(vectors[row], top_k=1, shard_ids=[home]).results
            assert hits[0].id == ids[row], f"row {row} is not in shard {home}"
            assert hits[0].payload == {"title": f"t{row}"}
        queries = vectors[::150] + 0.1
        for query, response in zip(queries, reader.batch_search(queries, top_k=10, shard_ids=every), strict=True):
            exact = ids[np.argsort(((vectors - query) ** 2).sum(axis=1), kind="stable")[:10]]
            assert [h.id for h in response.results] == list(exact)
    if prefix.startswith("/"):
        found = sorted(i for shard in ids_per_shard(result).values() for i in shard)
        assert found == sorted(int(i) for i in ids)
        # Each task's id type reached the driver: the manifest records the snapshot's (guarded publishes).
        with sqlite3.connect(result.manifest_ref.removeprefix("file://")) as manifest:
            custom = json.loads(manifest.execute("SELECT custom FROM build_meta").fetchone()[0])
        assert custom["shardvec"]["id_type"] == "int"
        # The driver merged the tasks' id index parts into the snapshot's index, and deleted them.
        assert check_id_index(result.manifest_ref) == len(ids)
        assert not list(Path(prefix, "shards").rglob("id_index.part"))


STRATEGIES = {
    "cluster-trained": dict(strategy=VectorShardingStrategy.CLUSTER, train_centroids=True,
                            centroids_training_sample_size=500),
    "lsh": dict(strategy=VectorShardingStrategy.LSH),
    "explicit": dict(strategy=VectorShardingStrategy.EXPLICIT),
}


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_snapshot_holds_every_id_once_in_its_routed_shard(engine: Writer, strategy: str, tmp_path: Path) -> None:
    table = make_table()
    prefix = str(tmp_path / "store")
    result = engine(table, config_for(prefix, **STRATEGIES[strategy]), input_for(STRATEGIES[strategy]["strategy"]))
    check_snapshot(result, table, prefix, tmp_path / "cache")


def test_all_engines_and_the_python_writer_build_the_same_shards(request: pytest.FixtureRequest,
                                                                 tmp_path: Path) -> None:
    table = make_table(seed=5)
    centroids = vectors_of(table)[:NUM_DBS].copy()
    cases = {
        "cluster": dict(strategy=VectorShardingStrategy.CLUSTER, centroids=centroids),
        "lsh": dict(strategy=VectorShardingStrategy.LSH),
        "explicit": dict(strategy=VectorShardingStrategy.EXPLICIT),
    }
    for case, sharding in cases.items():
        python = write_arrays(vectors_of(table), config_for(str(tmp_path / f"py-{case}"), **sharding),
                              ids=table.column("doc_id").to_numpy(),
                              shard_ids=table.column("bucket").to_numpy() if case == "explicit" else None)
        expected = ids_per_shard(python)
        for name in ENGINES:
            result = make_writer(request, name)(table, config_for(str(tmp_path / f"{name}-{case}"), **sharding),
                                                input_for(sharding["strategy"]))
            assert ids_per_shard(result) == expected, (case, name)


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_a_task_failing_after_upload_is_retried_and_its_objects_removed(engine: Writer, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    table = make_table(seed=7)
    prefix = str(tmp_path / "store")
    task_spec = DistributedRun.task_spec
    monkeypatch.setattr(DistributedRun, "task_spec",
                        lambda run: dataclasses.replace(task_spec(run), after_upload=FailFirstAttemptAfterUpload(2)))
    result = engine(table, config_for(prefix, strategy=VectorShardingStrategy.LSH), INPUT)
    check_snapshot(result, table, prefix, tmp_path / "cache")
    winner = {w.db_id: w for w in result.winners}[2]
    assert winner.attempt >= 1 and winner.db_url.endswith(f"attempt={winner.attempt:02d}")
    db_folder = Path(prefix) / "shards" / f"run_id={result.run_id}" / "db=00002"
    assert sorted(p.name for p in db_folder.iterdir()) == [f"attempt={winner.attempt:02d}"]


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_the_first_update_after_a_distributed_build_finds_its_shards_by_the_id_index(engine: Writer,
                                                                                     tmp_path: Path) -> None:
    table = make_table(seed=13)
    prefix = str(tmp_path / "store")
    config = config_for(prefix, strategy=VectorShardingStrategy.LSH)
    result = engine(table, config, INPUT)
    assert check_id_index(result.manifest_ref) == ROWS
    # Row 5 (id 15) upserted with its own vector, so routed to the shard that holds it: that shard
    # alone is rebuilt (and read), the other three shared.
    update = update_sharded(upserts=[VectorRecord(id=15, vector=vectors_of(table)[5], payload={"title": "new"})],
                            config=config)
    assert update.report.used_id_index is True
    assert (update.report.replaced, len(update.report.rebuilt), update.report.shared_shards) == (1, 1, 3)
    assert check_id_index(update.build.manifest_ref) == ROWS


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_s3_store(engine: Writer, tmp_path: Path, s3_server: dict[str, Any]) -> None:
    table = make_table(seed=9)
    creds = s3_server["credentials"]
    s3 = {"s3_connection_options": s3_server["s3_connection_options"], "credential_provider": lambda: creds}
    result = engine(table, config_for(s3_server["prefix"], strategy=VectorShardingStrategy.LSH, **s3), INPUT)
    check_snapshot(result, table, s3_server["prefix"], tmp_path / "cache", **s3)


@pytest.mark.parametrize("engine", ["dask"], indirect=True)
def test_input_errors_name_the_column(engine: Writer, tmp_path: Path) -> None:
    table = make_table(rows=50)
    config = config_for(str(tmp_path / "s"), strategy=VectorShardingStrategy.LSH)
    with pytest.raises(ConfigValidationError, match="input.id_col is required"):
        engine(table, config, VectorColumnInput(vector_col="embedding"))
    with pytest.raises(ConfigValidationError, match="shard_id_col '_vector_db_id' conflicts"):
        engine(table.append_column("_vector_db_id", pa.array([0] * 50)), config, INPUT)
    with pytest.raises(ConfigValidationError, match=r"input columns \['missing'\]"):
        engine(table, config, VectorColumnInput(vector_col="missing", id_col="doc_id"))
    assert not (tmp_path / "s" / "_CURRENT").exists()


def test_verify_routing_reports_mismatches(tmp_path: Path) -> None:
    from shardvec.vector._distributed import DistributedRun, route_table

    table = make_table(rows=30)
    config = config_for(str(tmp_path / "s"), strategy=VectorShardingStrategy.LSH)
    run = DistributedRun(config, INPUT, None, "vector-test", "Spark", table.column_names)
    plan = run.plan_routing(None)
    routed = route_table(table, plan, run.task_spec())
    bad = routed.set_column(routed.schema.get_field_index("_vector_db_id"), "_vector_db_id",
                            pa.array((np.asarray(routed.column("_vector_db_id")) + 1) % NUM_DBS))
    with pytest.raises(ShardAssignmentError, match=r"Spark/Python vector routing mismatch in 30/30 sampled rows. "
                                                   r"First mismatches: id=0, spark=\d, python=\d"):
        run.verify(bad)
    run.abort(RuntimeError("test over"))


def test_a_worker_routes_every_batch_of_a_plan_with_one_prepared_router(tmp_path: Path) -> None:
    from shardvec._native import _engine
    from shardvec.vector._distributed import DistributedRun, prepared_router, route_table

    table = make_table(rows=300)
    config = config_for(str(tmp_path / "s"), strategy=VectorShardingStrategy.CEL,
                        cel_expr=f"int(shard_hash(tenant) % {NUM_DBS}u)", cel_columns={"tenant": "int"})
    columns = VectorColumnInput(vector_col="embedding", id_col="doc_id")
    run = DistributedRun(config, columns, None, "vector-test", "Spark", table.column_names)
    plan = run.plan_routing(None)
    spec = run.task_spec()
    router = prepared_router(plan)
    assert prepared_router(plan) is router  # built once for this plan
    assert prepared_router(pickle.loads(pickle.dumps(plan))) is not router  # another plan object: its own router
    vectors = vectors_of(table)
    contexts = [{"tenant": t} for t in table.column("tenant").to_pylist()]
    for start in range(0, 300, 30):
        fresh = _engine.route_rows(plan, vectors[start:start + 30], None, start, contexts[start:start + 30])
        prepared = router.route(vectors[start:start + 30], None, start, contexts[start:start + 30])
        np.testing.assert_array_equal(prepared, fresh)
        routed = route_table(table.slice(start, 30), plan, spec, start)
        np.testing.assert_array_equal(np.asarray(routed.column(spec.routing_col)), fresh)
    with pytest.raises(ConfigValidationError, match=r"requires routing_context \(row 7\)"):
        router.route(vectors[:3], None, 7, None)
    run.abort(RuntimeError("test over"))


@pytest.mark.parametrize("kind", ["list<double>", "large_list", "binary", "fixed_size_binary", "sliced"])
def test_vector_columns_of_every_accepted_type_give_the_same_matrix(kind: str) -> None:
    from shardvec.vector._distributed import vectors_from_arrow

    matrix = np.random.default_rng(1).standard_normal((6, DIM)).astype(np.float32)
    column: pa.Array = {
        "list<double>": lambda: pa.array([row.astype(np.float64).tolist() for row in matrix]),
        "large_list": lambda: pa.array([row.tolist() for row in matrix], type=pa.large_list(pa.float32())),
        "binary": lambda: pa.array([row.tobytes() for row in matrix], type=pa.binary()),
        "fixed_size_binary": lambda: pa.array([row.tobytes() for row in matrix], type=pa.binary(4 * DIM)),
        "sliced": lambda: pa.FixedSizeListArray.from_arrays(
            pa.array(np.concatenate([np.zeros(DIM, np.float32), matrix.reshape(-1)])), DIM).slice(1),
    }[kind]()
    assert np.array_equal(vectors_from_arrow(column, DIM, "emb"), matrix)


def test_vector_columns_with_a_wrong_length_row_name_it() -> None:
    from shardvec.vector._distributed import vectors_from_arrow

    rows = [np.ones(DIM, np.float32)] * 6 + [np.ones(3, np.float32)]
    with pytest.raises(ConfigValidationError, match=r"input.vector_col 'emb' row 7: vector has 3 values, expected dim=16"):
        vectors_from_arrow(pa.array([r.tolist() for r in rows]), DIM, "emb", row_offset=1)
    with pytest.raises(ConfigValidationError, match=r"input.vector_col 'emb' row 7: 12 bytes, expected 64"):
        vectors_from_arrow(pa.array([r.tobytes() for r in rows]), DIM, "emb", row_offset=1)
    with pytest.raises(ConfigValidationError, match=r"input.vector_col 'emb' is null at row 3"):
        vectors_from_arrow(pa.array([[1.0] * DIM, None]), DIM, "emb", row_offset=2)


# --- CEL ------------------------------------------------------------------------------------------


def canonical_int(value: int) -> bytes:
    return value.to_bytes(8, "little", signed=True)


CEL_CASES = {
    # One shard per region: the token's index in routing_values.
    "categorical": (dict(strategy=VectorShardingStrategy.CEL, num_dbs=None, cel_expr="region",
                         cel_columns={"region": "string"}, routing_values=REGIONS),
                    {"region": "string"},
                    lambda row: REGIONS.index(row["region"])),
    # Hashed buckets over an int column, checked against an independent xxh3 of its canonical bytes.
    "hashed": (dict(strategy=VectorShardingStrategy.CEL, cel_expr=f"int(shard_hash(tenant) % {NUM_DBS}u)",
                    cel_columns={"tenant": "int"}),
               None,  # routing_context_cols defaults to cel_columns
               lambda row: xxhash.xxh3_64_intdigest(canonical_int(row["tenant"])) % NUM_DBS),
}


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
@pytest.mark.parametrize("case", list(CEL_CASES))
def test_cel_routes_every_row_by_its_expression(engine: Writer, case: str, tmp_path: Path) -> None:
    sharding, context_cols, expected_shard = CEL_CASES[case]
    table = make_table(seed=3)
    prefix = str(tmp_path / "store")
    columns = VectorColumnInput(vector_col="embedding", id_col="doc_id", payload_cols=["title"],
                                routing_context_cols=context_cols)
    result = engine(table, config_for(prefix, **sharding), columns)
    rows = table.to_pylist()
    expected: dict[int, list[int]] = {}
    for row in rows:
        expected.setdefault(expected_shard(row), []).append(row["doc_id"])
    assert ids_per_shard(result) == {db: sorted(ids) for db, ids in expected.items()}

    vectors = vectors_of(table)
    context_col = next(iter(sharding["cel_columns"]))
    with ShardedVectorReader(s3_prefix=prefix, local_root=str(tmp_path / "cache")) as reader:
        for row in range(0, len(rows), 211):
            context = {context_col: rows[row][context_col]}
            home = expected_shard(rows[row])
            in_home = np.flatnonzero([expected_shard(r) == home for r in rows])
            response = reader.search(vectors[row] + 0.05, top_k=10, routing_context=context)
            assert response.num_shards_queried == 1
            distances = ((vectors[in_home] - (vectors[row] + 0.05)) ** 2).sum(axis=1)
            exact = [rows[i]["doc_id"] for i in in_home[np.argsort(distances, kind="stable")[:10]]]
            assert [h.id for h in response.results] == exact


def test_cel_context_columns_must_match_the_declared_types(tmp_path: Path) -> None:
    from shardvec.vector._distributed import DistributedRun

    config = config_for(str(tmp_path / "s"), **CEL_CASES["categorical"][0])
    cases = {
        "has no column for CEL variable 'region'": {"zone": "string"},
        "is 'int' but sharding.cel_columns declares 'string'": {"region": "int"},
    }
    for message, cols in cases.items():
        columns = VectorColumnInput(vector_col="embedding", id_col="doc_id", routing_context_cols=cols)
        with pytest.raises(ConfigValidationError, match=message):
            DistributedRun(config, columns, None, "vector-dask", "Dask", ["embedding", "doc_id", "region"])
    lsh = config_for(str(tmp_path / "l"), strategy=VectorShardingStrategy.LSH)
    columns = VectorColumnInput(vector_col="embedding", id_col="doc_id", routing_context_cols={"region": "string"})
    with pytest.raises(ConfigValidationError, match="applies to CEL sharding only"):
        DistributedRun(lsh, columns, None, "vector-dask", "Dask", None)
    columns = VectorColumnInput(vector_col="embedding", id_col="doc_id")
    with pytest.raises(ConfigValidationError, match=r"input columns \['region'\] are not in the data"):
        DistributedRun(config, columns, None, "vector-dask", "Dask", ["embedding", "doc_id"])


# --- credentials, layout and run registry ---------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_a_credential_provider_is_resolved_in_each_task(engine: Writer, tmp_path: Path,
                                                        s3_server: dict[str, Any]) -> None:
    from shardvec.credentials import StaticCredentialProvider

    table = make_table(rows=300, seed=4)
    provider = StaticCredentialProvider(**s3_server["credentials"])
    s3 = {"s3_connection_options": s3_server["s3_connection_options"], "credential_provider": provider}
    result = engine(table, config_for(s3_server["prefix"], strategy=VectorShardingStrategy.LSH, **s3), INPUT)
    check_snapshot(result, table, s3_server["prefix"], tmp_path / "cache", **s3)


def test_task_specs_carry_a_picklable_provider_instead_of_its_keys(tmp_path: Path, s3_server: dict[str, Any],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from shardvec.credentials import EnvCredentialProvider

    creds = s3_server["credentials"]
    secret = creds["secret_access_key"]
    monkeypatch.setenv("S3_ACCESS_KEY_ID", creds["access_key_id"])
    monkeypatch.setenv("S3_SECRET_ACCESS_KEY", secret)
    options = s3_server["s3_connection_options"]
    columns = ["embedding", "doc_id", "title"]
    run = DistributedRun(config_for(s3_server["prefix"], VectorShardingStrategy.LSH, s3_connection_options=options,
                                    credential_provider=EnvCredentialProvider()), INPUT, None, "vector-test", "Test",
                         columns)
    spec = run.task_spec()
    assert secret.encode() not in pickle.dumps(spec) and secret not in repr(spec)
    assert spec.task.store_options.secret_access_key == ""
    run.abort(RuntimeError("test over"))
    # A provider that does not pickle is resolved on the driver: its keys travel, masked in reprs.
    lam = DistributedRun(config_for(s3_server["prefix"], VectorShardingStrategy.LSH, s3_connection_options=options,
                                    credential_provider=lambda: creds), INPUT, None, "vector-test", "Test", columns)
    spec = lam.task_spec()
    assert spec.credential_provider is None and spec.task.store_options.secret_access_key == secret
    assert secret not in repr(spec)
    lam.abort(RuntimeError("test over"))


@pytest.mark.parametrize("engine", ["dask"], indirect=True)
def test_layout_and_run_registry_take_effect_in_distributed_writes(engine: Writer, tmp_path: Path) -> None:
    from shardvec.config import WriterOutputConfig
    from shardvec.run_registry import InMemoryRunRegistry, RunStatus

    registry = InMemoryRunRegistry()
    table = make_table(rows=300, seed=5)
    cfg = config_for(str(tmp_path / "s"), VectorShardingStrategy.LSH)
    cfg.output = WriterOutputConfig(shard_prefix="blobs", db_path_template="part{db_id:02d}",
                                    run_registry_prefix="registry")
    cfg.run_registry = registry
    result = engine(table, cfg, INPUT)
    for shard in result.winners:
        assert shard.db_url.endswith(f"/blobs/run_id={result.run_id}/part{shard.db_id:02d}/attempt={shard.attempt:02d}")
    assert [p.parent.parent.name for p in (tmp_path / "s").rglob("run.yaml")] == ["registry"]
    [(_, record)] = list(registry.list_records())
    assert (record.status, record.manifest_ref, record.writer_type) == \
        (RunStatus.SUCCEEDED, result.manifest_ref, "vector-dask")
    check_snapshot(result, table, str(tmp_path / "s"), tmp_path / "cache")
