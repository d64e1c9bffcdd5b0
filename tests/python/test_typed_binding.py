"""The typed boundary to the engine (shardvec._engine): typed classes refuse names they do not have,
the fields the engine computes reach Python, plans pickle to another process and route the same,
a query matrix is read in place, and the shipped stubs type-check a typed use under mypy --strict."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xxhash

import shardvec
from shardvec._native import _engine
from shardvec.vector import ShardedVectorReader, VectorRecord, VectorShardedWriteConfig, write_arrays, write_sharded
from shardvec.vector._bridge import store_options, write_config
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardDetail, VectorShardingStrategy, VectorSnapshotInfo

DIM = 8
HERE = Path(__file__).resolve().parent


def lsh_config(prefix: str, **storage: Any) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=4, strategy=VectorShardingStrategy.LSH, num_probes=2),
        s3_prefix=prefix, index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2), **storage)


def storage_for(where: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    if where == "local":
        return str(tmp_path / "store"), {}
    server = request.getfixturevalue("s3_server")
    creds = server["credentials"]
    return server["prefix"], {"s3_connection_options": server["s3_connection_options"],
                              "credential_provider": lambda: creds}


# --- typed classes: a name they do not have is refused ------------------------------------------


def test_a_misspelled_field_is_refused_naming_it() -> None:
    with pytest.raises(TypeError, match="StoreOptions has no field 'endpont_url'"):
        _engine.StoreOptions(endpont_url="http://127.0.0.1:9000")
    with pytest.raises(TypeError, match="WriteConfig has no field 'batchsize'"):
        _engine.WriteConfig(batchsize=10)
    with pytest.raises(AttributeError, match="num_dbz"):
        _engine.RoutingPlan().num_dbz = 3  # type: ignore[attr-defined]
    # The bridge's one conversion of store options goes through the same constructor.
    with pytest.raises(TypeError, match="StoreOptions has no field 'endpont_url'"):
        store_options({"endpont_url": "http://127.0.0.1:9000"})


def test_a_value_of_the_wrong_type_is_refused_naming_the_field() -> None:
    with pytest.raises(TypeError, match=r"WriteConfig.batch_size cannot be 'many' \(str\)"):
        _engine.WriteConfig(batch_size="many")
    with pytest.raises(TypeError, match=r"ShardInfo.db_id cannot be 1.5 \(float\)"):
        _engine.ShardInfo(db_id=1.5)


def test_the_bridge_fills_every_engine_field_from_the_config(tmp_path: Path) -> None:
    centroids = np.arange(2 * DIM, dtype=np.float32).reshape(2, DIM)
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(centroids=centroids, num_probes=2), s3_prefix=str(tmp_path),
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2), batch_size=77,
        s3_connection_options={"connect_timeout": 4, "read_timeout": 9.5, "verify": False, "max_attempts": 2})
    engine = write_config(config, last_writer_wins=True)
    assert (engine.store, engine.batch_size, engine.index.dim) == (str(tmp_path), 77, DIM)
    assert engine.index.metric == _engine.Metric.L2
    assert engine.sharding.strategy == _engine.Strategy.CLUSTER and engine.sharding.num_probes == 2
    assert np.array_equal(engine.sharding.centroids, centroids)
    assert engine.publish_policy == _engine.PublishPolicy.LAST_WRITER_WINS
    options = engine.store_options
    assert (options.connect_timeout_seconds, options.request_timeout_seconds) == (4.0, 9.5)
    assert (options.verify_tls, options.max_attempts) == (False, 2)


# --- the fields the engine computes reach Python ---------------------------------------------------


@pytest.mark.parametrize("where", ["local", "s3"])
def test_sizes_digests_and_snapshot_times_reach_python(tmp_path: Path, where: str,
                                                      request: pytest.FixtureRequest) -> None:
    prefix, storage = storage_for(where, tmp_path, request)
    data = np.random.default_rng(3).standard_normal((300, DIM)).astype(np.float32)
    result = write_arrays(data, lsh_config(prefix, **storage))
    with ShardedVectorReader(s3_prefix=prefix, local_root=str(tmp_path / "cache"), **storage) as reader:
        info = reader.snapshot_info()
        assert isinstance(info, VectorSnapshotInfo)  # the reference's fields first, then the engine's
        assert info.num_probes == 2
        assert info.created_at.startswith("20") and info.published_at.startswith("20")
        assert (info.cel_expr, info.cel_columns, info.routing_values) == (None, None, None)
        details = {d.db_id: d for d in reader.shard_details() if d.vector_count}
        assert all(isinstance(d, VectorShardDetail) for d in details.values())
    assert sorted(details) == [w.db_id for w in result.winners]
    for winner in result.winners:
        detail = details[winner.db_id]
        assert (detail.db_bytes, detail.digest) == (winner.db_bytes, winner.digest)
        if where == "local":  # the bytes on disk are what the manifest says
            data_file = Path(winner.db_url.removeprefix("file://")) / "shard.db"
            raw = data_file.read_bytes()
            assert detail.db_bytes == len(raw)
            assert detail.digest == "xxh3:" + xxhash.xxh3_64_hexdigest(raw)


def test_a_cel_snapshot_reports_its_expression_and_tokens(tmp_path: Path) -> None:
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(strategy=VectorShardingStrategy.CEL, cel_expr="region",
                                      cel_columns={"region": "string"}, routing_values=["eu", "us"]),
        s3_prefix=str(tmp_path / "s"), index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2))
    rng = np.random.default_rng(4)
    write_sharded([VectorRecord(id=i, vector=rng.standard_normal(DIM), routing_context={"region": ["eu", "us"][i % 2]})
                   for i in range(20)], config)
    with ShardedVectorReader(s3_prefix=str(tmp_path / "s"), local_root=str(tmp_path / "cache")) as reader:
        info = reader.snapshot_info()
    assert (info.cel_expr, info.cel_columns, info.routing_values) == ("region", {"region": "string"}, ["eu", "us"])
    assert info.num_probes == 1 and info.sharding == VectorShardingStrategy.CEL


# --- plans pickle to another process and route the same ----------------------------------------

_CHILD = textwrap.dedent("""
    import pickle, sys
    from shardvec._native import _engine
    plan, vectors, contexts = pickle.load(sys.stdin.buffer)
    routed = _engine.route_rows(plan, vectors, routing_contexts=contexts)
    pickle.dump((plan, routed.tolist()), sys.stdout.buffer)
