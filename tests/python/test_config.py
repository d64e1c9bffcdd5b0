"""Config, types and error mapping of the pure-Python layer (docs/architecture.md#write-configuration, #errors)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from shardvec.config import (
    VectorSpec,
    VectorWriteRateLimitConfig,
    WriterLifecycleConfig,
    WriterManifestConfig,
    WriterObservabilityConfig,
    WriterOutputConfig,
    WriterStorageConfig,
    engine_store_options,
    validate_store_prefix,
)
from shardvec.errors import ConfigValidationError
from shardvec.sqlite_vec_adapter import SqliteVecFactory, SqliteVecReaderFactory
from shardvec.vector.config import (
    VectorAdapterConfig,
    VectorIndexConfig,
    VectorShardedWriteConfig,
    VectorShardingConfig,
    VectorShardingSpec,
)
from shardvec.vector.types import (
    DistanceMetric,
    SearchResult,
    VectorReaderHealth,
    VectorRecord,
    VectorSearchResponse,
    VectorShardDetail,
    VectorShardingStrategy,
    VectorSnapshotInfo,
)

DIM = 4
CENTROIDS = np.eye(2, DIM, dtype=np.float32)


def make(**overrides):
    """A valid config (CLUSTER with two given centroids, local folder), with overrides."""
    kwargs = dict(
        index_config=VectorIndexConfig(dim=DIM),
        sharding=VectorShardingConfig(centroids=CENTROIDS),
        s3_prefix="/tmp/shardvec-test",
    )
    kwargs.update(overrides)
    return VectorShardedWriteConfig(**kwargs)


@contextmanager
def raises(*fragments: str) -> Iterator[pytest.ExceptionInfo[ConfigValidationError]]:
    """Expects ConfigValidationError whose message contains every fragment."""
    with pytest.raises(ConfigValidationError) as info:
        yield info
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"


# --- the seed program's shape ---------------------------------------------------------------------


def test_seed_shape_config_builds():
    spec = VectorSpec(dim=DIM, metric="cosine")
    config = VectorShardedWriteConfig(
        num_dbs=2,
        s3_prefix="s3://bucket/prefix",
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.COSINE),
        sharding=VectorShardingConfig(strategy=VectorShardingStrategy.LSH, num_probes=2),
        adapter_factory=SqliteVecFactory(vector_spec=spec),
        reader_factory=SqliteVecReaderFactory(),
        batch_size=500,
    )
    assert config.num_dbs == 2
    assert config.s3_prefix == "s3://bucket/prefix"
    assert config.batch_size == 500
    assert config.shard_id_col == "_vector_db_id"
    assert isinstance(config.storage, WriterStorageConfig)
    assert isinstance(config.adapter, VectorAdapterConfig)
    assert config.output.local_root == ""  # the engine's per-user default
    assert VectorShardingSpec is VectorShardingConfig


# --- constructor checks, in order -----------------------------------------------------------------


def test_1_index_config_missing():
    with raises("index_config.dim must be > 0", "got 0"):
        VectorShardedWriteConfig(s3_prefix="/tmp/x", num_dbs=2)


@pytest.mark.parametrize("dim", [0, -3])
def test_1_index_config_dim_not_positive(dim):
    with raises("index_config.dim", f"got {dim}"):
        make(index_config=VectorIndexConfig(dim=dim))


def test_1_index_config_wrong_type():
    with raises("index_config must be a VectorIndexConfig"):
        make(index_config={"dim": 4})


def test_1_runs_before_the_other_checks():
    with raises("index_config.dim"):
        VectorShardedWriteConfig(index_config=VectorIndexConfig(dim=0), storage=WriterStorageConfig(
            s3_prefix="/tmp/x"), s3_prefix="/tmp/y")


def test_2_sharding_num_dbs_disagrees():
    with raises("sharding.num_dbs cannot disagree with num_dbs"):
        make(sharding=VectorShardingConfig(num_dbs=3, centroids=CENTROIDS), num_dbs=2)


def test_2_sharding_num_dbs_set_in_place():
    sharding = VectorShardingConfig(strategy=VectorShardingStrategy.LSH)
    config = make(sharding=sharding, num_dbs=5)
    assert config.sharding is sharding
    assert sharding.num_dbs == 5


def test_2_sharding_num_dbs_agrees_or_unset():
    config = make(sharding=VectorShardingConfig(num_dbs=3, train_centroids=True), num_dbs=3)
    assert config.num_dbs == 3
    config.sharding = VectorShardingConfig(num_dbs=None, train_centroids=True)
    config.validate()
    assert config.num_dbs is None


@pytest.mark.parametrize(
    "flat",
    [
        {"s3_prefix": "/tmp/y"},
        {"credential_provider": lambda: None},
        {"s3_connection_options": {"region": "eu-west-1"}},
    ],
)
def test_3_storage_with_flat_keywords(flat):
    with raises("storage cannot be combined with", "s3_prefix", "s3_connection_options"):
        VectorShardedWriteConfig(
            index_config=VectorIndexConfig(dim=DIM),
            sharding=VectorShardingConfig(centroids=CENTROIDS),
            storage=WriterStorageConfig(s3_prefix="/tmp/x"),
            **flat,
        )


@pytest.mark.parametrize(
    "flat",
    [{"adapter_factory": SqliteVecFactory(vector_spec=VectorSpec(dim=DIM))},
     {"reader_factory": SqliteVecReaderFactory()}, {"batch_size": 10}],
)
def test_4_adapter_with_flat_keywords(flat):
    with raises("adapter cannot be combined with", "adapter_factory", "batch_size"):
        make(adapter=VectorAdapterConfig(), **flat)


def test_5_rate_limits_with_flat_keyword():
    with raises("rate_limits cannot be combined with max_writes_per_second"):
        make(rate_limits=VectorWriteRateLimitConfig(), max_writes_per_second=10.0)


def test_6_observability_with_flat_keyword():
    with raises("observability cannot be combined with metrics_collector"):
        make(observability=WriterObservabilityConfig(), metrics_collector=object())


def test_7_lifecycle_with_flat_keyword():
    with raises("lifecycle cannot be combined with run_registry"):
        make(lifecycle=WriterLifecycleConfig(), run_registry=object())


def test_grouped_configs_are_used():
    storage = WriterStorageConfig(s3_prefix="file:///tmp/x")
    adapter = VectorAdapterConfig(batch_size=7)
    rate_limits = VectorWriteRateLimitConfig(max_writes_per_second=None)
    config = make(s3_prefix=None, storage=storage, adapter=adapter, rate_limits=rate_limits)
    assert config.storage is storage
    assert config.batch_size == 7
    assert config.rate_limits is rate_limits and config.max_writes_per_second is None


def test_max_parallel_shards_must_be_a_non_negative_int():
    assert VectorAdapterConfig(max_parallel_shards=1).max_parallel_shards == 1
    for bad in (-1, 1.5, True):
        with raises("adapter.max_parallel_shards must be >= 0", repr(bad)):
            VectorAdapterConfig(max_parallel_shards=bad)


# --- validate() -----------------------------------------------------------------------------------


@pytest.mark.parametrize("num_dbs", [0, -1])
def test_num_dbs_not_positive(num_dbs):
    with raises("num_dbs must be > 0", f"got {num_dbs}"):
        make(sharding=VectorShardingConfig(train_centroids=True), num_dbs=num_dbs)


def test_num_dbs_not_an_int():
    with raises("num_dbs must be > 0", "'2'"):
        make(sharding=VectorShardingConfig(num_dbs="2", train_centroids=True))


@pytest.mark.parametrize("value", ["", None, 3])
def test_shard_id_col(value):
    with raises("shard_id_col must be a non-empty string"):
        make(shard_id_col=value)


def test_sharding_wrong_type():
    with raises("sharding must be VectorShardingConfig"):
        make(sharding={"num_dbs": 2})


@pytest.mark.parametrize(
    ("prefix", "fragments"),
    [
        ("", ("s3_prefix must be non-empty",)),
        ("s3://", ("s3_prefix must be parseable as s3://bucket/prefix", "'s3://'")),
        ("s3:///key", ("s3_prefix must be parseable", "'s3:///key'")),
        ("s3:/bucket/key", ("s3_prefix must be parseable", "'s3:/bucket/key'")),
        ("s3://bucket", ("s3_prefix must include a non-empty key prefix", "'s3://bucket'")),
        ("s3://bucket/", ("s3_prefix must include a non-empty key prefix", "'s3://bucket/'")),
        ("gs://bucket/key", ("s3_prefix has unsupported scheme 'gs'", "'gs://bucket/key'")),
        ("https://host/x", ("s3_prefix has unsupported scheme 'https'",)),
        ("file://relative/x", ("s3_prefix", "'file://relative/x'", "file:///absolute/path")),
        ("/data/a://b", ("s3_prefix has no valid scheme", "'/data/a://b'")),
    ],
)
def test_s3_prefix_rejected(prefix, fragments):
    with raises(*fragments):
        make(s3_prefix=prefix)


@pytest.mark.parametrize(
    "prefix", ["s3://bucket/prefix", "s3://bucket/a/b/", "/abs/folder", "relative/folder", ".",
               "file:///abs/folder"],
)
def test_s3_prefix_accepted(prefix):
    assert make(s3_prefix=prefix).s3_prefix == prefix


def test_s3_prefix_path_object():
    assert make(s3_prefix=Path("/tmp/p")).s3_prefix == "/tmp/p"


def test_s3_prefix_not_a_string():
    with raises("s3_prefix must be a string"):
        validate_store_prefix(42)


def test_s3_prefix_missing_uses_empty_default():
    with raises("s3_prefix must be non-empty"):
        make(s3_prefix=None)


def test_s3_prefix_setter_validates():
    config = make()
    with raises("s3_prefix", "'gs://x/y'"):
        config.s3_prefix = "gs://x/y"


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        ({"shard_prefix": ""}, ("output.shard_prefix must be non-empty",)),
        ({"shard_prefix": "a..b"}, ("output.shard_prefix must not contain '..'",)),
        ({"shard_prefix": "a/b"}, ("output.shard_prefix must be a single path segment",)),
        ({"shard_prefix": "a b"}, ("output.shard_prefix contains unsupported characters",)),
        ({"run_registry_prefix": "r\\s"}, ("output.run_registry_prefix",)),
        ({"run_registry_prefix": ""}, ("output.run_registry_prefix must be non-empty",)),
        ({"db_path_template": "db={oops}"}, ("output.db_path_template", "'db={oops}'")),
        ({"db_path_template": "db={db_id:q}"}, ("output.db_path_template",)),
        ({"run_id": "a/b"}, ("output.run_id",)),
    ],
)
def test_output_config(kwargs, fragments):
    with raises(*fragments):
        WriterOutputConfig(**kwargs)


def test_output_config_revalidated_by_write_config():
    output = WriterOutputConfig()
    output.shard_prefix = "bad/segment"
    with raises("output.shard_prefix"):
        make(output=output)


def test_manifest_custom_fields_must_be_dict():
    with raises("manifest.custom_manifest_fields must be a dict"):
        make(manifest=WriterManifestConfig(custom_manifest_fields=[1, 2]))


@pytest.mark.parametrize("batch_size", [0, -5, 1.5])
def test_batch_size(batch_size):
    with raises("adapter.batch_size must be > 0"):
        make(batch_size=batch_size)


def test_batch_size_setter_validates():
    config = make()
    with raises("adapter.batch_size"):
        config.batch_size = 0


@pytest.mark.parametrize("rate", [0, -1.0])
def test_max_writes_per_second(rate):
    with raises("rate_limits.max_writes_per_second must be > 0 when set"):
        make(max_writes_per_second=rate)


def test_wrong_group_type():
    config = make()
    config.output = "nope"
    with raises("output must be WriterOutputConfig"):
        config.validate()


# --- strategy rules -------------------------------------------------------------------------------


def test_cluster_requires_centroids_or_training():
    with raises("CLUSTER sharding requires either centroids or train_centroids=True"):
        make(sharding=VectorShardingConfig(num_dbs=2))


def test_default_sharding_fails_cluster_rule():
    with raises("CLUSTER sharding requires"):
        VectorShardedWriteConfig(index_config=VectorIndexConfig(dim=DIM), num_dbs=2,
                                 s3_prefix="/tmp/x")


def test_cluster_training_and_lsh_and_explicit_ok():
    make(sharding=VectorShardingConfig(num_dbs=2, train_centroids=True, num_probes=2))
    make(sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.LSH,
                                       num_probes=3))
    make(sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.EXPLICIT))


def test_strategy_string_is_coerced():
    config = make(sharding=VectorShardingConfig(num_dbs=2, strategy="lsh"))
    assert config.sharding.strategy is VectorShardingStrategy.LSH


def test_unknown_strategy():
    with raises("sharding.strategy must be one of", "'hash'"):
        make(sharding=VectorShardingConfig(num_dbs=2, strategy="hash"))


def _cel(**kwargs):
    base = dict(num_dbs=2, strategy=VectorShardingStrategy.CEL, cel_expr="region",
                cel_columns={"region": "string"})
    base.update(kwargs)
    return VectorShardingConfig(**base)


def test_cel_requires_expr():
    with raises("CEL sharding requires cel_expr to be set"):
        make(sharding=_cel(cel_expr=None))


def test_cel_requires_columns():
    with raises("CEL sharding requires cel_columns to be set"):
        make(sharding=_cel(cel_columns={}))


def test_cel_num_probes():
    with raises("num_probes is only supported for CLUSTER and LSH sharding", "got 2 for cel"):
        make(sharding=_cel(num_probes=2))


def test_cel_config_passes_the_python_checks():
    make(sharding=_cel())  # the engine compiles the expression when the write starts


def test_cel_routing_values_must_be_tokens():
    with raises("routing_values must not be empty"):
        make(sharding=_cel(routing_values=[]))
    with raises("routing_values[1] is 2.5 (float)"):
        make(sharding=_cel(routing_values=["eu", 2.5]))
    with raises("routing_values must be a list"):
        make(sharding=_cel(routing_values="eu"))


def test_explicit_num_probes():
    with raises("num_probes is only supported for CLUSTER and LSH sharding", "got 3 for explicit"):
        make(sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.EXPLICIT,
                                           num_probes=3))


@pytest.mark.parametrize("strategy", [VectorShardingStrategy.LSH, VectorShardingStrategy.EXPLICIT])
def test_num_probes_at_least_one(strategy):
    with raises("num_probes must be >= 1, got 0"):
        make(sharding=VectorShardingConfig(num_dbs=2, strategy=strategy, num_probes=0))


# --- metric ---------------------------------------------------------------------------------------


def test_dot_product_rejected():
    with raises("metric 'dot_product' is not supported by sqlite-vec; use cosine or l2"):
        make(index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.DOT_PRODUCT))


def test_dot_product_string_rejected():
    with raises("'dot_product'"):
        make(index_config=VectorIndexConfig(dim=DIM, metric="dot_product"))


def test_metric_string_is_coerced():
    config = make(index_config=VectorIndexConfig(dim=DIM, metric="l2"))
    assert config.index_config.metric is DistanceMetric.L2


def test_unknown_metric():
    with raises("index_config.metric must be one of", "'manhattan'"):
        make(index_config=VectorIndexConfig(dim=DIM, metric="manhattan"))


# --- adapter factory agreement --------------------------------------------------------------------


def test_factory_dim_mismatch():
    with raises("adapter_factory.vector_spec.dim (8)", "index_config.dim (4)"):
        make(adapter_factory=SqliteVecFactory(vector_spec=VectorSpec(dim=8)))


def test_factory_metric_mismatch():
    with raises("adapter_factory.vector_spec.metric 'l2'", "index_config.metric 'cosine'"):
        make(adapter_factory=SqliteVecFactory(vector_spec=VectorSpec(dim=DIM, metric="l2")))


def test_foreign_adapter_factory():
    with raises("adapter_factory must be a SqliteVecFactory or None"):
        make(adapter_factory=lambda **kw: None)


def test_factories_are_markers():
    factory = SqliteVecFactory(vector_spec=VectorSpec(dim=DIM))
    with pytest.raises(NotImplementedError, match="engine builds"):
        factory(db_url="s3://b/p", local_dir=Path("/tmp"))
    with pytest.raises(NotImplementedError, match="engine builds"):
        SqliteVecReaderFactory()(db_url="s3://b/p", local_dir=Path("/tmp"))


def test_factory_settings_checked():
    with raises("page_size must be one of", "1000"):
        SqliteVecFactory(vector_spec=VectorSpec(dim=DIM), page_size=1000)
    SqliteVecFactory(vector_spec=VectorSpec(dim=DIM), page_size="auto")
    with raises("vector_spec must be a VectorSpec"):
        SqliteVecFactory(vector_spec=DIM)
    with raises("mmap_size must be >= 0"):
        SqliteVecReaderFactory(mmap_size=-1)


# --- VectorSpec -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "expected"),
    [("cosine", "cosine"), ("l2", "l2"), ("dot_product", "dot_product"),
     (DistanceMetric.L2, "l2"), (DistanceMetric.COSINE, "cosine")],
)
def test_vector_spec_metric_normalised(metric, expected):
    spec = VectorSpec(dim=DIM, metric=metric)
    assert spec.metric == expected and type(spec.metric) is str


@pytest.mark.parametrize("metric", ["manhattan", None, 3])
def test_vector_spec_metric_rejected(metric):
    with raises("vector_spec.metric must be one of ['cosine', 'dot_product', 'l2']",
                f"got {metric!r}"):
        VectorSpec(dim=DIM, metric=metric)


def test_vector_spec_conversions():
    spec = VectorSpec(dim=DIM, metric="l2", quantization="fp16")
    index = spec.to_vector_index_config()
    assert index == VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2, quantization="fp16")
    spec.sharding.strategy = "lsh"
    spec.sharding.num_probes = 2
    sharding = spec.to_vector_sharding_spec()
    assert sharding.strategy is VectorShardingStrategy.LSH and sharding.num_probes == 2
    assert sharding.num_dbs is None


# --- store options --------------------------------------------------------------------------------


def test_s3_connection_options_unknown_key():
    with raises("s3_connection_options has unknown key(s) ['regoin']"):
        make(s3_connection_options={"regoin": "eu-west-1"})


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        ({"addressing_style": "sideways"}, ("s3_connection_options['addressing_style']",)),
        ({"max_attempts": 0}, ("s3_connection_options['max_attempts']", "got 0")),
        ({"connect_timeout": -1}, ("s3_connection_options['connect_timeout']",)),
        ({"endpoint_url": 5}, ("s3_connection_options['endpoint_url']",)),
        ({"region": "a", "region_name": "b"}, ("region 'a'", "region_name 'b'")),
        ({"verify": False, "verify_ssl": True}, ("verify False", "verify_ssl True")),
        ({"signature_version": "s3"}, ("s3_connection_options['signature_version']", "SigV4 only", "got 's3'")),
        ("eu-west-1", ("s3_connection_options must be a dict",)),
    ],
)
def test_s3_connection_options_values(options, fragments):
    with raises(*fragments):
        make(s3_connection_options=options)


def test_credential_provider_shape():
    with raises("credential_provider must be a callable"):
        make(credential_provider={"access_key_id": "A"})


def test_engine_store_options_merges_everything():
    config = make(
        s3_prefix="s3://bucket/prefix",
        credential_provider=lambda: {"access_key_id": "AK", "secret_access_key": "SK",
                                     "session_token": None},
        s3_connection_options={"endpoint_url": "http://127.0.0.1:9000", "region_name": "us-east-1",
                               "addressing_style": "path", "max_attempts": 3,
                               "connect_timeout": 5, "verify": False, "profile": "dev"},
    )
    assert config.engine_store_options() == {
        "endpoint_url": "http://127.0.0.1:9000",
        "region": "us-east-1",
        "profile": "dev",
        "addressing_style": "path",
        "access_key_id": "AK",
        "secret_access_key": "SK",
        "max_attempts": 3,
        "connect_timeout": 5,
        "verify_tls": "false",
    }


def test_engine_store_options_read_timeout_and_ca_bundle():
    config = make(s3_connection_options={"read_timeout": 2.5, "verify_ssl": "/etc/ca.pem",
                                         "signature_version": "s3v4"})
    assert config.engine_store_options() == {"read_timeout": 2.5, "ca_bundle": "/etc/ca.pem"}


def test_engine_store_options_empty():
    assert make().engine_store_options() == {}


def test_engine_store_options_resolve_object_and_rotation():
    class Provider:
        calls = 0

        def resolve(self):
            Provider.calls += 1
            return dataclasses.make_dataclass("Creds", ["access_key_id", "secret_access_key",
                                                        "session_token"])(
                f"AK{Provider.calls}", "SK", "TOK")

    config = make(credential_provider=Provider(), s3_connection_options={"region": "eu-west-1"})
    first, second = config.engine_store_options(), config.engine_store_options()
    assert first == {"region": "eu-west-1", "access_key_id": "AK1", "secret_access_key": "SK",
                     "session_token": "TOK"}
    assert second["access_key_id"] == "AK2"


def test_engine_store_options_manifest_fallback():
    manifest = WriterManifestConfig(s3_connection_options={"endpoint_url": "http://m"},
                                    credential_provider=lambda: None)
    assert make(manifest=manifest).engine_store_options() == {"endpoint_url": "http://m"}
    config = make(manifest=WriterManifestConfig(s3_connection_options={"endpoint_url": "http://s"}),
                  s3_connection_options={"endpoint_url": "http://s"})
    assert config.engine_store_options() == {"endpoint_url": "http://s"}
    # Set to something else than the storage settings, they could not take effect: refused.
    with raises("manifest.s3_connection_options differs from storage.s3_connection_options"):
        make(manifest=manifest, s3_connection_options={"endpoint_url": "http://s"})


@pytest.mark.parametrize(
    ("creds", "fragment"),
    [
        ({"access_key_id": "AK"}, "without secret_access_key"),
        ({"secret_access_key": "SK"}, "without access_key_id"),
        ({"session_token": "T"}, "session_token without access_key_id"),
        ({"access_key": "AK"}, "unknown key(s) ['access_key']"),
        ({"access_key_id": 1, "secret_access_key": "SK"}, "non-string access_key_id"),
    ],
)
def test_engine_store_options_bad_credentials(creds, fragment):
    with raises("credential_provider", fragment):
        engine_store_options(lambda: creds, None)


# --- types ----------------------------------------------------------------------------------------


def _names(cls):
    return [f.name for f in dataclasses.fields(cls)]


def test_enums():
    assert [m.value for m in DistanceMetric] == ["cosine", "l2", "dot_product"]
    assert {m.value for m in VectorShardingStrategy} == {"cluster", "lsh", "explicit", "cel"}
    assert DistanceMetric("l2") is DistanceMetric.L2 and DistanceMetric.L2 == "l2"


def test_record_and_result_types():
    assert _names(VectorRecord) == ["id", "vector", "payload", "shard_id", "routing_context"]
    record = VectorRecord(id=1, vector=[0.0] * DIM)
    assert record.payload is None and record.shard_id is None and record.routing_context is None
    record.shard_id = 3  # mutable
    assert _names(SearchResult) == ["id", "score", "vector", "payload"]
    hit = SearchResult(id="a", score=0.5)
    assert hit.vector is None and hit.payload is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        hit.score = 1.0
    assert _names(VectorSearchResponse) == ["results", "num_shards_queried", "latency_ms"]
    assert _names(VectorShardDetail) == ["db_id", "db_url", "vector_count", "checkpoint_id"]
    assert _names(VectorSnapshotInfo) == ["run_id", "num_dbs", "dim", "metric", "sharding",
                                          "manifest_ref", "total_vectors"]
    assert _names(VectorReaderHealth) == ["status", "manifest_ref", "manifest_age_seconds",
                                          "num_shards", "is_closed"]
    for cls in (SearchResult, VectorSearchResponse, VectorShardDetail, VectorSnapshotInfo,
                VectorReaderHealth):
        assert cls.__dataclass_params__.frozen


def test_index_and_sharding_defaults():
    index = VectorIndexConfig(dim=3)
    assert (index.metric, index.index_type, index.index_params, index.quantization) == (
        DistanceMetric.COSINE, "hnsw", {}, None)
    s = VectorShardingConfig()
    assert (s.num_dbs, s.strategy, s.num_probes, s.train_centroids,
            s.centroids_training_sample_size, s.num_hash_bits) == (
        None, VectorShardingStrategy.CLUSTER, 1, False, 100_000, 8)
