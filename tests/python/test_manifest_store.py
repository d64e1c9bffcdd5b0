"""shardvec.manifest_store: S3ManifestStore (the object layout, on a folder and on the S3 test server),
InMemoryManifestStore and a user's own store object, each used directly and by the writer, the
reader (open, refresh) and a distributed writer; racing publishers; a store that raises."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shardvec.config import WriterManifestConfig, WriterOutputConfig
from shardvec.errors import (
    ConfigValidationError,
    ManifestStoreError,
    PublishConflictError,
    ReaderStateError,
    ShardvecError,
)
from shardvec.manifest import (
    ManifestRef,
    ManifestShardingSpec,
    ParsedManifest,
    RequiredBuildMeta,
    RequiredShardMeta,
    WriterInfo,
)
from shardvec.manifest_store import InMemoryManifestStore, ManifestStore, S3ManifestStore
from shardvec.vector import ShardedVectorReader, VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

DIM = 8
ROWS = 40
BASES = {"A": 0, "B": 1000, "C": 2000}
VECTORS = np.random.default_rng(7).standard_normal((ROWS, DIM)).astype(np.float32)


class Target:
    """A store prefix (folder or S3) and the storage settings that reach it."""

    def __init__(self, prefix: str, storage: dict[str, Any], tmp_path: Path) -> None:
        self.prefix = prefix
        self.storage = storage
        self.tmp_path = tmp_path

    def config(self, run_id: str, store: Any = None) -> VectorShardedWriteConfig:
        return VectorShardedWriteConfig(
            sharding=VectorShardingConfig(num_dbs=3, strategy=VectorShardingStrategy.LSH),
            s3_prefix=self.prefix,
            index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2),
            output=WriterOutputConfig(run_id=run_id, local_root=str(self.tmp_path / f"build-{run_id}")),
            manifest=WriterManifestConfig(store=store),
            **self.storage,
        )

    def write(self, run_id: str, store: Any = None) -> str:
        result = write_arrays(VECTORS, self.config(run_id, store), ids=np.arange(ROWS, dtype=np.int64) + BASES[run_id])
        return result.manifest_ref

    def reader(self, store: Any = None, **kwargs: Any) -> ShardedVectorReader:
        return ShardedVectorReader(s3_prefix=self.prefix, local_root=str(self.tmp_path / "cache"),
                                   manifest_store=store, **self.storage, **kwargs)

    def s3_store(self, **kwargs: Any) -> S3ManifestStore:
        return S3ManifestStore(self.prefix, **self.storage, **kwargs)


def serving(reader: ShardedVectorReader) -> str:
    """The run whose ids the reader answers with."""
    answer = reader.search(VECTORS[3], top_k=1, shard_ids=[0, 1, 2]).results[0].id
    return next(run for run, base in BASES.items() if answer == base + 3)


@pytest.fixture(params=["local", "s3"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        creds = server["credentials"]
        return Target(server["prefix"], {"s3_connection_options": server["s3_connection_options"],
                                         "credential_provider": lambda: creds}, tmp_path)
    return Target(str(tmp_path / "store"), {}, tmp_path)


def a_manifest(run_id: str, rows: int = 5) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "required_build": RequiredBuildMeta(run_id=run_id, created_at=datetime(2026, 1, 2, 3, 4, 5, 6, timezone.utc),
                                            num_dbs=2, s3_prefix="s3://bucket/prefix"),
        "shards": [RequiredShardMeta(db_id=1, db_url=f"s3://bucket/prefix/shards/run_id={run_id}/db=00001/attempt=00",
                                     row_count=rows, db_bytes=4096, writer_info=WriterInfo(attempt=0, duration_ms=3))],
        "custom": {"vector": {"dim": 4}},
    }


# --- the stores themselves ---------------------------------------------------------------------------


def test_s3_manifest_store_publishes_loads_lists_and_sets_current(target: Target) -> None:
    store = target.s3_store()
    assert isinstance(store, ManifestStore)
    assert store.load_current() is None
    assert store.list_manifests() == []
    ref_a = store.publish(**a_manifest("A", rows=5))
    ref_b = store.publish(**a_manifest("B", rows=7))
    assert ref_a.startswith(target.prefix if "://" in target.prefix else "file://")
    assert "/manifests/" in ref_a and ref_a.endswith("_run_id=A/manifest")

    current = store.load_current()
    assert isinstance(current, ManifestRef)
    assert (current.ref, current.run_id) == (ref_b, "B")
    assert current.published_at.tzinfo is not None
    listed = store.list_manifests(limit=10)
    assert [r.ref for r in listed] == [ref_b, ref_a]
    assert listed[0].published_at > listed[1].published_at
    assert [r.run_id for r in store.list_manifests(limit=1)] == ["B"]

    parsed = store.load_manifest(ref_a)
    assert isinstance(parsed, ParsedManifest)
    assert parsed.required_build.run_id == "A"
    assert parsed.required_build.created_at == datetime(2026, 1, 2, 3, 4, 5, 6, timezone.utc)
    assert parsed.required_build.sharding == ManifestShardingSpec()
    assert parsed.required_build.format_version == 4
    assert [(s.db_id, s.row_count, s.db_bytes, s.writer_info.duration_ms) for s in parsed.shards] == [(1, 5, 4096, 3)]
    assert parsed.custom == {"vector": {"dim": 4}}

    store.set_current(ref_a)
    assert store.load_current().ref == ref_a
    # What another process sees: a second store object over the same prefix.
    assert target.s3_store().load_current().ref == ref_a
    with pytest.raises(ShardvecError, match="no manifest exists"):
        store.set_current(ref_a.replace("_run_id=A", "_run_id=Z"))
    assert store.load_current().ref == ref_a
    if "://" not in target.prefix:
        pointer = json.loads((Path(target.prefix) / "_CURRENT").read_text())
        assert (pointer["manifest_ref"], pointer["run_id"]) == (ref_a, "A")


def test_s3_manifest_store_honours_the_current_pointer_key(target: Target) -> None:
    store = target.s3_store(current_pointer_key="pointers/LIVE")
    ref = store.publish(**a_manifest("A"))
    assert store.load_current().ref == ref
    assert target.s3_store().load_current() is None, "_CURRENT is not written"
    if "://" not in target.prefix:
        assert json.loads((Path(target.prefix) / "pointers" / "LIVE").read_text())["manifest_ref"] == ref
        assert not (Path(target.prefix) / "_CURRENT").exists()
    with pytest.raises(ConfigValidationError, match="current_pointer_key '../x'"):
        target.s3_store(current_pointer_key="../x").load_current()


def test_s3_manifest_store_refuses_what_it_cannot_honour(tmp_path: Path) -> None:
    with pytest.raises(ConfigValidationError, match="backend"):
        S3ManifestStore(object(), str(tmp_path))
    with pytest.raises(ConfigValidationError, match="manifest_name"):
        S3ManifestStore(str(tmp_path), manifest_name="manifest.db")
    with pytest.raises(ConfigValidationError, match="run_id"):
        S3ManifestStore(str(tmp_path)).publish(**{**a_manifest("A"), "run_id": "B"})
    with pytest.raises(ConfigValidationError, match="limit"):
        S3ManifestStore(str(tmp_path)).list_manifests(limit=-1)


def test_in_memory_manifest_store_publishes_loads_lists_and_sets_current() -> None:
    store = InMemoryManifestStore()
    assert store.load_current() is None
    ref_a = store.publish(**a_manifest("A"))
    ref_b = store.publish(**a_manifest("B"))
    assert store.load_current().ref == ref_b
    assert [r.run_id for r in store.list_manifests()] == ["B", "A"]
    assert store.load_manifest(ref_a).required_build.run_id == "A"
    store.set_current(ref_a)
    assert store.load_current().run_id == "A"
    with pytest.raises(KeyError):
        store.set_current("mem://nothing")
    with pytest.raises(KeyError):
        store.load_manifest("mem://nothing")


# --- the writer and the reader through a store --------------------------------------------------------


class RecordingStore(InMemoryManifestStore):
    """A user's own store: the protocol's methods, counting calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def publish(self, **kwargs: Any) -> str:
        self.calls.append("publish")
        return super().publish(**kwargs)

    def load_current(self) -> ManifestRef | None:
        self.calls.append("load_current")
        return super().load_current()