""")


def _plan(sharding: VectorShardingConfig, sample: np.ndarray | None, tmp_path: Path) -> _engine.RoutingPlan:
    config = VectorShardedWriteConfig(sharding=sharding, s3_prefix=str(tmp_path),
                                      index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.COSINE))
    return _engine.plan_routing(write_config(config, last_writer_wins=False), sample)


@pytest.mark.parametrize("strategy", ["cluster", "lsh", "cel"])
def test_a_pickled_plan_routes_identically_in_another_process(tmp_path: Path, strategy: str) -> None:
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((500, DIM)).astype(np.float32)
    contexts = None
    if strategy == "cluster":
        plan = _plan(VectorShardingConfig(num_dbs=6, train_centroids=True, num_probes=3), vectors[:200], tmp_path)
        assert plan.centroids is not None and plan.centroids.shape == (6, DIM)
    elif strategy == "lsh":
        plan = _plan(VectorShardingConfig(num_dbs=8, strategy=VectorShardingStrategy.LSH), None, tmp_path)
        assert plan.hyperplanes is not None
    else:
        plan = _plan(VectorShardingConfig(strategy=VectorShardingStrategy.CEL, cel_expr="tag",
                                          cel_columns={"tag": "bytes"}, routing_values=[b"a", b"b", b"c"]),
                     None, tmp_path)
        contexts = [{"tag": [b"a", b"b", b"c"][i % 3]} for i in range(len(vectors))]
    here = _engine.route_rows(plan, vectors, routing_contexts=contexts).tolist()
    child = subprocess.run([sys.executable, "-c", _CHILD], input=pickle.dumps((plan, vectors, contexts)),
                           capture_output=True, check=True, timeout=120)
    unpickled, there = pickle.loads(child.stdout)
    assert there == here
    assert unpickled == plan and unpickled.__getstate__().keys() == plan.__getstate__().keys()
    assert len(set(here)) > 1


def test_tasks_shard_infos_and_store_options_pickle() -> None:
    task = _engine.ShardTask(store="s3://b/p", run_id="r1", db_id=3, dim=DIM, metric=_engine.Metric.L2,
                             store_options=_engine.StoreOptions(endpoint_url="http://127.0.0.1:1", max_attempts=2))
    info = _engine.ShardInfo(db_id=3, db_url="file:///x/attempt=01", attempt=1, row_count=9, db_bytes=4096,
                             checkpoint_id="c", digest="xxh3:0123456789abcdef")
    for value in (task, info, task.store_options):
        copy = pickle.loads(pickle.dumps(value))
        assert copy == value and copy is not value
    assert pickle.loads(pickle.dumps(task)).store_options.endpoint_url == "http://127.0.0.1:1"


# --- a query matrix is read in place -----------------------------------------------------------

_HUGE_QUERIES = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from shardvec.vector import ShardedVectorReader
    store, cache, path, rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    reader = ShardedVectorReader(s3_prefix=store, local_root=cache, max_workers=1)
    queries = np.memmap(path, dtype=np.float32, mode="r", shape=(rows, 9))  # 9 columns; the snapshot has 8
    data_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmData:"))
    # A copy of the matrix (about 2 GiB) would need far more than this: it would be a MemoryError.
    limit = data_kb * 1024 + (256 << 20)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    try:
        reader.batch_search(queries, top_k=3)
    except MemoryError:
        print("MemoryError")
    except Exception as error:
        print(type(error).__name__, error)
""")


