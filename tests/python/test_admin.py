"""shardvec.history / current / rollback / cleanup (shardvec.admin) on a folder and on the S3 test
server: what they report, and what a second process's reader answers after each rollback and cleanup."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import shardvec
from shardvec import admin
from shardvec.config import WriterOutputConfig
from shardvec.errors import ConfigValidationError, ShardvecError
from shardvec.vector import VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

DIM = 8
ROWS = 30
# Each run's ids start here, so an answer names the snapshot that gave it.
RUN_BASES = {"A": 0, "B": 1000, "C": 2000}
VECTORS = np.random.default_rng(5).standard_normal((ROWS, DIM)).astype(np.float32)

# A second process: opens a fresh reader and prints the id nearest to VECTORS[3].
READER_SCRIPT = """
import json, sys
from shardvec.vector import ShardedVectorReader
prefix, options, creds, cache, query = sys.argv[1:6]
options, creds, query = json.loads(options), json.loads(creds), json.loads(query)
kwargs = {"s3_connection_options": options, "credential_provider": lambda: creds} if options else {}
with ShardedVectorReader(s3_prefix=prefix, local_root=cache, **kwargs) as reader:
    print(reader.search(query, top_k=1, shard_ids=[0, 1, 2]).results[0].id)
"""


class Store:
    def __init__(self, prefix: str, storage: dict[str, Any], creds: dict[str, str], tmp_path: Path) -> None:
        self.prefix = prefix
        self.storage = storage
        self.creds = creds
        self.tmp_path = tmp_path
        self.readers = 0

    def publish(self, run_id: str) -> None:
        config = VectorShardedWriteConfig(
            sharding=VectorShardingConfig(num_dbs=3, strategy=VectorShardingStrategy.LSH),
            s3_prefix=self.prefix,
            index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2),
            output=WriterOutputConfig(run_id=run_id, local_root=str(self.tmp_path / f"build-{run_id}")),
            **self.storage,
        )
        write_arrays(VECTORS, config, ids=np.arange(ROWS, dtype=np.int64) + RUN_BASES[run_id])

    def run_a_second_process_reads(self) -> str:
        self.readers += 1
        out = subprocess.run(
            [sys.executable, "-c", READER_SCRIPT, self.prefix,
             json.dumps(self.storage.get("s3_connection_options") or {}), json.dumps(self.creds),
             str(self.tmp_path / f"reader-{self.readers}"), json.dumps(VECTORS[3].tolist())],
            capture_output=True, text=True, timeout=120, check=False)
        assert out.returncode == 0, out.stderr
        answer = int(out.stdout.strip())
        return next(run for run, base in RUN_BASES.items() if answer == base + 3)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        creds = server["credentials"]
        storage = {"s3_connection_options": server["s3_connection_options"], "credential_provider": lambda: creds}
        s = Store(server["prefix"], storage, creds, tmp_path)
    else:
        s = Store(str(tmp_path / "store"), {}, {}, tmp_path)
    for run_id in ("A", "B", "C"):
        s.publish(run_id)
    return s


def test_the_package_exports_the_admin_functions() -> None:
    assert shardvec.history is admin.history
    assert shardvec.current is admin.current
    assert shardvec.rollback is admin.rollback
    assert shardvec.cleanup is admin.cleanup


def test_history_lists_snapshots_newest_first_with_their_manifests(store: Store) -> None:
    entries = shardvec.history(store.prefix, **store.storage)
    assert [e.run_id for e in entries] == ["C", "B", "A"]
    assert [e.current for e in entries] == [True, False, False]
    for entry in entries:
        assert isinstance(entry, admin.HistoryEntry)
        assert entry.manifest_error == ""
        summary = entry.manifest
        assert isinstance(summary, admin.ManifestSummary)
        assert (summary.total_vectors, summary.num_dbs, summary.dim) == (ROWS, 3, DIM)
        assert (summary.metric, summary.sharding_strategy) == ("l2", "lsh")
        assert entry.ref.endswith(f"manifests/{entry.published_at}_run_id={entry.run_id}/manifest")
    assert entries[1].published_at < entries[0].published_at

    listed = shardvec.history(store.prefix, limit=2, read_manifests=False, **store.storage)
    assert [e.run_id for e in listed] == ["C", "B"]
    assert listed[0].manifest is None

    now = shardvec.current(store.prefix, **store.storage)
    assert now is not None and now.run_id == "C" and now.ref == entries[0].ref and now.updated_at

    for bad in (0, -1, True, "2"):
        with pytest.raises(ConfigValidationError, match="limit must be an int >= 1"):
            shardvec.history(store.prefix, limit=bad, **store.storage)  # type: ignore[arg-type]


def test_rollback_is_what_a_second_process_reads(store: Store) -> None:
    assert store.run_a_second_process_reads() == "C"
    back = shardvec.rollback(store.prefix, previous=True, **store.storage)
    assert isinstance(back, admin.RollbackResult) and back.run_id == "B"
    assert store.run_a_second_process_reads() == "B"

    shardvec.rollback(store.prefix, run_id="A", **store.storage)
    assert shardvec.current(store.prefix, **store.storage).run_id == "A"  # type: ignore[union-attr]
    assert store.run_a_second_process_reads() == "A"

    with pytest.raises(ShardvecError, match="is the oldest"):
        shardvec.rollback(store.prefix, previous=True, **store.storage)
    with pytest.raises(ShardvecError, match="run_id=nope"):
        shardvec.rollback(store.prefix, run_id="nope", **store.storage)
    assert store.run_a_second_process_reads() == "A"

    newest = shardvec.rollback(store.prefix, offset=0, **store.storage)
    assert newest.run_id == "C"
    assert store.run_a_second_process_reads() == "C"
    by_ref = shardvec.rollback(store.prefix, ref=back.ref, **store.storage)
    assert by_ref.run_id == "B" and by_ref.ref == back.ref
    assert store.run_a_second_process_reads() == "B"

    with pytest.raises(ConfigValidationError, match="exactly one of run_id, ref, offset or previous"):
        shardvec.rollback(store.prefix, **store.storage)
    with pytest.raises(ConfigValidationError, match="exactly one of run_id, ref, offset or previous"):
        shardvec.rollback(store.prefix, run_id="A", previous=True, **store.storage)
    with pytest.raises(ConfigValidationError, match="offset must be an int >= 0"):
        shardvec.rollback(store.prefix, offset=-1, **store.storage)


def test_cleanup_keeps_what_a_second_process_reads(store: Store) -> None:
    shardvec.rollback(store.prefix, run_id="A", **store.storage)
    planned = shardvec.cleanup(store.prefix, dry_run=True, keep_last=1, **store.storage)
    assert isinstance(planned, admin.CleanupReport)
    assert planned.removed_runs == ["B"]
    assert planned.objects == len(planned.deleted_keys) > 0 and planned.bytes > 0
    assert all("run_id=B/" in key for key in planned.deleted_keys)
    again = shardvec.cleanup(store.prefix, dry_run=True, keep_last=1, **store.storage)
    assert again.deleted_keys == planned.deleted_keys, "a dry run deletes nothing"

    young = shardvec.cleanup(store.prefix, dry_run=True, older_than=timedelta(days=1), **store.storage)
    assert young.removed_runs == [], "every manifest is younger than a day"

    done = shardvec.cleanup(store.prefix, keep_last=1, **store.storage)
    assert done.deleted_keys == planned.deleted_keys
    assert store.run_a_second_process_reads() == "A"
    with pytest.raises(ShardvecError, match="refusing to make it current"):
        shardvec.rollback(store.prefix, run_id="B", **store.storage)
    assert store.run_a_second_process_reads() == "A"
    assert [e.run_id for e in shardvec.history(store.prefix, **store.storage)] == ["C", "B", "A"]
    assert shardvec.cleanup(store.prefix, keep_last=1, **store.storage).deleted_keys == []

    shardvec.rollback(store.prefix, run_id="C", **store.storage)
    assert store.run_a_second_process_reads() == "C"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"keep_last": 0}, "keep_last must be an int >= 1"),
    ({"keep_last": 2.0}, "keep_last must be an int >= 1"),
    ({"older_than": "7d"}, "older_than must be a datetime.timedelta"),
    ({"older_than": timedelta(seconds=-1)}, "older_than must be a datetime.timedelta"),
    ({"older_than": timedelta(milliseconds=1500)}, "older_than must be a datetime.timedelta"),
    ({"dry_run": "yes"}, "dry_run must be True or False"),
])
def test_cleanup_refuses_bad_options_naming_them(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigValidationError, match=message):
        shardvec.cleanup(str(tmp_path), **kwargs)


def test_cleanup_passes_a_too_large_older_than_to_the_engine_which_refuses_it(tmp_path: Path) -> None:
    with pytest.raises(ShardvecError, match="older_than must be at most"):
        shardvec.cleanup(str(tmp_path), older_than=timedelta(days=100001))


def test_a_reader_opened_at_a_manifest_ref_stays_on_that_snapshot(store: Store) -> None:
    """manifest_ref: a published manifest's URL, or its key under the store; refresh() never moves
    such a reader, and an unknown ref is an error naming it."""
    from shardvec.vector import ShardedVectorReader

    snapshots = {s.run_id: s for s in admin.history(store.prefix, limit=10, **store.storage)}
    first = snapshots["A"].ref
    key = first[first.index("manifests/"):]
    for i, ref in enumerate((first, key)):
        with ShardedVectorReader(s3_prefix=store.prefix, local_root=str(store.tmp_path / f"pinned-{i}"),
                                 manifest_ref=ref, **store.storage) as reader:
            assert reader.snapshot_info().run_id == "A"
            assert reader.search(VECTORS[3], top_k=1, shard_ids=[0, 1, 2]).results[0].id == RUN_BASES["A"] + 3
            assert reader.refresh() is False
            assert reader.snapshot_info().run_id == "A"
    with pytest.raises(ShardvecError, match="manifests/nope"):
        ShardedVectorReader(s3_prefix=store.prefix, local_root=str(store.tmp_path / "pinned-bad"),
                            manifest_ref="manifests/nope", **store.storage)
    with pytest.raises(ConfigValidationError, match="manifest_ref must be"):
        ShardedVectorReader(s3_prefix=store.prefix, local_root=str(store.tmp_path / "pinned-bad"), manifest_ref="")
