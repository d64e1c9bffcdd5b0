"""Shared fixtures: the S3 test server scripts/s3_test_server.py starts, the PostgreSQL server
scripts/pg_test_server.py starts, and the CLI binary."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Iterator
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "build" / "shardvec"


@pytest.fixture
def s3_server() -> dict[str, Any]:
    endpoint = os.environ.get("SHARDVEC_TEST_S3_ENDPOINT")
    if not endpoint:
        pytest.fail("no S3 test server: run with scripts/test, or under "
                    ".venv/bin/python scripts/s3_test_server.py -- .venv/bin/python -m pytest tests/python")
    assert endpoint.startswith("http://127.0.0.1:"), endpoint
    return {
        "prefix": f"s3://{os.environ['SHARDVEC_TEST_S3_BUCKET']}/pytests/{uuid.uuid4().hex[:12]}",
        "s3_connection_options": {"endpoint_url": endpoint, "region": "us-east-1", "addressing_style": "path"},
        "credentials": {"access_key_id": os.environ["SHARDVEC_TEST_S3_KEY_ID"],
                        "secret_access_key": os.environ["SHARDVEC_TEST_S3_SECRET"]},
    }


def s3_storage(server: dict[str, Any]) -> dict[str, Any]:
    """The writer's and reader's settings for the S3 test server (`s3_server`'s connection and keys)."""
    creds = server["credentials"]
    return {"s3_connection_options": server["s3_connection_options"], "credential_provider": lambda: creds}


@pytest.fixture(params=["local", "s3"])
def prefix_and_storage(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """A store prefix (a folder, then one on the S3 test server) and the writer/reader keyword
    arguments that reach it (``s3_connection_options``, ``credential_provider``; none for a folder)."""
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        creds = server["credentials"]
        return server["prefix"], {"s3_connection_options": server["s3_connection_options"],
                                  "credential_provider": lambda: creds}
    return str(tmp_path / "store"), {}


@pytest.fixture
def pg_dsn() -> str:
    """The PostgreSQL test server's DSN. Without one the test fails; a local run may set
    SHARDVEC_SKIP_PG_TESTS=1 to skip instead (never in CI, where CI is set)."""
    dsn = os.environ.get("SHARDVEC_TEST_PG_DSN")
    if not dsn:
        if os.environ.get("SHARDVEC_SKIP_PG_TESTS") == "1" and os.environ.get("CI", "") in ("", "0", "false"):
            pytest.skip("SHARDVEC_SKIP_PG_TESTS is set")
        pytest.fail("no PostgreSQL test server: run with scripts/test, or under "
                    ".venv/bin/python scripts/pg_test_server.py -- .venv/bin/python -m pytest tests/python")
    assert "@127.0.0.1:" in dsn, "PostgreSQL tests only ever talk to 127.0.0.1"
    return dsn


@pytest.fixture(scope="session")
def dask_client() -> Iterator[Any]:
    """A Dask LocalCluster of 2 worker processes, one thread each, on 127.0.0.1."""
    import dask
    from dask.distributed import Client, LocalCluster

    dask.config.set({"dataframe.convert-string": False})
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1") as cluster, Client(cluster) as client:
        yield client


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """A local Ray with 2 CPUs on 127.0.0.1."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=300 * 1024 * 1024, logging_level="WARNING",
             _node_ip_address="127.0.0.1")
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers need this venv's packages
    session = (SparkSession.builder.master("local[2,3]").appName("shardvec-tests")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def check_id_index(manifest_ref: str) -> int:
    """The id index a folder snapshot's manifest records (custom.shardvec.id_index), read as
    src/write/id_index.h lays it out: its digest and entry count are the recorded ones, its hashes
    ascend, and it lists exactly (xxh3 of each vec_id_map text, db_id) for every row of every shard
    the manifest names, as plain sqlite3 reads them. Returns the rows checked."""
    import numpy as np
    import xxhash

    with sqlite3.connect(f"file:{manifest_ref.removeprefix('file://')}?mode=ro", uri=True) as manifest:
        custom = json.loads(manifest.execute("SELECT custom FROM build_meta").fetchone()[0])
        shards = manifest.execute("SELECT db_id, db_url FROM shards").fetchall()
    meta = custom["shardvec"]["id_index"]
    assert meta["format"] == 1
    data = Path(meta["ref"].removeprefix("file://")).read_bytes()
    assert meta["digest"] == "xxh3:" + xxhash.xxh3_64_hexdigest(data)
    assert data[:8] == b"SVIDX\x01\x00\x00"
    count = int.from_bytes(data[8:16], "little")
    assert count == meta["entries"] and len(data) == 16 + 12 * count
    hashes = np.frombuffer(data, dtype="<u8", count=count, offset=16)
    dbs = np.frombuffer(data, dtype="<u4", count=count, offset=16 + 8 * count)
    assert (hashes[1:] >= hashes[:-1]).all()
    want = []
    for db_id, db_url in shards:
        with sqlite3.connect(f"file:{db_url.removeprefix('file://')}/shard.db?mode=ro", uri=True) as db:
            want += [(xxhash.xxh3_64_intdigest(text.encode()), db_id)
                     for (text,) in db.execute("SELECT original_id FROM vec_id_map")]
    assert sorted(want) == sorted(zip(hashes.tolist(), dbs.tolist(), strict=True))
    return count


def shards_downloaded(store: Path) -> None:
    """Makes a folder store's shards group-writable, so a reader downloads them into its cache (it
    reads a folder store's other shards in place, with no download to report)."""
    for shard in store.rglob("shard.db"):
        shard.chmod(shard.stat().st_mode | 0o020)
