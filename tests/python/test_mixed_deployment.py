"""A mixed deployment: shards on the S3 test server, manifests and the current pointer in PostgreSQL.

The Python writer and the Spark writer publish through one `PostgresManifestStore` (a DB-API
connection factory); the CLI (`--manifest-store postgresql://…`, libpq) and the async reader
(`manifest_store=`) find the snapshots there. Nothing manifest-like is written to the bucket. Hits
are checked against a brute force over the vectors written.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import numpy as np
import pyarrow as pa
import psycopg
import pytest

from conftest import CLI, s3_storage
from shardvec.config import VectorColumnInput, WriterManifestConfig, WriterOutputConfig
from shardvec.db_manifest_store import PostgresManifestStore
from shardvec.vector import AsyncShardedVectorReader, VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

DIM = 16
NUM_DBS = 4


def _schema(dsn: str) -> str:
    """A fresh schema, so the default table names (which the CLI uses) start empty."""
    name = f"mixed_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return name


def _brute_force(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    distances = np.sqrt(((vectors.astype(np.float64) - query.astype(np.float64)) ** 2).sum(axis=1))
    return [int(i) for i in ids[np.argsort(distances, kind="stable")[:k]]]


def _config(prefix: str, store: PostgresManifestStore, run_id: str, tmp_path: Path,
            storage: dict[str, Any]) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=NUM_DBS, strategy=VectorShardingStrategy.LSH), s3_prefix=prefix,
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2),
        output=WriterOutputConfig(run_id=run_id, local_root=str(tmp_path / f"build-{run_id}")),
        manifest=WriterManifestConfig(store=store), **storage)


def test_python_and_spark_writers_publish_to_postgres_and_the_cli_and_async_reader_read(
        pg_dsn: str, s3_server: dict[str, Any], spark: Any, tmp_path: Path) -> None:
    schema = _schema(pg_dsn)
    store = PostgresManifestStore(lambda: psycopg.connect(pg_dsn, options=f"-c search_path={schema}"))
    prefix, storage = s3_server["prefix"], s3_storage(s3_server)
    rng = np.random.default_rng(11)

    # 1. The Python writer.
    py_vectors = rng.standard_normal((300, DIM)).astype(np.float32)
    py_ids = np.arange(300, dtype=np.int64)
    assert write_arrays(py_vectors, _config(prefix, store, "py-run", tmp_path, storage),
                        ids=py_ids).manifest_ref == "py-run"

    # 2. The Spark writer, publishing the newer snapshot through the same store (from the driver).
    from shardvec.writer.spark import write_sharded

    spark_vectors = rng.standard_normal((400, DIM)).astype(np.float32)
    spark_ids = np.arange(1000, 1400, dtype=np.int64)
    table = pa.table({"doc_id": pa.array(spark_ids),
                      "embedding": pa.FixedSizeListArray.from_arrays(pa.array(spark_vectors.reshape(-1)), DIM)})
    result = write_sharded(spark.createDataFrame(table.to_pandas()).repartition(3),
                           _config(prefix, store, "spark-run", tmp_path, storage),
                           VectorColumnInput(vector_col="embedding", id_col="doc_id"))
    assert result.manifest_ref == "spark-run"
    assert store.load_current().ref == "spark-run"
    assert [m.ref for m in store.list_manifests(limit=10)] == ["spark-run", "py-run"]

    # The bucket holds shards (and run records) only: no manifests/ and no _CURRENT.
    bucket, key_prefix = prefix[len("s3://"):].split("/", 1)
    s3 = boto3.client("s3", endpoint_url=storage["s3_connection_options"]["endpoint_url"], region_name="us-east-1",
                      aws_access_key_id=s3_server["credentials"]["access_key_id"],
                      aws_secret_access_key=s3_server["credentials"]["secret_access_key"])
    keys = [o["Key"][len(key_prefix) + 1:] for o in
            s3.list_objects_v2(Bucket=bucket, Prefix=key_prefix + "/").get("Contents", [])]
    assert keys and all(k.startswith(("shards/", "runs/", "vector_meta/")) for k in keys), keys

    # 3. The CLI, over libpq with a DSN naming the same schema.
    dsn = pg_dsn + ("&" if "?" in pg_dsn else "?") + "options=" + quote(f"-csearch_path={schema}")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": s3_server["credentials"]["access_key_id"],
           "AWS_SECRET_ACCESS_KEY": s3_server["credentials"]["secret_access_key"]}
    s3_flags = ["--endpoint-url", storage["s3_connection_options"]["endpoint_url"], "--region", "us-east-1",
                "--addressing-style", "path", "--manifest-store", dsn]

    def cli(*args: str) -> str:
        done = subprocess.run([str(CLI), *args, "--store", prefix, *s3_flags], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "secret" not in done.stderr.lower() or "***" in done.stderr
        return done.stdout

    history = json.loads(cli("history", "--json"))
    assert [(h["run_id"], h["current"]) for h in history["manifests"]] == [("spark-run", True), ("py-run", False)]
    queries = rng.standard_normal((5, DIM)).astype(np.float32)
    np.save(tmp_path / "q.npy", queries)
    all_shards = ",".join(str(i) for i in range(NUM_DBS))
    lines = cli("search", "--query-file", str(tmp_path / "q.npy"), "--top-k", "5", "--shard-ids", all_shards,
                "--json", "--cache-dir", str(tmp_path / "cli-cache")).splitlines()
    for query, line in zip(queries, lines, strict=True):
        assert [h["id"] for h in json.loads(line)["results"]] == _brute_force(spark_vectors, spark_ids, query, 5)
    older = cli("search", "--query-file", str(tmp_path / "q.npy"), "--top-k", "5", "--shard-ids", all_shards,
                "--json", "--run-id", "py-run", "--cache-dir", str(tmp_path / "cli-cache")).splitlines()
    assert [h["id"] for h in json.loads(older[0])["results"]] == _brute_force(py_vectors, py_ids, queries[0], 5)

    # 4. The async reader through the DB-API store; a CLI rollback moves the pointer it refreshes to.
    async def read() -> None:
        async with await AsyncShardedVectorReader.open(
                s3_prefix=prefix, local_root=str(tmp_path / "async-cache"), manifest_store=store,
                max_concurrency=4, **storage) as reader:
            assert reader.snapshot_info().run_id == "spark-run"
            answers = await asyncio.gather(*(reader.search(q, top_k=5, shard_ids=list(range(NUM_DBS)))
                                             for q in queries))
            for query, answer in zip(queries, answers, strict=True):
                assert [h.id for h in answer.results] == _brute_force(spark_vectors, spark_ids, query, 5)
            cli("rollback", "--run-id", "py-run")
            assert await reader.refresh()
            assert reader.snapshot_info().run_id == "py-run"
            answer = await reader.search(queries[1], top_k=5, shard_ids=list(range(NUM_DBS)))
            assert [h.id for h in answer.results] == _brute_force(py_vectors, py_ids, queries[1], 5)

    asyncio.run(read())
    assert store.load_current().ref == "py-run"