@pytest.mark.parametrize("kind", ["memory", "custom"])
def test_the_writer_and_the_reader_go_through_a_store_and_leave_no_pointer_beside_the_shards(
        target: Target, kind: str) -> None:
    store = InMemoryManifestStore() if kind == "memory" else RecordingStore()
    ref = target.write("A", store)
    assert ref.startswith("mem://")
    assert store.load_current().ref == ref
    manifest = store.load_manifest(ref)
    assert manifest.required_build.num_dbs == 3
    assert manifest.custom["vector"]["dim"] == DIM
    assert sum(s.row_count for s in manifest.shards) == ROWS
    if "://" not in target.prefix:
        assert not (Path(target.prefix) / "_CURRENT").exists()
        assert not (Path(target.prefix) / "manifests").exists()
        assert (Path(target.prefix) / "shards").is_dir()
    with pytest.raises(ReaderStateError, match="No CURRENT pointer"):
        target.reader()

    with target.reader(store) as reader:
        assert serving(reader) == "A"
        assert reader.snapshot_info().manifest_ref == ref
        assert reader.refresh() is False
        target.write("B", store)
        assert reader.refresh() is True, "the store's pointer moved"
        assert serving(reader) == "B"
        store.set_current(ref)
        assert reader.refresh() is True
        assert serving(reader) == "A"
    if isinstance(store, RecordingStore):
        assert store.calls.count("publish") == 2
        assert "load_current" in store.calls


