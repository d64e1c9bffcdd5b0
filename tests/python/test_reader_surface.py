"""The rest of shardyfusion's reader surface, over the engine, on a folder and on the S3 test server:
``shard_for_id``, ``shardvec.vector.sharding`` (against the reader's own routing and the writer's
placement), ``SqliteVecShardReader`` / ``SqliteVecAdapter`` (one shard file on its own),
``MetricEvent`` and the type names a shardyfusion program imports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import shards_downloaded
import shardvec.vector
import shardvec.vector.types
from shardvec import VectorSpec
from shardvec.config import WriterOutputConfig
from shardvec.errors import (
    ConfigValidationError,
    ReaderStateError,
    ShardvecError,
    SqliteVecAdapterError,
    VectorSearchError,
)
from shardvec.metrics import MetricEvent
from shardvec.sqlite_vec_adapter import SqliteVecAdapter, SqliteVecShardReader
from shardvec.vector import ShardedVectorReader, VectorShardedWriteConfig, write_arrays
from shardvec.vector import sharding
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, ShardDetail, VectorShardingStrategy

DIM = 12
ROWS = 400
RNG = np.random.default_rng(11)
# Four separated clusters, so every CLUSTER shard has rows.
CENTERS = RNG.standard_normal((4, DIM)).astype(np.float32) * 6
VECTORS = (CENTERS[np.arange(ROWS) % 4] + RNG.standard_normal((ROWS, DIM))).astype(np.float32)
QUERIES = RNG.standard_normal((60, DIM)).astype(np.float32) * 4
PAYLOADS = [{"row": i, "tag": f"t{i % 7}"} for i in range(ROWS)]


class Store:
    """A store prefix (a folder or a fresh S3 prefix) and the keyword arguments that reach it."""

    def __init__(self, prefix: str, storage: dict[str, Any], tmp_path: Path) -> None:
        self.prefix = prefix
        self.storage = storage
        self.tmp_path = tmp_path
        self.folders = 0

    def folder(self, name: str) -> str:
        self.folders += 1
        return str(self.tmp_path / f"{name}-{self.folders}")

    def publish(self, name: str, sharding_config: VectorShardingConfig, metric: DistanceMetric) -> str:
        prefix = f"{self.prefix}/{name}"
        config = VectorShardedWriteConfig(
            sharding=sharding_config, s3_prefix=prefix,
            index_config=VectorIndexConfig(dim=DIM, metric=metric),
            output=WriterOutputConfig(local_root=self.folder("build")), **self.storage)
        write_arrays(VECTORS, config, ids=np.arange(ROWS, dtype=np.int64), payloads=PAYLOADS)
        return prefix

    def reader(self, prefix: str, **kwargs: Any) -> ShardedVectorReader:
        return ShardedVectorReader(s3_prefix=prefix, local_root=self.folder("cache"), **self.storage, **kwargs)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        creds = server["credentials"]
        return Store(server["prefix"], {"s3_connection_options": server["s3_connection_options"],
                                        "credential_provider": lambda: creds}, tmp_path)
    return Store(str(tmp_path / "store"), {}, tmp_path)


def cluster_config(**kwargs: Any) -> VectorShardingConfig:
    return VectorShardingConfig(strategy=VectorShardingStrategy.CLUSTER, num_probes=2, **kwargs)


# --- shardvec.vector.sharding ----------------------------------------------------------------------


@pytest.mark.parametrize("metric", [DistanceMetric.COSINE, DistanceMetric.L2])
def test_the_sharding_module_routes_every_query_as_the_reader_does(store: Store, metric: DistanceMetric) -> None:
    centroids = sharding.train_centroids_kmeans(VECTORS[::3], 5)
    hyperplanes = sharding.lsh_generate_hyperplanes(6, DIM, seed=7)
    cluster = store.publish("cluster", cluster_config(centroids=centroids), metric)
    lsh = store.publish("lsh", VectorShardingConfig(strategy=VectorShardingStrategy.LSH, num_dbs=5, num_hash_bits=6,
                                                    hyperplanes=hyperplanes), metric)
    with store.reader(cluster) as reader:
        for query in QUERIES:
            for probes in (1, 3, 5):
                expected = reader.route_vector(query, num_probes=probes)
                assert sharding.route_vector_to_shards(
                    query, strategy=VectorShardingStrategy.CLUSTER, num_dbs=5, num_probes=probes, metric=metric,
                    centroids=centroids) == expected
                assert sharding.cluster_probe_shards(query, centroids, probes, metric) == expected
            assert sharding.cluster_assign(query, centroids, metric) == reader.route_vector(query, num_probes=1)[0]
    with store.reader(lsh) as reader:
        for query in QUERIES:
            for probes in (1, 2, 5):
                expected = reader.route_vector(query, num_probes=probes)
                assert sharding.route_vector_to_shards(
                    query, strategy="lsh", num_dbs=5, num_probes=probes, hyperplanes=hyperplanes) == expected
                assert sharding.lsh_probe_shards(query, hyperplanes, 5, probes) == expected
            assert sharding.lsh_assign(query, hyperplanes, 5) == expected[0]
            assert sharding.lsh_hash(query, hyperplanes) % 5 == expected[0]


def test_assign_names_the_shard_the_writer_put_each_vector_in(store: Store) -> None:
    centroids = CENTERS + 0.5
    hyperplanes = sharding.lsh_generate_hyperplanes(8, DIM)
    cluster = store.publish("cluster", cluster_config(centroids=centroids), DistanceMetric.L2)
    lsh = store.publish("lsh", VectorShardingConfig(strategy=VectorShardingStrategy.LSH, num_dbs=3,
                                                    hyperplanes=hyperplanes), DistanceMetric.L2)
    cluster_shards = sharding.cluster_assign_batch(VECTORS, centroids, DistanceMetric.L2)
    lsh_shards = sharding.lsh_assign_batch(VECTORS, hyperplanes, 3)
    assert cluster_shards.dtype == np.int64 and lsh_shards.dtype == np.int64
    for prefix, shards in ((cluster, cluster_shards), (lsh, lsh_shards)):
        with store.reader(prefix) as reader:
            counts = {d.db_id: d.vector_count for d in reader.shard_details()}
            assert counts == {s: int(np.sum(shards == s)) for s in counts}
            for row in range(0, ROWS, 9):
                hit = reader.search(VECTORS[row], top_k=1, shard_ids=[int(shards[row])]).results[0]
                assert (hit.id, hit.score) == (row, pytest.approx(0.0, abs=1e-3))
    assert [sharding.cluster_assign(v, centroids, "l2") for v in VECTORS[:40]] == cluster_shards[:40].tolist()
    assert [sharding.lsh_assign(v, hyperplanes, 3) for v in VECTORS[:40]] == lsh_shards[:40].tolist()


def test_the_writers_own_centroids_and_hyperplanes_come_back(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"), {}, tmp_path)
    trained = store.publish("trained", cluster_config(num_dbs=4, train_centroids=True), DistanceMetric.COSINE)
    hashed = store.publish("hashed", VectorShardingConfig(strategy=VectorShardingStrategy.LSH, num_dbs=4),
                           DistanceMetric.COSINE)
    (centroids_file,) = Path(trained, "vector_meta").glob("run_id=*/centroids.npy")
    (hyperplanes_file,) = Path(hashed, "vector_meta").glob("run_id=*/hyperplanes.npy")
    # Every row is the writer's sample here (fewer than its 100000 cap), in order.
    centroids = sharding.train_centroids_kmeans(VECTORS, 4)
    assert centroids.dtype == np.float32 and centroids.shape == (4, DIM)
    np.testing.assert_array_equal(centroids, np.load(centroids_file))
    np.testing.assert_array_equal(sharding.lsh_generate_hyperplanes(8, DIM), np.load(hyperplanes_file))
    np.testing.assert_array_equal(sharding.train_centroids_kmeans(VECTORS, 4, max_iter=100, seed=42), centroids)
    assert not np.array_equal(sharding.train_centroids_kmeans(VECTORS, 4, seed=1), centroids)


def test_shard_ids_explicit_and_cel_dispatch() -> None:
    query = QUERIES[0]
    assert sharding.route_vector_to_shards(query, strategy="explicit", num_dbs=4, num_probes=1,
                                           shard_ids=[3, 1]) == [3, 1]
    with pytest.raises(ConfigValidationError, match=r"shard_ids contains 4, outside \[0, 4\)"):
        sharding.route_vector_to_shards(query, strategy="explicit", num_dbs=4, num_probes=1, shard_ids=[4])
    with pytest.raises(ConfigValidationError, match="EXPLICIT sharding requires shard_ids"):
        sharding.route_vector_to_shards(query, strategy=VectorShardingStrategy.EXPLICIT, num_dbs=4, num_probes=1)
    cel = {"cel_expr": "region", "cel_columns": {"region": "string"}, "routing_values": ["eu", "us", "apac"]}
    for position, region in enumerate(["eu", "us", "apac"]):
        assert sharding.route_vector_to_shards(query, strategy="cel", num_dbs=3, num_probes=1,
                                               routing_context={"region": region}, **cel) == [position]
    assert sharding.route_vector_to_shards(query, strategy="cel", num_dbs=4, num_probes=1,
                                           routing_context={"t": 7}, cel_expr="t % 4",
                                           cel_columns={"t": "int"}) == [3]
    with pytest.raises(ConfigValidationError, match="CEL sharding requires routing_context"):
        sharding.route_vector_to_shards(query, strategy="cel", num_dbs=3, num_probes=1, **cel)
    with pytest.raises(ConfigValidationError, match="CEL sharding requires cel_expr and cel_columns"):
        sharding.route_vector_to_shards(query, strategy="cel", num_dbs=3, num_probes=1, routing_context={})
    with pytest.raises(ConfigValidationError, match="CLUSTER sharding requires centroids"):
        sharding.route_vector_to_shards(query, strategy="cluster", num_dbs=3, num_probes=1)
    with pytest.raises(ConfigValidationError, match="LSH sharding requires hyperplanes"):
        sharding.route_vector_to_shards(query, strategy="lsh", num_dbs=3, num_probes=1)
    with pytest.raises(ConfigValidationError, match="strategy must be one of"):
        sharding.route_vector_to_shards(query, strategy="hnsw", num_dbs=3, num_probes=1)


def test_bad_routing_inputs_are_refused_by_name() -> None:
    centroids = CENTERS
    planes = sharding.lsh_generate_hyperplanes(4, DIM)
    with pytest.raises(ConfigValidationError, match="metric must be one of"):
        sharding.cluster_assign(QUERIES[0], centroids, DistanceMetric.DOT_PRODUCT)
    with pytest.raises(ConfigValidationError, match="num_dbs must be >= 1, got 0"):
        sharding.lsh_assign(QUERIES[0], planes, 0)
    with pytest.raises(ConfigValidationError, match="num_probes must be >= 0, got -1"):
        sharding.cluster_probe_shards(QUERIES[0], centroids, -1)
    assert sharding.cluster_probe_shards(QUERIES[0], centroids, 0) == []
    with pytest.raises(ConfigValidationError, match="query has 3 values, expected dim=12"):
        sharding.cluster_probe_shards(QUERIES[0][:3], centroids, 1)
    with pytest.raises(ConfigValidationError, match=r"query\[2\] is nan"):
        bad = QUERIES[0].copy()
        bad[2] = np.nan
        sharding.lsh_probe_shards(bad, planes, 4, 1)
    with pytest.raises(ConfigValidationError, match="num_dbs \\(5\\) does not match the 4 centroids"):
        sharding.route_vector_to_shards(QUERIES[0], strategy="cluster", num_dbs=5, num_probes=1, centroids=centroids)
    with pytest.raises(ConfigValidationError, match="Need at least 5 vectors to train 5 centroids, got 3"):
        sharding.train_centroids_kmeans(VECTORS[:3], 5)
    with pytest.raises(ConfigValidationError, match=r"num_hash_bits must be in \[1, 64\]"):
        sharding.lsh_generate_hyperplanes(65, DIM)
    with pytest.raises(ConfigValidationError, match="hyperplanes has 12 columns but the vector has 3 values"):
        sharding.lsh_hash(QUERIES[0][:3], planes)
    with pytest.raises(ConfigValidationError, match="centroids must be a 2-D array"):
        sharding.cluster_assign(QUERIES[0], CENTERS[0])


# --- shard_for_id ----------------------------------------------------------------------------------


def test_shard_for_id_is_the_detail_of_that_shard(store: Store) -> None:
    # EXPLICIT rows into shards 0 and 2 of 4: shards 1 and 3 stay empty.
    prefix = f"{store.prefix}/explicit"
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(strategy=VectorShardingStrategy.EXPLICIT, num_dbs=4), s3_prefix=prefix,
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2),
        output=WriterOutputConfig(local_root=store.folder("build")), **store.storage)
    write_arrays(VECTORS[:10], config, shard_ids=[0, 2] * 5)
    reader = store.reader(prefix)
    details = reader.shard_details()
    for db_id in range(4):
        detail = reader.shard_for_id(db_id)
        assert isinstance(detail, ShardDetail)
        assert detail == details[db_id]
    assert reader.shard_for_id(2).vector_count == 5 and reader.shard_for_id(2).db_url is not None
    assert (reader.shard_for_id(3).db_url, reader.shard_for_id(3).vector_count) == (None, 0)
    for bad in (4, -1):
        with pytest.raises(ConfigValidationError, match=rf"shard_id {bad} is outside \[0, 4\) \(num_dbs\)"):
            reader.shard_for_id(bad)
    with pytest.raises(ConfigValidationError, match="shard_id must be an int"):
        reader.shard_for_id("2")  # type: ignore[arg-type]
    reader.close()
    with pytest.raises(ReaderStateError):
        reader.shard_for_id(0)


# --- SqliteVecShardReader and SqliteVecAdapter -----------------------------------------------------


def test_a_shard_file_searched_alone_answers_as_the_reader_does(store: Store) -> None:
    prefix = store.publish("cluster", cluster_config(num_dbs=4, train_centroids=True), DistanceMetric.COSINE)
    with store.reader(prefix) as reader:
        for detail in reader.shard_details():
            assert detail.db_url is not None
            local_dir = Path(store.folder("shard"))
            with SqliteVecShardReader(db_url=detail.db_url, local_dir=local_dir, checkpoint_id=detail.checkpoint_id,
                                      **store.storage) as shard:
                for query in QUERIES[:15]:
                    alone = shard.search(query, 7)
                    routed = reader.search(query, top_k=7, shard_ids=[detail.db_id]).results
                    assert [(h.id, h.score, h.payload) for h in alone] == [(h.id, h.score, h.payload) for h in routed]
                    assert len(alone) == 7 and alone[0].payload == PAYLOADS[alone[0].id]
                assert shard.get(b"any key") is None  # a vector snapshot's kv table is empty
            assert (local_dir / "shard.db").stat().st_size == detail.db_bytes
            with pytest.raises(SqliteVecAdapterError, match="Reader already closed"):
                shard.search(QUERIES[0], 1)


def test_a_shard_file_is_downloaded_once_per_db_url_and_checkpoint(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"), {}, tmp_path)
    prefix = store.publish("one", VectorShardingConfig(strategy=VectorShardingStrategy.LSH, num_dbs=1),
                           DistanceMetric.L2)
    with store.reader(prefix) as reader:
        detail = reader.shard_for_id(0)
    assert detail.db_url is not None and detail.checkpoint_id is not None
    local = tmp_path / "local"
    SqliteVecShardReader(db_url=detail.db_url, local_dir=local, checkpoint_id=detail.checkpoint_id).close()
    first = (local / "shard.db").stat().st_ino
    assert json.loads((local / "shard.identity.json").read_text()) == {
        "db_url": detail.db_url, "checkpoint_id": detail.checkpoint_id}
    SqliteVecShardReader(db_url=detail.db_url, local_dir=local, checkpoint_id=detail.checkpoint_id).close()
    assert (local / "shard.db").stat().st_ino == first  # reused
    SqliteVecShardReader(db_url=detail.db_url, local_dir=local, checkpoint_id="another").close()
    assert (local / "shard.db").stat().st_ino != first  # another identity: fetched again


def test_a_local_dir_others_can_write_is_refused_before_anything_is_fetched(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    with SqliteVecAdapter(db_url=str(remote), local_dir=tmp_path / "build",
                          vector_spec=VectorSpec(dim=DIM, metric="l2")) as adapter:
        adapter.write_vector_batch(np.arange(10), VECTORS[:10])
    assert (tmp_path / "build").stat().st_mode & 0o777 == 0o700
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    with pytest.raises(ConfigValidationError, match=r"SqliteVecShardReader local_dir.*'.*open' is not private: its mode 0777"):
        SqliteVecShardReader(db_url=str(remote), local_dir=open_dir)
    assert list(open_dir.iterdir()) == []
    with pytest.raises(ConfigValidationError, match=r"SqliteVecAdapter local_dir.*is not private"):
        SqliteVecAdapter(db_url=str(remote), local_dir=open_dir, vector_spec=VectorSpec(dim=DIM))


def test_a_shard_file_that_does_not_open_is_refused_and_fetched_again(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "shard.db").write_bytes(b"not sqlite " * 100)
    local = tmp_path / "local"
    with pytest.raises(VectorSearchError, match="file is not a database"):
        SqliteVecShardReader(db_url=str(remote), local_dir=local)
    assert not (local / "shard.identity.json").exists()
    with pytest.raises(ShardvecError, match="does not exist"):
        SqliteVecShardReader(db_url=str(tmp_path / "nowhere"), local_dir=tmp_path / "other")
    # The remote file repaired, the same local folder fetches it again and serves it.
    with SqliteVecAdapter(db_url=str(tmp_path / "good"), local_dir=tmp_path / "build",
                          vector_spec=VectorSpec(dim=DIM, metric="l2")) as adapter:
        adapter.write_vector_batch(np.arange(ROWS), VECTORS)
    shutil.copyfile(tmp_path / "good" / "shard.db", remote / "shard.db")
    with SqliteVecShardReader(db_url=str(remote), local_dir=local) as shard:
        assert shard.search(VECTORS[5], 1)[0].id == 5


def test_the_adapter_builds_one_shard_that_searches_exactly(store: Store) -> None:
    db_url = f"{store.prefix}/adapter/db=00000"
    ids = [f"doc-{i}" for i in range(ROWS)]
    build_dir = Path(store.folder("adapter"))
    with SqliteVecAdapter(db_url=db_url, local_dir=build_dir, vector_spec=VectorSpec(dim=DIM, metric="l2"),
                          page_size=8192, **store.storage) as adapter:
        adapter.write_vector_batch(np.array(ids[:150]), VECTORS[:150], PAYLOADS[:150])
        adapter.add_batch(ids[150:], VECTORS[150:], None)
        adapter.flush()
        adapter.seal()
        assert adapter.db_bytes() == (build_dir / "shard.db").stat().st_size
        with pytest.raises(SqliteVecAdapterError, match="Cannot write after seal"):
            adapter.write_vector_batch(["x"], VECTORS[:1])
    adapter.close()  # a no-op once closed
    # page_size took effect: the SQLite header's page size (bytes 16-17, big-endian).
    header = (build_dir / "shard.db").read_bytes()[:100]
    assert int.from_bytes(header[16:18], "big") == 8192
    with SqliteVecShardReader(db_url=db_url, local_dir=store.folder("read"), **store.storage) as shard:
        for query in QUERIES[:10]:
            exact = np.argsort(np.linalg.norm(VECTORS - query, axis=1), kind="stable")[:10]
            hits = shard.search(query, 10)
            assert [h.id for h in hits] == [ids[i] for i in exact]
            assert [h.payload for h in hits] == [PAYLOADS[i] if i < 150 else None for i in exact]
            np.testing.assert_allclose([h.score for h in hits], np.linalg.norm(VECTORS[exact] - query, axis=1),
                                       rtol=1e-4)


def test_the_adapter_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    spec = VectorSpec(dim=DIM, metric="cosine")
    with pytest.raises(ConfigValidationError, match="SqliteVecAdapter.cache_size_pages"):
        SqliteVecAdapter(db_url=str(tmp_path / "a"), local_dir=tmp_path / "b", vector_spec=spec, cache_size_pages=10)
    with pytest.raises(ConfigValidationError, match=r"page_size must be one of \[4096"):
        SqliteVecAdapter(db_url=str(tmp_path / "a"), local_dir=tmp_path / "b", vector_spec=spec, page_size=1000)
    with pytest.raises(ConfigValidationError, match="sqlite-vec does not support|metric must be one of"):
        SqliteVecAdapter(db_url=str(tmp_path / "a"), local_dir=tmp_path / "b",
                         vector_spec=VectorSpec(dim=DIM, metric="dot_product"))
    with pytest.raises(ConfigValidationError, match="SqliteVecShardReader.mmap_size"):
        SqliteVecShardReader(db_url=str(tmp_path / "a"), local_dir=tmp_path / "c", mmap_size=1 << 20)
    adapter = SqliteVecAdapter(db_url=str(tmp_path / "up"), local_dir=tmp_path / "b", vector_spec=spec)
    with pytest.raises(SqliteVecAdapterError, match="write_batch .KV pairs. is not supported"):
        adapter.write_batch([(b"k", b"v")])
    bad = VECTORS[:3].copy()
    bad[1, 4] = np.inf
    with pytest.raises(ConfigValidationError, match=r"row 1.*vector\[4\] is inf|vector\[4\] is inf.*row 1"):
        adapter.write_vector_batch([1, 2, 3], bad)
    with pytest.raises(ConfigValidationError, match="is all zeros"):
        adapter.write_vector_batch([1], np.zeros((1, DIM), dtype=np.float32))
    with pytest.raises(ConfigValidationError, match="columns, expected dim=12"):
        adapter.write_vector_batch([1], VECTORS[:1, :5])
    adapter.close()  # an empty shard, sealed and uploaded
    assert (tmp_path / "up" / "shard.db").is_file()
    with pytest.raises(SqliteVecAdapterError, match="Adapter already closed"):
        adapter.write_vector_batch([1], VECTORS[:1])
    # The local file is never reused: a second adapter on the same folder is refused before writing.
    with pytest.raises(Exception, match="exists"):
        SqliteVecAdapter(db_url=str(tmp_path / "up2"), local_dir=tmp_path / "b", vector_spec=spec)


# --- MetricEvent and the type names ----------------------------------------------------------------

# The reference's MetricEvent values (shardyfusion.metrics.MetricEvent).
REFERENCE_EVENTS = {
    "write.started", "write.sharding_completed", "write.shard.started", "write.shard.completed",
    "write.shards_completed", "write.manifest_published", "write.current_published", "write.completed",
    "write.batch_written", "reader.initialized", "reader.get", "reader.multi_get", "reader.refreshed",
    "reader.closed", "write.shard.retried", "write.shard.retry_exhausted", "s3.retry", "s3.retry_exhausted",
    "rate_limiter.throttled", "rate_limiter.denied", "vector.write.started", "vector.write.shard.completed",
    "vector.write.completed", "vector.reader.initialized", "vector.reader.search", "vector.reader.shard_search",
    "vector.reader.refreshed", "vector.reader.closed",
}


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def emit(self, event: str, payload: dict[str, Any]) -> None:
        self.events.append(event)


def test_every_event_the_engine_emits_is_a_metric_event(tmp_path: Path) -> None:
    assert REFERENCE_EVENTS <= {e.value for e in MetricEvent}
    assert {e.name for e in MetricEvent} >= {"VECTOR_SEARCH", "VECTOR_SHARD_SEARCH", "RATE_LIMITER_THROTTLED"}
    recorder = Recorder()
    prefix = str(tmp_path / "store")
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(strategy=VectorShardingStrategy.LSH, num_dbs=2), s3_prefix=prefix,
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2),
        output=WriterOutputConfig(local_root=str(tmp_path / "build")), metrics_collector=recorder)
    write_arrays(VECTORS, config)
    shards_downloaded(tmp_path / "store")  # so shard_download is emitted
    with ShardedVectorReader(s3_prefix=prefix, local_root=str(tmp_path / "cache"), metrics_collector=recorder) as r:
        r.batch_search(QUERIES[:3], top_k=2)
        write_arrays(VECTORS, config)
        assert r.refresh()
        r.search(QUERIES[0], top_k=2)
    seen = {MetricEvent(e) for e in recorder.events}  # each one is a member
    assert seen >= {MetricEvent.VECTOR_WRITE_STARTED, MetricEvent.VECTOR_SHARD_WRITE_COMPLETED,
                    MetricEvent.VECTOR_WRITE_COMPLETED, MetricEvent.VECTOR_READER_INITIALIZED,
                    MetricEvent.VECTOR_SEARCH, MetricEvent.VECTOR_SHARD_SEARCH, MetricEvent.VECTOR_SHARD_DOWNLOAD,
                    MetricEvent.VECTOR_READER_REFRESHED, MetricEvent.VECTOR_READER_CLOSED}
    assert "vector.reader.search" in recorder.events and MetricEvent.VECTOR_SEARCH == "vector.reader.search"


# The public names of the reference's shardyfusion.vector package and its types module, but for
# AsyncShardedVectorReader (the async reader's own work).
REFERENCE_VECTOR_NAMES = [
    "AsyncVectorShardReader", "AsyncVectorShardReaderFactory", "DistanceMetric", "SearchResult",
    "ShardedVectorReader", "VectorIndexConfig", "VectorIndexWriter", "VectorIndexWriterFactory",
    "VectorReaderHealth", "VectorRecordInput", "VectorRecord", "VectorSearchResponse", "VectorShardDetail",
    "VectorShardReader", "VectorShardReaderFactory", "VectorShardingConfig", "VectorShardingSpec",
    "VectorShardingStrategy", "VectorSnapshotInfo", "VectorShardedWriteConfig", "VectorWriteOptions",
    "write_sharded",
]
REFERENCE_TYPES_NAMES = [
    "DistanceMetric", "VectorShardingStrategy", "VectorRecord", "SearchResult", "VectorSearchResponse",
    "VectorShardDetail", "VectorSnapshotInfo", "HnswNode", "HnswGraph", "HnswGraphBuilder", "VectorIndexWriter",
    "VectorIndexWriterFactory", "VectorShardReader", "VectorShardReaderFactory", "AsyncVectorShardReader",
    "AsyncVectorShardReaderFactory",
]


def test_the_reference_public_names_import() -> None:
    missing = [n for n in REFERENCE_VECTOR_NAMES if not hasattr(shardvec.vector, n)]
    missing += [f"types.{n}" for n in REFERENCE_TYPES_NAMES if not hasattr(shardvec.vector.types, n)]
    assert missing == []
    assert set(REFERENCE_VECTOR_NAMES) <= set(shardvec.vector.__all__)
    assert set(REFERENCE_TYPES_NAMES) <= set(shardvec.vector.types.__all__)
    assert set(sharding.__all__) == {
        "route_vector_to_shards", "cluster_assign", "cluster_assign_batch", "cluster_probe_shards",
        "train_centroids_kmeans", "lsh_generate_hyperplanes", "lsh_hash", "lsh_assign", "lsh_assign_batch",
        "lsh_probe_shards"}
    graph = shardvec.vector.types.HnswGraph(entry_point=0, max_layer=0,
                                            nodes={0: shardvec.vector.types.HnswNode(max_layer=0, neighbors={0: []})})
    assert graph.nodes[0].neighbors == {0: []}


# --- a shardyfusion-style program --------------------------------------------------------------------


def test_a_shardyfusion_program_runs_with_the_import_prefix_changed(store: Store) -> None:
    program = Path(__file__).with_name("sf_reader_surface_program.py")
    env = dict(os.environ)
    args = [sys.executable, str(program), store.prefix + "/program", store.folder("program")]
    if store.storage:
        options = store.storage["s3_connection_options"]
        creds = store.storage["credential_provider"]()
        args += [json.dumps(options), json.dumps(creds)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False, env=env)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["routed_equals_reader"] is True
    assert report["own_nearest"] == list(range(0, 200, 20))
    assert report["shard_alone_equals_reader"] is True
    assert {"vector.reader.search", "vector.reader.shard_search", "vector.reader.closed"} <= set(report["events"])
    assert report["empty_shard"] == [None, 0]
