"""Layout settings (output.shard_prefix, output.db_path_template, output.run_registry_prefix and the
CLI's --shard-prefix, --db-path-template, --run-registry-prefix) on a folder and on the S3 test
server: the keys written are exactly the reference's, readers find them, and history, rollback and
cleanup work with them."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import shardvec
from shardvec.config import WriterOutputConfig
from shardvec.errors import ConfigValidationError
from shardvec.vector import ShardedVectorReader, VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

from conftest import CLI, s3_storage

DIM = 8
ROWS = 40
VECTORS = np.random.default_rng(11).standard_normal((ROWS, DIM)).astype(np.float32)
LAYOUT = {"shard_prefix": "blobs", "db_path_template": "shard-{db_id:03d}", "run_registry_prefix": "registry"}


class Store:
    """A store prefix (folder or S3) with a way to list every key under it and read one object."""

    def __init__(self, prefix: str, storage: dict[str, Any], tmp_path: Path, server: dict[str, Any] | None) -> None:
        self.prefix = prefix
        self.storage = storage
        self.tmp_path = tmp_path
        self._server = server

    def _s3(self) -> tuple[Any, str, str]:
        import boto3

        assert self._server is not None
        creds = self._server["credentials"]
        client = boto3.client("s3", endpoint_url=self._server["s3_connection_options"]["endpoint_url"],
                              region_name="us-east-1", aws_access_key_id=creds["access_key_id"],
                              aws_secret_access_key=creds["secret_access_key"])
        bucket, _, key_prefix = self.prefix[len("s3://"):].partition("/")
        return client, bucket, key_prefix

    def keys(self) -> list[str]:
        if self._server is None:
            root = Path(self.prefix)
            return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        client, bucket, key_prefix = self._s3()
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix + "/")
        return sorted(o["Key"][len(key_prefix) + 1:] for page in pages for o in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        if self._server is None:
            return (Path(self.prefix) / key).read_bytes()
        client, bucket, key_prefix = self._s3()
        return client.get_object(Bucket=bucket, Key=f"{key_prefix}/{key}")["Body"].read()

    def publish(self, run_id: str, base: int = 0, **output: Any) -> Any:
        config = VectorShardedWriteConfig(
            sharding=VectorShardingConfig(num_dbs=3, strategy=VectorShardingStrategy.LSH),
            s3_prefix=self.prefix,
            index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2),
            output=WriterOutputConfig(run_id=run_id, local_root=str(self.tmp_path / f"build-{run_id}"), **output),
            **self.storage,
        )
        return write_arrays(VECTORS, config, ids=np.arange(ROWS, dtype=np.int64) + base)

    def nearest(self, row: int) -> int:
        with ShardedVectorReader(s3_prefix=self.prefix, local_root=str(self.tmp_path / "reader"),
                                 **self.storage) as reader:
            return int(reader.search(VECTORS[row].tolist(), top_k=1, shard_ids=[0, 1, 2]).results[0].id)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        return Store(server["prefix"], s3_storage(server), tmp_path, server)
    return Store(str(tmp_path / "store"), {}, tmp_path, None)


def reference_shard_url(prefix: str, run_id: str, db_id: int) -> str:
    """The reference writer's db_url: f"{s3_prefix}/{shard_prefix}/run_id={run}/{template.format(db_id=N)}/attempt=00"."""
    return f"{prefix}/{LAYOUT['shard_prefix']}/run_id={run_id}/{LAYOUT['db_path_template'].format(db_id=db_id)}/attempt=00"


def test_custom_layout_writes_the_references_keys_and_readers_find_them(store: Store) -> None:
    result = store.publish("R", **LAYOUT)
    keys = store.keys()
    url_prefix = store.prefix if store.prefix.startswith("s3://") else f"file://{store.prefix}"
    for shard in result.winners:
        assert shard.db_url == reference_shard_url(url_prefix, "R", shard.db_id)
    shard_keys = [k for k in keys if k.endswith("/shard.db")]
    assert shard_keys == [f"blobs/run_id=R/shard-{s.db_id:03d}/attempt=00/shard.db"
                          for s in sorted(result.winners, key=lambda s: s.db_id)]
    records = [k for k in keys if k.endswith("run.yaml")]
    assert len(records) == 1 and re.fullmatch(
        r"registry/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z_run_id=R_[0-9a-f]{32}/run\.yaml", records[0]), records
    record = store.read(records[0]).decode()
    assert "shard_prefix: 'blobs'" in record or 'shard_prefix: "blobs"' in record or "shard_prefix: blobs" in record
    assert "shard-{db_id:03d}" in record
    assert not [k for k in keys if k.startswith(("shards/", "runs/"))], keys
    # The manifest records the layout (the reference's build_meta columns).
    manifest = store.tmp_path / "manifest.sqlite"
    manifest.write_bytes(store.read(next(k for k in keys if k.endswith("/manifest"))))
    with sqlite3.connect(manifest) as db:
        assert db.execute("SELECT shard_prefix, db_path_template FROM build_meta").fetchone() == \
            ("blobs", "shard-{db_id:03d}")
    assert store.nearest(5) == 5


