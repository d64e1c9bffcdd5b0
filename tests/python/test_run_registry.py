"""shardvec.run_registry: lifecycle.run_registry records a write's start and end (in-memory, a custom
object, an S3RunRegistry on a folder and on the S3 test server), the engine's own run record stays,
and cleanup consults the registry the writer used."""

from __future__ import annotations

import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import shardvec
from shardvec.config import WriterOutputConfig
from shardvec.errors import ConfigValidationError
from shardvec.run_registry import (
    InMemoryRunRegistry,
    RunRecord,
    RunRegistry,
    RunStatus,
    S3RunRegistry,
    parse_run_record,
)
from shardvec.vector import VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

from conftest import s3_storage

DIM = 8
ROWS = 30
VECTORS = np.random.default_rng(3).standard_normal((ROWS, DIM)).astype(np.float32)


def config(prefix: str, tmp_path: Path, registry: Any, run_id: str | None = None, **storage: Any) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.LSH),
        s3_prefix=prefix,
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2),
        output=WriterOutputConfig(run_id=run_id, local_root=str(tmp_path / "build")),
        run_registry=registry,
        **storage,
    )


def engine_records(store: Path) -> list[Path]:
    return sorted((store / "runs").glob("*/run.yaml"))


def test_in_memory_registry_records_a_successful_write_beside_the_engines_record(tmp_path: Path) -> None:
    registry = InMemoryRunRegistry()
    store = tmp_path / "s"
    result = write_arrays(VECTORS, config(str(store), tmp_path, registry))
    [(ref, record)] = list(registry.list_records())
    assert ref.startswith(f"mem://runs/{result.run_id}/")
    assert record.status == RunStatus.SUCCEEDED and record.run_id == result.run_id
    assert record.manifest_ref == result.manifest_ref
    assert (record.writer_type, record.shard_prefix, record.db_path_template) == \
        ("vector-shardvec", "shards", "db={db_id:05d}")
    assert record.lease_expires_at == record.updated_at >= record.started_at
    assert registry.load(ref) == record
    # The engine's own record (cleanup's lease) is still written, and says succeeded too.
    [engine_record] = engine_records(store)
    assert parse_run_record(engine_record.read_bytes()).status == RunStatus.SUCCEEDED


def test_a_failed_write_is_marked_failed_with_its_error(tmp_path: Path) -> None:
    registry = InMemoryRunRegistry()
    store = str(tmp_path / "s")
    write_arrays(VECTORS, config(store, tmp_path, None, run_id="taken"))
    with pytest.raises(ConfigValidationError, match="run_id 'taken' is already used"):
        write_arrays(VECTORS, config(store, tmp_path, registry, run_id="taken"))
    [(_, record)] = list(registry.list_records())
    assert record.status == RunStatus.FAILED and record.run_id == "taken"
    assert record.error_type == "ConfigValidationError"
    assert "already used" in (record.error_message or "")
    assert record.manifest_ref is None


class CallLog:
    """A custom registry (no base class): the protocol's three methods, and a log of the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.records: dict[str, RunRecord] = {}

    def create(self, record: RunRecord) -> str:
        self.calls.append(("create", record.status.value))
        self.records["r1"] = record.model_copy()
        return "r1"

    def update(self, ref: str, record: RunRecord) -> None:
        self.calls.append(("update", record.status.value))
        self.records[ref] = record.model_copy()

    def load(self, ref: str) -> RunRecord:
        return self.records[ref]


def test_a_custom_registry_object_sees_create_running_then_update_succeeded(tmp_path: Path) -> None:
    registry = CallLog()
    assert isinstance(registry, RunRegistry)
    result = write_arrays(VECTORS, config(str(tmp_path / "s"), tmp_path, registry))
    assert registry.calls == [("create", "running"), ("update", "succeeded")]
    assert registry.load("r1").manifest_ref == result.manifest_ref


def test_a_registry_that_raises_does_not_fail_the_write(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    class Broken(CallLog):
        def create(self, record: RunRecord) -> str:
            raise OSError("registry down")

    result = write_arrays(VECTORS, config(str(tmp_path / "s"), tmp_path, Broken()))
    assert result.run_id
    assert "run_record_create_failed" in caplog.text and "registry down" in caplog.text


@pytest.fixture(params=["local", "s3"])
def elsewhere(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """A registry location other than the snapshot's store, and how to reach it."""
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        return server["prefix"] + "-registry", s3_storage(server)
    return str(tmp_path / "registry-store"), {}


def test_an_s3_registry_elsewhere_keeps_run_yaml_objects_there(tmp_path: Path, elsewhere: Any) -> None:
    prefix, storage = elsewhere
    registry = S3RunRegistry(prefix, run_registry_prefix="audit", **storage)
    result = write_arrays(VECTORS, config(str(tmp_path / "s"), tmp_path, registry))
    [(ref, record)] = list(registry.list_records())
    assert "/audit/" in ref and ref.endswith(f"_run_id={result.run_id}_{ref.split('_')[-1]}")
    assert record.status == RunStatus.SUCCEEDED and record.manifest_ref == result.manifest_ref
    assert registry.load(ref) == record