def test_the_writer_and_the_reader_use_an_s3_manifest_store_with_its_pointer_key(target: Target) -> None:
    store = target.s3_store(current_pointer_key="LIVE")
    ref = target.write("A", store)
    assert store.load_current().ref == ref
    assert target.s3_store().load_current() is None
    with target.reader(store) as reader:
        assert serving(reader) == "A"
        target.write("B", store)
        assert reader.refresh() is True
        assert serving(reader) == "B"


def test_a_manifest_store_that_is_not_one_is_refused_naming_the_setting(target: Target) -> None:
    with pytest.raises(ConfigValidationError, match="manifest.store .* load_manifest"):
        target.write("A", object())
    with pytest.raises(ConfigValidationError, match="manifest_store"):
        target.reader(store=42)


# --- errors ---------------------------------------------------------------------------------------------


class StoreDown(Exception):
    """A user's own exception class."""


class RaisingStore(InMemoryManifestStore):
    def __init__(self, fail: str) -> None:
        super().__init__()
        self.fail = fail
        self.raised: StoreDown | None = None

    def _maybe_fail(self, method: str) -> None:
        if method == self.fail:
            self.raised = StoreDown(f"{method} failed: database is down")
            raise self.raised

    def publish(self, **kwargs: Any) -> str:
        self._maybe_fail("publish")
        return super().publish(**kwargs)

    def load_current(self) -> ManifestRef | None:
        self._maybe_fail("load_current")
        return super().load_current()

    def load_manifest(self, ref: str) -> ParsedManifest:
        self._maybe_fail("load_manifest")
        return super().load_manifest(ref)


@pytest.mark.parametrize("method", ["publish", "load_current"])
def test_a_store_that_raises_surfaces_its_own_exception_from_the_writer(tmp_path: Path, method: str) -> None:
    target = Target(str(tmp_path / "store"), {}, tmp_path)
    store = RaisingStore(method)
    with pytest.raises(StoreDown) as raised:
        target.write("A", store)
    assert raised.value is store.raised
    store.raised = None  # its traceback holds this frame: no cycle through the engine
    assert list((tmp_path / "store").rglob("shard.db")) == [], "the unpublished run's shards are removed"