def test_history_rollback_and_cleanup_work_with_a_custom_layout(store: Store) -> None:
    store.publish("A", base=0, **LAYOUT)
    store.publish("B", base=1000, **LAYOUT)
    assert store.nearest(3) == 1003
    opts = dict(store.storage)
    assert [e.run_id for e in shardvec.history(store.prefix, **opts)] == ["B", "A"]
    shardvec.rollback(store.prefix, run_id="A", **opts)
    assert store.nearest(3) == 3
    # Default prefixes: nothing under blobs/ is looked at, so nothing is deleted.
    assert shardvec.cleanup(store.prefix, keep_last=1, **opts).deleted_keys == []
    # A is current and B the newest: both kept.
    report = shardvec.cleanup(store.prefix, keep_last=1, shard_prefix="blobs", run_registry_prefix="registry", **opts)
    assert (report.removed_runs, report.deleted_keys) == ([], [])
    assert sorted(report.kept_runs) == ["A", "B"]
    assert store.nearest(3) == 3


def test_cleanup_with_the_layout_removes_an_unkept_run_and_rollback_then_refuses_it(store: Store) -> None:
    store.publish("A", base=0, **LAYOUT)
    store.publish("B", base=1000, **LAYOUT)
    opts = dict(store.storage)
    report = shardvec.cleanup(store.prefix, keep_last=1, shard_prefix="blobs", run_registry_prefix="registry", **opts)
    assert report.removed_runs == ["A"]
    assert any(k.startswith("blobs/run_id=A/shard-") for k in report.deleted_keys)
    assert not [k for k in store.keys() if k.startswith("blobs/run_id=A/")]
    with pytest.raises(shardvec.ShardvecError, match="blobs/run_id=A/shard-"):
        shardvec.rollback(store.prefix, run_id="A", **opts)
    assert store.nearest(3) == 1003


@pytest.mark.parametrize(("output", "message"), [
    ({"db_path_template": "db"}, "output.db_path_template 'db' is not supported: it has no {db_id} field"),
    ({"db_path_template": "d/{db_id}"}, "output.db_path_template 'd/{db_id}' formatted for db_id=0 must be a single"),
    ({"db_path_template": "{db_id:,}"}, "format spec ',' is not supported"),
    ({"db_path_template": "{x}"}, "output.db_path_template must support format(db_id=...)"),
    ({"shard_prefix": "a b"}, "output.shard_prefix contains unsupported characters"),
    ({"run_registry_prefix": "a/b"}, "output.run_registry_prefix must be a single path segment"),
])
def test_layouts_the_engine_cannot_write_exactly_are_refused_naming_the_field(output: dict[str, str],
                                                                             message: str) -> None:
    with pytest.raises(ConfigValidationError) as info:
        WriterOutputConfig(**output)
    assert message in str(info.value)


def test_the_cli_build_writes_the_layout_and_refuses_a_bad_one_naming_the_flag(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", VECTORS)
    store = tmp_path / "cli-store"
    base = [str(CLI), "build", "--store", str(store), "--input", str(tmp_path / "v.npy"), "--metric", "l2",
            "--strategy", "lsh", "--num-dbs", "3", "--run-id", "C", "--local-root", str(tmp_path / "b"), "--quiet"]
    out = subprocess.run([*base, "--shard-prefix", "blobs", "--db-path-template", "shard-{db_id:03d}",
                          "--run-registry-prefix", "registry"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    files = sorted(str(p.relative_to(store)) for p in store.rglob("shard.db"))
    assert files and all(re.fullmatch(r"blobs/run_id=C/shard-00[0-2]/attempt=00/shard\.db", f) for f in files), files
    assert [p.parent.parent.name for p in store.rglob("run.yaml")] == ["registry"]
    assert not (store / "shards").exists() and not (store / "runs").exists()
    bad = subprocess.run([*base[:-3], "--local-root", str(tmp_path / "b2"), "--db-path-template", "db"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--db-path-template 'db' is not supported" in bad.stderr, bad.stderr
    ok = subprocess.run([str(CLI), "cleanup", "--store", str(store), "--shard-prefix", "blobs",
                         "--run-registry-prefix", "registry", "--json"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and '"kept_runs":["C"]' in ok.stdout.replace(" ", ""), ok.stdout + ok.stderr
    cleaned = subprocess.run([str(CLI), "cleanup", "--store", str(store), "--shard-prefix", "a/b"],
                             capture_output=True, text=True, timeout=60)
    assert cleaned.returncode == 2 and "--shard-prefix must be a single path segment" in cleaned.stderr, cleaned.stderr