def test_an_s3_registry_naming_the_stores_own_is_the_engines_record(tmp_path: Path) -> None:
    store = tmp_path / "s"
    registry = S3RunRegistry(str(store))
    result = write_arrays(VECTORS, config(str(store), tmp_path, registry))
    [(_, record)] = list(registry.list_records())  # one record: the engine's
    assert record.run_id == result.run_id and record.status == RunStatus.SUCCEEDED


def test_s3_registry_refuses_a_backend_object_and_a_bad_prefix() -> None:
    with pytest.raises(ConfigValidationError, match="backend="):
        S3RunRegistry("/tmp/x", backend=object())
    with pytest.raises(ConfigValidationError, match="S3RunRegistry.run_registry_prefix must be a single path segment"):
        S3RunRegistry("/tmp/x", run_registry_prefix="a/b")


def test_cleanup_never_touches_a_run_the_writers_registry_says_is_running(tmp_path: Path) -> None:
    store = tmp_path / "s"
    write_arrays(VECTORS, config(str(store), tmp_path, None, run_id="A"))
    # Shards of a run without a manifest whose only record is in another registry.
    shard = next((store / "shards" / "run_id=A").glob("db=*/attempt=00/shard.db"))
    orphan = store / "shards" / "run_id=inflight" / "db=00000" / "attempt=00" / "shard.db"
    orphan.parent.mkdir(parents=True)
    shutil.copy(shard, orphan)
    registry = InMemoryRunRegistry()
    now = datetime.now(UTC)
    registry.create(RunRecord(run_id="inflight", writer_type="vector-test", status=RunStatus.RUNNING, started_at=now,
                              updated_at=now, lease_expires_at=now + timedelta(minutes=10), s3_prefix=str(store),
                              shard_prefix="shards", db_path_template="db={db_id:05d}"))
    assert shardvec.cleanup(str(store), dry_run=True).removed_runs == ["inflight"]
    report = shardvec.cleanup(str(store), run_registry=registry)
    assert report.removed_runs == [] and orphan.exists()
    # Once that registry says it ended, cleanup removes it.
    [(ref, record)] = list(registry.list_records())
    record.status = RunStatus.FAILED
    registry.update(ref, record)
    assert shardvec.cleanup(str(store), run_registry=registry).removed_runs == ["inflight"]
    assert not orphan.exists()


def test_cleanup_refuses_a_registry_it_cannot_ask() -> None:
    with pytest.raises(ConfigValidationError, match="has no list_records"):
        shardvec.cleanup("/tmp/nowhere", run_registry=CallLog())


def test_the_lifecycle_renews_the_lease_until_it_ends() -> None:
    from shardvec.run_registry import RunRecordLifecycle

    registry = InMemoryRunRegistry()
    life = RunRecordLifecycle.start(registry=registry, run_id="hb", writer_type="vector-test", s3_prefix="/tmp/x",
                                    shard_prefix="shards", db_path_template="db={db_id:05d}",
                                    lease_duration=timedelta(minutes=10), heartbeat_interval=timedelta(milliseconds=20))
    ref = life.run_record_ref
    assert ref is not None
    first = registry.load(ref).lease_expires_at
    for _ in range(500):  # bounded: 500 × 10 ms at most
        if registry.load(ref).lease_expires_at > first:
            break
        threading.Event().wait(0.01)
    assert registry.load(ref).lease_expires_at > first and registry.load(ref).status == RunStatus.RUNNING
    life.mark_succeeded()
    ended = registry.load(ref)
    assert ended.status == RunStatus.SUCCEEDED and ended.lease_expires_at == ended.updated_at
    threading.Event().wait(0.1)  # no heartbeat after the end
    assert registry.load(ref) == ended


def test_a_record_in_the_references_yaml_parses() -> None:
    # What yaml.safe_dump(record.model_dump(mode="json"), sort_keys=True) writes for the reference's
    # RunRecord (pydantic drops zero microseconds).
    text = (b"db_path_template: db={db_id:05d}\nerror_message: null\nerror_type: null\nformat_version: 1\n"
            b"lease_expires_at: '2026-11-24T21:46:00Z'\nmanifest_ref: null\nrun_id: abc\n"
            b"s3_prefix: s3://bucket/prefix\nshard_prefix: shards\nstarted_at: '2026-11-24T21:36:00.250000Z'\n"
            b"status: running\nupdated_at: '2026-11-24T21:36:00Z'\nwriter_type: python\n")
    record = parse_run_record(text)
    assert (record.run_id, record.status, record.writer_type, record.db_path_template) == \
        ("abc", RunStatus.RUNNING, "python", "db={db_id:05d}")
    assert record.lease_expires_at == datetime(2026, 11, 24, 21, 46, tzinfo=UTC)
    assert record.started_at == datetime(2026, 11, 24, 21, 36, 0, 250000, tzinfo=UTC)
    assert parse_run_record(record.to_yaml()) == record