def test_a_huge_read_only_query_matrix_is_not_copied(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    write_arrays(np.random.default_rng(6).standard_normal((40, DIM)).astype(np.float32), lsh_config(store))
    path = tmp_path / "queries.f32"
    rows = (2 << 30) // (9 * 4)
    with open(path, "wb") as f:
        f.truncate(rows * 9 * 4)  # sparse: no disk blocks, no memory until read
    child = subprocess.run([sys.executable, "-c", _HUGE_QUERIES, store, str(tmp_path / "cache"), str(path),
                            str(rows)], capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    assert "queries have 9 columns, but the snapshot's dim is 8" in child.stdout, child.stdout


def test_float64_and_strided_queries_are_converted_once_and_answer_the_same(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    write_arrays(np.random.default_rng(7).standard_normal((200, DIM)).astype(np.float32), lsh_config(store))
    queries = np.random.default_rng(8).standard_normal((10, DIM)).astype(np.float32)
    wide = np.zeros((10, 2 * DIM), dtype=np.float32)
    wide[:, ::2] = queries
    with ShardedVectorReader(s3_prefix=store, local_root=str(tmp_path / "cache")) as reader:
        expected = [[(h.id, h.score) for h in r.results] for r in reader.batch_search(queries, top_k=5)]
        for variant in (queries.astype(np.float64), wide[:, ::2], np.asfortranarray(queries)):
            got = [[(h.id, h.score) for h in r.results] for r in reader.batch_search(variant, top_k=5)]
            assert got == expected


# --- the stubs ship in the package and type-check a typed use ------------------------------------


def _mypy(target: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MYPYPATH": ""}
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull,
                           str(target)], capture_output=True, text=True, env=env, cwd=target.parent, timeout=300)


def test_the_stubs_ship_beside_the_module() -> None:
    package = Path(shardvec.__file__).parent
    stub = (package / "_engine.pyi").read_text()
    assert (package / "py.typed").exists()
    for name in ("class WriteConfig", "class RoutingPlan", "def __getstate__", "def plan_routing",
                 "def db_bytes(self) -> int", "def created_at(self) -> str"):
        assert name in stub, name


def test_mypy_strict_accepts_the_typed_usage_file() -> None:
    checked = _mypy(HERE / "typed_usage.py")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_mypy_strict_catches_a_misspelled_field(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong_usage.py"
    wrong.write_text("from shardvec._native import _engine\n\n"
                     "def dbs(plan: _engine.RoutingPlan) -> int:\n    return plan.num_dbz\n")
    checked = _mypy(wrong)
    assert checked.returncode == 1
    assert '"RoutingPlan" has no attribute "num_dbz"' in checked.stdout, checked.stdout
