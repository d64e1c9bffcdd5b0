"""Nothing accepted and silently ignored: every public parameter either takes effect or is refused with
a ConfigValidationError naming it. One case per parameter; a value equal to the default stays accepted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shardvec import VectorSpec
from shardvec.config import (
    VectorColumnInput,
    VectorWriteRateLimitConfig,
    WriterLifecycleConfig,
    WriterManifestConfig,
    WriterOutputConfig,
)
from shardvec.errors import ConfigValidationError
from shardvec.sqlite_vec_adapter import SqliteVecFactory, SqliteVecRangeReaderFactory, SqliteVecReaderFactory, check_reader_factory
from shardvec.vector import ShardedVectorReader, VectorRecord, VectorShardedWriteConfig, write_arrays, write_sharded
from shardvec.vector._distributed import DistributedRun
from shardvec.vector.config import (
    VectorAdapterConfig,
    VectorIndexConfig,
    VectorRecordInput,
    VectorShardingConfig,
    VectorSpecSharding,
    VectorWriteOptions,
)
from shardvec.vector.types import VectorShardingStrategy

DIM = 4
ROWS = 64
LSH = VectorShardingStrategy.LSH
CENTROIDS = np.eye(4, DIM, dtype=np.float32)
DATA = np.random.default_rng(7).standard_normal((ROWS, DIM)).astype(np.float32)


def config(prefix: str, sharding: VectorShardingConfig | None = None, **kwargs: Any) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        index_config=kwargs.pop("index_config", VectorIndexConfig(dim=DIM)),
        sharding=sharding or VectorShardingConfig(num_dbs=4, strategy=LSH),
        s3_prefix=prefix, **kwargs)


def refused(fn: Any, *names: str) -> str:
    """Runs ``fn``; it must raise ConfigValidationError whose message names every one of ``names``."""
    with pytest.raises(ConfigValidationError) as info:
        fn()
    for name in names:
        assert name in str(info.value), f"{name!r} not in {str(info.value)!r}"
    return str(info.value)


@pytest.fixture
def snapshot(tmp_path: Path) -> str:
    store = str(tmp_path / "store")
    write_arrays(DATA, config(store))
    return store


# --- reader ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value"), [
    ("reader_factory", object()),
])
def test_reader_refuses_what_it_cannot_honour(snapshot: str, name: str, value: object) -> None:
    refused(lambda: ShardedVectorReader(s3_prefix=snapshot, **{name: value}), name, "not supported yet")


def test_reader_refuses_a_manifest_store_that_is_not_one(snapshot: str) -> None:
    refused(lambda: ShardedVectorReader(s3_prefix=snapshot, manifest_store=object()),
            "manifest_store", "not a manifest store", "load_current")


def test_writer_refuses_a_manifest_store_that_is_not_one() -> None:
    refused(lambda: config("/tmp/x", manifest=WriterManifestConfig(store=object())),
            "manifest.store", "not a manifest store", "load_current")


def test_reader_refuses_a_rate_limiter_it_cannot_call(snapshot: str) -> None:
    # A RateLimiter takes effect (tests/python/test_rate_limiter.py); anything without acquire() is refused.
    refused(lambda: ShardedVectorReader(s3_prefix=snapshot, rate_limiter=object()), "rate_limiter",
            "must be None or a RateLimiter")


def test_reader_accepts_the_download_factory_it_implements(snapshot: str) -> None:
    with ShardedVectorReader(s3_prefix=snapshot, reader_factory=SqliteVecReaderFactory(),
                             manifest_store=None, rate_limiter=None) as reader:
        assert reader.search(DATA[3], top_k=1).results[0].id == 3


@pytest.mark.parametrize(("name", "value"), [
    ("mmap_size", 1 << 20),
    ("s3_connection_options", {"region": "eu-west-1"}),
    ("credential_provider", lambda: None),
])
def test_reader_factory_settings_reach_the_reader(name: str, value: object) -> None:
    # Each setting is carried to the engine (test_reader_tiers.py shows what it does there).
    assert getattr(check_reader_factory(SqliteVecReaderFactory(**{name: value})), name) is value


def test_reader_factory_defaults_stay_accepted() -> None:
    SqliteVecReaderFactory(mmap_size=256 * 1024 * 1024, s3_connection_options=None, credential_provider=None)


@pytest.mark.parametrize(("kwargs", "names"), [
    ({"num_probes": 2, "shard_ids": [0]}, ("num_probes", "shard_ids")),
    ({"routing_context": {"x": 1}, "shard_ids": [0]}, ("routing_context", "shard_ids")),
    ({"routing_context": {"x": 1}}, ("routing_context", "CEL", "lsh")),
    ({"num_probes": 5}, ("num_probes (5)", "num_dbs 4")),
])
def test_search_options_that_cannot_take_effect_are_refused(snapshot: str, kwargs: dict, names: tuple) -> None:
    with ShardedVectorReader(s3_prefix=snapshot) as reader:
        refused(lambda: reader.search(DATA[0], top_k=3, **kwargs), *names)
        refused(lambda: reader.batch_search(DATA[:2], top_k=3, **kwargs), *names)
        if "shard_ids" not in kwargs:
            refused(lambda: reader.route_vector(DATA[0], **kwargs), *names)
        # The same search without the refused option works.
        assert reader.search(DATA[0], top_k=3, num_probes=4).results


def test_s3_settings_for_a_folder_store_are_refused(tmp_path: Path, snapshot: str) -> None:
    options = {"endpoint_url": "http://127.0.0.1:9"}
    refused(lambda: ShardedVectorReader(s3_prefix=snapshot, s3_connection_options=options), "endpoint_url", "folder")
    refused(lambda: write_arrays(DATA, config(str(tmp_path / "w"), s3_connection_options=options)), "endpoint_url")
    creds = {"access_key_id": "AK", "secret_access_key": "SK"}
    refused(lambda: ShardedVectorReader(s3_prefix=snapshot, credential_provider=lambda: creds), "access_key_id")
    assert not (tmp_path / "w" / "_CURRENT").exists()


# --- write config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("build", "name"), [
    (lambda: config("/tmp/x", index_config=VectorIndexConfig(dim=DIM, index_params={"M": 16})),
     "index_config.index_params"),
    (lambda: config("/tmp/x", reader_factory=object()), "adapter.reader_factory"),
    (lambda: config("/tmp/x", reader_factory=SqliteVecRangeReaderFactory(page_cache_pages=7)), "adapter.reader_factory"),
    (lambda: config("/tmp/x", reader_factory=SqliteVecReaderFactory(mmap_size=0)), "adapter.reader_factory"),
    (lambda: config("/tmp/x", adapter=VectorAdapterConfig(reader_factory=lambda **kw: None)), "adapter.reader_factory"),
])
def test_write_settings_shardvec_cannot_honour_are_refused(build: Any, name: str) -> None:
    refused(build, name, "not supported yet")


def test_a_default_reader_factory_is_accepted_on_the_write_side() -> None:
    # The reference's signature takes one; only settings (which the writer would not use) are refused.
    for factory in (None, SqliteVecReaderFactory(), SqliteVecRangeReaderFactory()):
        config("/tmp/x", reader_factory=factory).validate()


def test_a_write_rate_limit_is_accepted_where_it_takes_effect() -> None:
    # The writers take one token per batch of a shard (tests/python/test_rate_limiter.py).
    assert VectorWriteRateLimitConfig(max_writes_per_second=5.0).max_writes_per_second == 5.0
    assert config("/tmp/x", max_writes_per_second=5.0).rate_limits.max_writes_per_second == 5.0


def test_write_settings_at_their_defaults_stay_accepted() -> None:
    config("/tmp/x", max_writes_per_second=None, run_registry=None, reader_factory=SqliteVecReaderFactory(),
           output=WriterOutputConfig(shard_prefix="shards", db_path_template="db={db_id:05d}",
                                     run_registry_prefix="runs"),
           manifest=WriterManifestConfig(store=None),
           index_config=VectorIndexConfig(dim=DIM, index_type="hnsw", index_params={}, quantization=None))


@pytest.mark.parametrize("name", ["credential_provider", "s3_connection_options"])
def test_manifest_store_settings_differing_from_storage_are_refused(name: str) -> None:
    values = {"credential_provider": (lambda: None, lambda: None),
              "s3_connection_options": ({"region": "eu-west-1"}, {"region": "us-east-1"})}[name]
    refused(lambda: config("s3://b/p", **{name: values[0]}, manifest=WriterManifestConfig(**{name: values[1]})),
            f"manifest.{name}", f"storage.{name}")
    same = values[0]
    config("s3://b/p", **{name: same}, manifest=WriterManifestConfig(**{name: same}))


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"page_size": 8192}, "SqliteVecFactory.page_size"),
    ({"cache_size_pages": -4000}, "SqliteVecFactory.cache_size_pages"),
    ({"supports_vector_writes": False}, "SqliteVecFactory.supports_vector_writes"),
    ({"s3_connection_options": {"region": "eu-west-1"}}, "SqliteVecFactory.s3_connection_options"),
    ({"credential_provider": lambda: None}, "SqliteVecFactory.credential_provider"),
])
def test_writer_factory_settings_are_refused(kwargs: dict, name: str) -> None:
    refused(lambda: SqliteVecFactory(vector_spec=VectorSpec(dim=DIM), **kwargs), name)


@pytest.mark.parametrize("page_size", [4096, 65536, "auto"])
def test_writer_factory_page_sizes_it_honours_stay_accepted(page_size: int | str) -> None:
    SqliteVecFactory(vector_spec=VectorSpec(dim=DIM), page_size=page_size, emit_sidecar=False)


@pytest.mark.parametrize(("spec", "name"), [
    (VectorSpec(dim=DIM, vector_col="embedding"), "vector_spec.vector_col"),
    (VectorSpec(dim=DIM, index_type="flat"), "vector_spec.index_type"),
    (VectorSpec(dim=DIM, quantization="fp16"), "vector_spec.quantization"),
    (VectorSpec(dim=DIM, index_params={"M": 8}), "vector_spec.index_params"),
    (VectorSpec(dim=DIM, sharding=VectorSpecSharding(strategy="explicit")), "vector_spec.sharding.strategy"),
    (VectorSpec(dim=DIM, sharding=VectorSpecSharding(strategy="lsh", num_hash_bits=3)),
     "vector_spec.sharding.num_hash_bits"),
])
def test_vector_spec_fields_the_writer_would_not_use_are_refused(spec: VectorSpec, name: str) -> None:
    refused(lambda: config("/tmp/x", adapter_factory=SqliteVecFactory(vector_spec=spec)), name)


def test_vector_spec_mirroring_the_config_stays_accepted() -> None:
    spec = VectorSpec(dim=DIM, sharding=VectorSpecSharding(strategy="lsh"))
    config("/tmp/x", adapter_factory=SqliteVecFactory(vector_spec=spec))


# --- write calls (the engine's rules; nothing may reach the store) -----------------------------------


SHARDING_CASES = [
    (VectorShardingConfig(num_dbs=4, strategy=LSH, train_centroids=True), ("train_centroids", "CLUSTER", "lsh")),
    (VectorShardingConfig(num_dbs=4, strategy=LSH, centroids=CENTROIDS), ("centroids", "CLUSTER")),
    (VectorShardingConfig(centroids=CENTROIDS, hyperplanes=np.ones((3, DIM), np.float32)), ("hyperplanes", "LSH")),
    (VectorShardingConfig(centroids=CENTROIDS, num_hash_bits=12), ("num_hash_bits 12", "LSH")),
    (VectorShardingConfig(num_dbs=4, centroids=CENTROIDS, train_centroids=True), ("centroids", "train_centroids")),
    (VectorShardingConfig(centroids=CENTROIDS, centroids_training_sample_size=500),
     ("centroids_training_sample_size 500", "train_centroids")),
    (VectorShardingConfig(num_dbs=4, strategy=LSH, cel_expr="x"), ("cel_expr", "CEL")),
    (VectorShardingConfig(num_dbs=4, strategy=LSH, cel_columns={"x": "int"}), ("cel_columns", "CEL")),
    (VectorShardingConfig(num_dbs=4, strategy=VectorShardingStrategy.EXPLICIT, routing_values=[1, 2]),
     ("routing_values", "CEL")),
    (VectorShardingConfig(num_dbs=300, strategy=LSH), ("num_dbs 300", "256", "num_hash_bits 8")),
    (VectorShardingConfig(num_dbs=4, strategy=LSH, num_hash_bits=2, num_probes=4), ("num_probes 4", "3 shards")),
    (VectorShardingConfig(centroids=CENTROIDS, num_probes=5), ("num_probes 5", "num_dbs 4")),
]


@pytest.mark.parametrize(("sharding", "names"), SHARDING_CASES)
@pytest.mark.parametrize("where", ["local", "s3"])
def test_sharding_fields_the_strategy_would_not_use_are_refused(tmp_path: Path, where: str, sharding: Any,
                                                                 names: tuple, request: pytest.FixtureRequest) -> None:
    if where == "s3":
        server = request.getfixturevalue("s3_server")
        creds = server["credentials"]
        cfg = config(server["prefix"], sharding, s3_connection_options=server["s3_connection_options"],
                     credential_provider=lambda: creds)
        reader_args = {"s3_connection_options": server["s3_connection_options"], "credential_provider": lambda: creds}
    else:
        cfg = config(str(tmp_path / "store"), sharding)
        reader_args = {}
    refused(lambda: write_arrays(DATA, cfg), *names)
    # Refused before anything was published: there is no snapshot to open.
    with pytest.raises(Exception, match="CURRENT"):
        ShardedVectorReader(s3_prefix=cfg.s3_prefix, local_root=str(tmp_path / "cache"), **reader_args)


def test_sharding_at_defaults_stays_accepted(tmp_path: Path) -> None:
    sharding = VectorShardingConfig(num_dbs=256, strategy=LSH, num_hash_bits=8, num_probes=9,
                                    centroids_training_sample_size=100_000, train_centroids=False)
    write_arrays(DATA, config(str(tmp_path / "a"), sharding))
    sharding = VectorShardingConfig(centroids=CENTROIDS, num_hash_bits=8, num_probes=4)
    write_arrays(DATA, config(str(tmp_path / "b"), sharding))


@pytest.mark.parametrize(("index", "name"), [
    (VectorIndexConfig(dim=DIM, index_type="ivf"), "index_config.index_type 'ivf'"),
    (VectorIndexConfig(dim=DIM, quantization="fp16"), "index_config.quantization 'fp16'"),
])
def test_index_values_sqlite_vec_cannot_build_are_refused(tmp_path: Path, index: VectorIndexConfig, name: str) -> None:
    refused(lambda: write_arrays(DATA, config(str(tmp_path / "s"), index_config=index)), name)
    assert not (tmp_path / "s" / "_CURRENT").exists()


def test_flat_index_type_is_recorded(tmp_path: Path) -> None:
    store = tmp_path / "s"
    write_arrays(DATA, config(str(store), index_config=VectorIndexConfig(dim=DIM, index_type="flat")))
    assert (store / "_CURRENT").exists()


@pytest.mark.parametrize(("call", "names"), [
    (lambda c: write_arrays(DATA, c, shard_ids=np.zeros(ROWS, np.int64)), ("shard_id 0", "EXPLICIT", "lsh")),
    (lambda c: write_arrays(DATA, c, routing_contexts=[{"x": 1}] * ROWS), ("routing_context", "CEL", "lsh")),
    (lambda c: write_sharded([VectorRecord(id=1, vector=DATA[0], shard_id=2)], c), ("shard_id 2", "EXPLICIT")),
    (lambda c: write_sharded([VectorRecord(id=1, vector=DATA[0], routing_context={"x": 1})], c),
     ("routing_context", "CEL")),
    (lambda c: write_sharded([], c, input=VectorColumnInput(vector_col="v", id_col="id")), ("input",)),
    (lambda c: write_sharded([], c, options=VectorWriteOptions(verify_routing=False)), ("options", "verify_routing")),
    (lambda c: write_sharded([], c, options="fast"), ("options",)),
    (lambda c: write_arrays(DATA, VectorShardedWriteConfig(
        index_config=c.index_config, sharding=c.sharding, s3_prefix=c.s3_prefix, shard_id_col="db")), ("shard_id_col",)),
])
def test_write_call_arguments_that_cannot_take_effect_are_refused(tmp_path: Path, call: Any, names: tuple) -> None:
    cfg = config(str(tmp_path / "s"))
    refused(lambda: call(cfg), *names)
    assert not (tmp_path / "s" / "_CURRENT").exists()


@pytest.mark.parametrize(("build", "name"), [
    (lambda: config("/tmp/x", run_registry=object()), "lifecycle.run_registry"),
    (lambda: config("/tmp/x", lifecycle=WriterLifecycleConfig(run_registry=object())), "lifecycle.run_registry"),
])
def test_a_run_registry_without_the_protocol_is_refused(build: Any, name: str) -> None:
    refused(build, name, "is not a RunRegistry: it has no create(), update(), load()")


@pytest.mark.parametrize(("name", "value", "why"), [("run_registry", object(), "is not a RunRegistry"),
                                                    ("reader_factory", object(), "not supported yet")])
def test_a_setting_set_after_construction_is_checked_when_the_write_starts(tmp_path: Path, name: str,
                                                                          value: object, why: str) -> None:
    cfg = config(str(tmp_path / "s"))
    setattr(cfg, name, value)
    refused(lambda: write_arrays(DATA, cfg), name, why)
    refused(lambda: DistributedRun(cfg, VectorColumnInput(vector_col="v", id_col="id"), None, "vector-test", "Test",
                                   ["v", "id"]), name)
    assert not (tmp_path / "s").exists()


def test_write_call_defaults_stay_accepted(tmp_path: Path) -> None:
    records = [VectorRecord(id=i, vector=DATA[i]) for i in range(ROWS)]
    write_sharded(records, config(str(tmp_path / "s")), input=VectorRecordInput(), options=VectorWriteOptions())


@pytest.mark.parametrize(("kwargs", "column_input", "name"), [
    ({}, VectorColumnInput(vector_col="v", id_col="id", shard_id_col="sid"), "input.shard_id_col"),
    ({"adapter": VectorAdapterConfig(max_parallel_shards=2)}, VectorColumnInput(vector_col="v", id_col="id"),
     "adapter.max_parallel_shards"),
])
def test_distributed_settings_that_cannot_take_effect_are_refused(tmp_path: Path, kwargs: dict,
                                                                 column_input: VectorColumnInput, name: str) -> None:
    cfg = config(str(tmp_path / "s"), **kwargs)
    refused(lambda: DistributedRun(cfg, column_input, None, "vector-test", "Test", ["v", "id", "sid"]), name)
    assert not (tmp_path / "s").exists()