@pytest.mark.parametrize("method", ["load_current", "load_manifest"])
def test_a_store_that_raises_surfaces_its_own_exception_from_the_reader(tmp_path: Path, method: str) -> None:
    target = Target(str(tmp_path / "store"), {}, tmp_path)
    store = RaisingStore("none")
    target.write("A", store)
    store.fail = method
    with pytest.raises(StoreDown) as raised:
        target.reader(store)
    assert raised.value is store.raised
    store.fail = "none"
    with target.reader(store) as reader:
        target.write("B", store)
        store.fail = method
        with pytest.raises(StoreDown) as raised:
            reader.refresh()
        assert raised.value is store.raised
        store.raised = None  # its traceback holds this frame: no cycle through the engine
        assert serving(reader) == "A", "the old snapshot keeps serving"


def test_a_store_returning_the_wrong_type_is_an_error_naming_the_method(tmp_path: Path) -> None:
    class Broken(InMemoryManifestStore):
        def load_current(self) -> Any:
            return 42

    target = Target(str(tmp_path / "store"), {}, tmp_path)
    with pytest.raises(ManifestStoreError, match=r"load_current\(\) returned 42"):
        target.reader(Broken())


def test_a_newer_current_manifest_refuses_the_publish_under_reject_if_newer(tmp_path: Path) -> None:
    class NewerElsewhere(InMemoryManifestStore):
        """Its pointer was moved by a writer that started after ours (published in 2100)."""

        def load_current(self) -> ManifestRef | None:
            current = super().load_current()
            return current and ManifestRef(current.ref, current.run_id, datetime(2100, 1, 1, tzinfo=timezone.utc))

    target = Target(str(tmp_path / "store"), {}, tmp_path)
    store = NewerElsewhere()
    store.publish(**a_manifest("later"))
    with pytest.raises(PublishConflictError, match="was not published"):
        target.write("A", store)
    assert store.load_current().run_id == "later"
    assert [r.run_id for r in store.list_manifests()] == ["later"]


# --- races ------------------------------------------------------------------------------------------------


def test_racing_publishers_through_one_s3_manifest_store_lose_no_manifest(target: Target) -> None:
    errors: list[BaseException] = []
    refs: list[str] = []
    lock = threading.Lock()

    def publish_all(thread: int) -> None:
        store = target.s3_store()  # each thread its own store object, as separate processes have
        for n in range(4):
            try:
                ref = store.publish(**a_manifest(f"T{thread}-{n}"))
                with lock:
                    refs.append(ref)
            except BaseException as exc:  # noqa: BLE001 - collected and checked below
                with lock:
                    errors.append(exc)

    threads = [threading.Thread(target=publish_all, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(isinstance(e, PublishConflictError) for e in errors), errors
    listed = target.s3_store().list_manifests(limit=100)
    assert len(listed) == 8, "every manifest reached history"
    assert target.s3_store().load_current().ref in refs, "the pointer names a publish that succeeded"


# --- distributed ------------------------------------------------------------------------------------------


def test_a_distributed_write_publishes_through_the_drivers_store(tmp_path: Path) -> None:
    import dask
    import dask.dataframe as dd
    import pandas as pd
    import pyarrow as pa
    from dask.distributed import Client, LocalCluster

    from shardvec.config import VectorColumnInput
    from shardvec.writer.dask import write_sharded

    dask.config.set({"dataframe.convert-string": False})
    table = pa.table({
        "doc_id": pa.array(np.arange(ROWS, dtype=np.int64) + BASES["A"]),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(VECTORS.reshape(-1)), DIM),
    })
    target = Target(str(tmp_path / "store"), {}, tmp_path)
    store = InMemoryManifestStore()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1") as cluster, Client(cluster):
        frame = dd.from_pandas(table.to_pandas(types_mapper=pd.ArrowDtype), npartitions=2)
        result = write_sharded(frame, target.config("A", store),
                               VectorColumnInput(vector_col="embedding", id_col="doc_id"))
    assert result.manifest_ref.startswith("mem://")
    assert not (tmp_path / "store" / "_CURRENT").exists()
    with target.reader(store) as reader:
        assert serving(reader) == "A"
