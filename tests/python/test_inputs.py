"""Inputs users have: Parquet and Arrow IPC files for ``shardvec build``, float16 vectors, standard
input (``-``), pandas and pyarrow columns for ``write_arrays``, dict records, NumPy scalars inside
payloads and Dask's ``convert-string`` setting.

What a build stored is read back from the shard files themselves (plain SQLite: the vec0 chunk
blobs, the id map and the payload table), so vectors are compared byte for byte with the source."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from conftest import CLI
from shardvec.errors import ConfigValidationError
from shardvec.vector import ShardedVectorReader, VectorRecord, VectorShardedWriteConfig, write_arrays, write_sharded
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

DIM = 8
ROWS = 300


def source_vectors(rows: int = ROWS, dim: int = DIM, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)


def stored(store: Path) -> dict[Any, tuple[bytes, dict[str, Any] | None]]:
    """Every row of every shard file under ``store``: id -> (the stored float32 bytes, the payload)."""
    rows: dict[Any, tuple[bytes, dict[str, Any] | None]] = {}
    shards = sorted(store.glob("shards/run_id=*/**/shard.db"))
    assert shards, f"no shard files under {store}"
    for shard in shards:
        with sqlite3.connect(f"file:{shard}?mode=ro", uri=True) as db:
            sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'vec_index'").fetchone()[0]
            dim = int(re.search(r"float\[(\d+)\]", sql).group(1))
            chunks = dict(db.execute("SELECT rowid, vectors FROM vec_index_vector_chunks00"))
            ids = {k: json.loads(v)["v"] for k, v in db.execute("SELECT internal_id, original_id FROM vec_id_map")}
            payloads = {k: json.loads(v) for k, v in db.execute("SELECT rowid, payload FROM vec_payloads")}
            for rowid, chunk_id, offset in db.execute("SELECT rowid, chunk_id, chunk_offset FROM vec_index_rowids"):
                blob = chunks[chunk_id][offset * dim * 4:(offset + 1) * dim * 4]
                rows[ids[rowid]] = (blob, payloads.get(rowid))
    return rows


def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], input=stdin, capture_output=True, timeout=300,
                          **({} if stdin is not None else {"text": True}))


def build(store: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[Any]:
    return cli("build", "--store", str(store), "--metric", "l2", "--strategy", "lsh", "--num-dbs", "3",
               "--quiet", "--json", *args, stdin=stdin)


def text(out: bytes | str) -> str:
    return out.decode() if isinstance(out, bytes) else out


def fixed_size_list(vectors: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])


# --- Parquet and Arrow IPC files through the CLI ---------------------------------------------------


def test_a_parquet_file_builds_with_ids_payloads_and_vectors_equal_to_the_source(tmp_path: Path) -> None:
    vectors = source_vectors()
    ids = np.arange(ROWS, dtype=np.int64) * 10 + 3
    table = pa.table({
        "doc": pa.array(ids),
        "emb": fixed_size_list(vectors),
        "title": [f"title {i} é" for i in range(ROWS)],
        "rank": pa.array(np.arange(ROWS, dtype=np.int32)),
        "score": pa.array(np.linspace(0, 1, ROWS)),
        "flag": [i % 2 == 0 for i in range(ROWS)],
        "maybe": [None if i % 3 else i for i in range(ROWS)],
        "tags": [[f"t{i}", "x"] for i in range(ROWS)],
        "unused": ["never read"] * ROWS,
    })
    path = tmp_path / "in.parquet"
    pq.write_table(table, path, row_group_size=128)  # several row groups, read batch by batch
    run = build(tmp_path / "store", "--input", str(path), "--vector-col", "emb", "--id-col", "doc",
                "--payload-cols", "title,rank,score,flag,maybe,tags")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["total_vectors"] == ROWS
    rows = stored(tmp_path / "store")
    expected_payloads = table.select(["title", "rank", "score", "flag", "maybe", "tags"]).to_pylist()
    assert sorted(rows) == sorted(ids.tolist())
    for row, doc in enumerate(ids.tolist()):
        blob, payload = rows[doc]
        assert blob == vectors[row].tobytes()
        assert payload == expected_payloads[row]
    # A search finds each source row at distance 0 and returns its payload.
    with ShardedVectorReader(s3_prefix=str(tmp_path / "store"), local_root=str(tmp_path / "cache")) as reader:
        hit = reader.search(vectors[5], top_k=1, num_probes=3).results[0]
    assert (hit.id, hit.score, hit.payload) == (int(ids[5]), 0.0, expected_payloads[5])


@pytest.mark.parametrize("kind", ["arrow", "feather", "ipc-stream"])
def test_arrow_ipc_files_build_float16_lists_exactly_with_string_ids(tmp_path: Path, kind: str) -> None:
    halves = source_vectors(seed=3).astype(np.float16)
    halves[0, :4] = np.array([6.1e-5, -0.0, 65504.0, 5.96e-8], dtype=np.float16)  # normal, -0, max, subnormal
    ids = [f"doc-{i}" for i in range(ROWS)]
    emb = pa.ListArray.from_arrays(pa.array(np.arange(ROWS + 1, dtype=np.int32) * DIM),
                                   pa.array(halves.reshape(-1), type=pa.float16()))
    table = pa.table({"id": ids, "emb": emb, "n": list(range(ROWS))})
    path = tmp_path / {"arrow": "in.arrow", "feather": "in.feather", "ipc-stream": "in.ipc"}[kind]
    if kind == "ipc-stream":
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            for batch in table.to_batches(max_chunksize=100):
                writer.write_batch(batch)
    elif kind == "feather":
        feather.write_feather(table, path, chunksize=100)
    else:
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            for batch in table.to_batches(max_chunksize=100):
                writer.write_batch(batch)
    run = build(tmp_path / "store", "--input", str(path), "--vector-col", "emb", "--id-col", "id", "--payload-cols", "n")
    assert run.returncode == 0, run.stderr
    rows = stored(tmp_path / "store")
    widened = halves.astype(np.float32)  # float16 -> float32 is exact
    assert sorted(rows) == sorted(ids)
    for row, doc in enumerate(ids):
        assert rows[doc] == (widened[row].tobytes(), {"n": row})


def test_parquet_on_an_s3_store_builds_and_searches(tmp_path: Path, s3_server: dict[str, Any]) -> None:
    vectors = source_vectors(rows=120)
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"vector": fixed_size_list(vectors), "id": pa.array(np.arange(120, dtype=np.uint32))}), path)
    env_args = ["--endpoint-url", s3_server["s3_connection_options"]["endpoint_url"], "--region", "us-east-1",
                "--addressing-style", "path"]
    creds = s3_server["credentials"]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": creds["access_key_id"], "AWS_SECRET_ACCESS_KEY": creds["secret_access_key"]}
    run = subprocess.run([str(CLI), "build", "--store", s3_server["prefix"], "--input", str(path), "--id-col", "id",
                          "--metric", "l2", "--strategy", "lsh", "--num-dbs", "2", "--json", "--quiet", *env_args],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    query = tmp_path / "q.npy"
    np.save(query, vectors[[17, 90]])
    found = subprocess.run([str(CLI), "search", "--store", s3_server["prefix"], "--query-file", str(query), "--top-k", "1",
                            "--num-probes", "2", "--json", "--cache-dir", str(tmp_path / "cache"), *env_args],
                           capture_output=True, text=True, env=env, timeout=300)
    assert found.returncode == 0, found.stderr
    hits = [json.loads(line) for line in found.stdout.splitlines()]
    assert [(h["results"][0]["id"], h["results"][0]["score"]) for h in hits] == [(17, 0.0), (90, 0.0)]


def write_parquet(path: Path, **columns: Any) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def test_bad_parquet_and_arrow_inputs_are_refused_naming_the_column_the_row_and_the_value(tmp_path: Path) -> None:
    ragged = pa.array([[0.5, 1.0, 2.0], [1.0, 2.0, 3.0], [1.0, 2.0]], type=pa.list_(pa.float32()))
    cases = {
        "ragged": (write_parquet(tmp_path / "ragged.parquet", vector=ragged), [],
                   "column 'vector' row 2: has 2 values, expected 3 (ragged rows)"),
        "missing": (write_parquet(tmp_path / "missing.parquet", emb=ragged), ["--vector-col", "embedding"],
                    "--vector-col 'embedding' is not a column of the file (its columns: 'emb')"),
        "type": (write_parquet(tmp_path / "type.parquet", vector=["a", "b"]), [],
                 "--vector-col 'vector' has type string, expected a fixed_size_list or list of float16, float32 or float64"),
        "null vector": (write_parquet(tmp_path / "null.parquet", vector=pa.array([[1.0], None], type=pa.list_(pa.float32()))),
                        [], "column 'vector' row 1: the vector is null"),
        "null value": (write_parquet(tmp_path / "nullv.parquet", vector=pa.array([[1.0, None]], type=pa.list_(pa.float32()))),
                       [], "column 'vector' row 0: value at index 1 is null"),
        "big id": (write_parquet(tmp_path / "bigid.parquet", vector=pa.array([[1.0], [2.0]], type=pa.list_(pa.float32())),
                                 id=pa.array([1, 2**63], type=pa.uint64())), ["--id-col", "id"],
                   "column 'id' row 1: id 9223372036854775808 is larger than int64"),
        "id type": (write_parquet(tmp_path / "idtype.parquet", vector=pa.array([[1.0]], type=pa.list_(pa.float32())),
                                  id=pa.array([1.5])), ["--id-col", "id"],
                    "--id-col 'id' has type double, expected an integer or string column"),
        "payload type": (write_parquet(tmp_path / "blob.parquet", vector=pa.array([[1.0]], type=pa.list_(pa.float32())),
                                       blob=pa.array([b"\x00"])), ["--payload-cols", "blob"],
                         "column 'blob' row 0: type binary cannot be a JSON payload value"),
        "payload nan": (write_parquet(tmp_path / "nan.parquet", vector=pa.array([[1.0], [2.0]], type=pa.list_(pa.float32())),
                                      x=pa.array([1.0, float("nan")])), ["--payload-cols", "x"],
                        "column 'x' row 1: payload value nan is not finite"),
        "not arrow": (tmp_path / "text.arrow", [], "not an Arrow IPC file or stream"),
    }
    (tmp_path / "text.arrow").write_text("hello\n")
    for name, (path, flags, message) in cases.items():
        run = build(tmp_path / name.replace(" ", "_"), "--input", str(path), *flags)
        assert run.returncode == 1, (name, run.stdout, run.stderr)
        assert f"--input '{path}'" in run.stderr and message in run.stderr, (name, run.stderr)
        assert not (tmp_path / name.replace(" ", "_") / "_CURRENT").exists()


def test_column_flags_need_a_parquet_or_arrow_input_and_no_column_is_given_twice(tmp_path: Path) -> None:
    npy = tmp_path / "v.npy"
    np.save(npy, source_vectors(rows=10))
    run = build(tmp_path / "s", "--input", str(npy), "--vector-col", "emb", "--payload-cols", "a,b")
    assert run.returncode == 2
    assert "--vector-col, --payload-cols apply to Parquet/Arrow inputs only" in run.stderr
    parquet = write_parquet(tmp_path / "v.parquet", vector=fixed_size_list(source_vectors(rows=10)), id=list(range(10)))
    (tmp_path / "ids.txt").write_text("\n".join(str(i) for i in range(10)))
    run = build(tmp_path / "s", "--input", str(parquet), "--id-col", "id", "--ids", str(tmp_path / "ids.txt"))
    assert run.returncode == 2 and "--id-col 'id' and --ids" in run.stderr and "give one" in run.stderr


# --- float16 .npy and standard input -------------------------------------------------------------


def test_a_float16_npy_builds_exactly_as_its_float32_widening(tmp_path: Path) -> None:
    halves = source_vectors(seed=11).astype(np.float16)
    np.save(tmp_path / "h.npy", halves)
    run = build(tmp_path / "store", "--input", str(tmp_path / "h.npy"))
    assert run.returncode == 0, run.stderr
    rows = stored(tmp_path / "store")
    assert {k: v[0] for k, v in rows.items()} == {i: halves[i].astype(np.float32).tobytes() for i in range(ROWS)}


def test_standard_input_carries_an_npy_or_jsonl_input_or_a_side_file(tmp_path: Path) -> None:
    vectors = source_vectors(rows=50)
    np.save(tmp_path / "v.npy", vectors)
    run = build(tmp_path / "npy", "--input", "-", stdin=(tmp_path / "v.npy").read_bytes())
    assert run.returncode == 0, run.stderr
    assert {k: v[0] for k, v in stored(tmp_path / "npy").items()} == {i: vectors[i].tobytes() for i in range(50)}

    lines = "".join(json.dumps({"id": f"d{i}", "vector": vectors[i].tolist(), "payload": {"i": i}}) + "\n"
                    for i in range(50))
    run = build(tmp_path / "jsonl", "--input", "-", stdin=lines.encode())
    assert run.returncode == 0, run.stderr
    assert stored(tmp_path / "jsonl") == {f"d{i}": (vectors[i].tobytes(), {"i": i}) for i in range(50)}

    ids = "".join(f"id-{i}\n" for i in range(50)).encode()
    run = build(tmp_path / "ids", "--input", str(tmp_path / "v.npy"), "--ids", "-", stdin=ids)
    assert run.returncode == 0, run.stderr
    assert sorted(stored(tmp_path / "ids")) == sorted(f"id-{i}" for i in range(50))


def test_standard_input_is_one_file_at_most_and_never_gzip(tmp_path: Path) -> None:
    run = build(tmp_path / "s", "--input", "-", "--payloads", "-", stdin=b"")
    assert run.returncode == 2
    assert "--input, --payloads all read standard input ('-'); at most one file can come from it" in text(run.stderr)
    run = build(tmp_path / "s", "--input", "-", stdin=b"\x1f\x8b\x08\x00rest")
    assert run.returncode == 1
    assert "--input '-': standard input is gzip-compressed; pipe it through 'gunzip -c' first" in text(run.stderr)


# --- write_arrays: float16, pandas and pyarrow columns --------------------------------------------


def config(prefix: Path, **index: Any) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2, **index),
        sharding=VectorShardingConfig(strategy=VectorShardingStrategy.LSH, num_dbs=2),
        s3_prefix=str(prefix))


def test_write_arrays_takes_float16_exactly(tmp_path: Path) -> None:
    halves = source_vectors(rows=40).astype(np.float16)
    write_arrays(halves, config(tmp_path / "store"))
    rows = stored(tmp_path / "store")
    assert {k: v[0] for k, v in rows.items()} == {i: halves[i].astype(np.float32).tobytes() for i in range(40)}


VECTOR_FORMS = {
    "pandas DataFrame": lambda v: pd.DataFrame(v),
    "pandas Series of arrays": lambda v: pd.Series(list(v)),
    "pandas Series of Arrow lists": lambda v: pd.Series(pd.arrays.ArrowExtensionArray(fixed_size_list(v))),
    "pyarrow FixedSizeList": fixed_size_list,
    "pyarrow List": lambda v: pa.array(list(v), type=pa.list_(pa.float32())),
    "pyarrow float16 List": lambda v: pa.array(list(v.astype(np.float16)), type=pa.list_(pa.float16())),
    "pyarrow ChunkedArray": lambda v: pa.chunked_array([fixed_size_list(v[:15]), fixed_size_list(v[15:])]),
}


@pytest.mark.parametrize("form", sorted(VECTOR_FORMS))
def test_write_arrays_takes_pandas_and_pyarrow_vectors_and_ids(tmp_path: Path, form: str) -> None:
    vectors = source_vectors(rows=40)
    expected = vectors.astype(np.float16).astype(np.float32) if "float16" in form else vectors
    int_ids = pd.Series(np.arange(40, dtype=np.int64) + 100)
    write_arrays(VECTOR_FORMS[form](vectors), config(tmp_path / "int"), ids=int_ids,
                 payloads=pd.DataFrame({"n": np.arange(40), "ok": np.ones(40, dtype=bool)}))
    assert stored(tmp_path / "int") == {100 + i: (expected[i].tobytes(), {"n": i, "ok": True}) for i in range(40)}
    str_ids = pa.chunked_array([pa.array([f"s{i}" for i in range(20)]), pa.array([f"s{i}" for i in range(20, 40)])])
    write_arrays(VECTOR_FORMS[form](vectors), config(tmp_path / "str"), ids=str_ids)
    assert {k: v[0] for k, v in stored(tmp_path / "str").items()} == {f"s{i}": expected[i].tobytes() for i in range(40)}


def test_write_arrays_refuses_ragged_or_null_arrow_vectors_and_null_ids_naming_the_row(tmp_path: Path) -> None:
    ragged = pa.array([[1.0] * DIM, [1.0] * DIM, [1.0] * (DIM - 1)], type=pa.list_(pa.float32()))
    with pytest.raises(ConfigValidationError, match=r"vectors row 2 has 7 values, expected 8 \(ragged rows\)"):
        write_arrays(ragged, config(tmp_path / "a"))
    nulls = pa.array([[1.0] * DIM, None], type=pa.list_(pa.float32()))
    with pytest.raises(ConfigValidationError, match="vectors row 1 is null"):
        write_arrays(nulls, config(tmp_path / "b"))
    with pytest.raises(ConfigValidationError, match="ids row 1 is null"):
        write_arrays(source_vectors(rows=2), config(tmp_path / "c"), ids=pd.Series([1, None], dtype="Int64"))
    with pytest.raises(ConfigValidationError, match="ids must be integers in the int64 range: 9223372036854775808 is above it"):
        write_arrays(source_vectors(rows=2), config(tmp_path / "c"), ids=pa.array([1, 2**63], type=pa.uint64()))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


# --- records and payloads ------------------------------------------------------------------------


def test_records_given_as_dicts_are_refused_pointing_at_vector_record(tmp_path: Path) -> None:
    records = [VectorRecord(id=0, vector=np.zeros(DIM)), {"id": 1, "vector": [0.0] * DIM}]
    with pytest.raises(ConfigValidationError,
                       match=r"record at row 1 is a dict, not a VectorRecord: write VectorRecord\(id=\.\.\., vector=\.\.\.\)"):
        write_sharded(records, config(tmp_path / "store"))
    assert not (tmp_path / "store" / "_CURRENT").exists()


def test_numpy_scalars_and_arrays_inside_payloads_serialize(tmp_path: Path) -> None:
    payload = {"i": np.int64(7), "f": np.float32(0.5), "b": np.bool_(True), "s": np.str_("x"), "z": np.array(3),
               "a": np.arange(3, dtype=np.int16), "nested": {"u": np.uint8(255), "l": [np.float64(1.25)]}}
    expected = {"i": 7, "f": 0.5, "b": True, "s": "x", "z": 3, "a": [0, 1, 2], "nested": {"u": 255, "l": [1.25]}}
    write_arrays(source_vectors(rows=2), config(tmp_path / "arrays"), payloads=[payload, None])
    assert stored(tmp_path / "arrays")[0][1] == expected
    write_sharded([VectorRecord(id=5, vector=np.ones(DIM), payload=payload)], config(tmp_path / "records"))
    assert stored(tmp_path / "records")[5][1] == expected
    with pytest.raises(ConfigValidationError, match="payload of row 0 is not JSON-serializable: .*object"):
        write_arrays(source_vectors(rows=1), config(tmp_path / "bad"), payloads=[{"o": object()}])


# --- Dask's convert-string ------------------------------------------------------------------------


def test_dask_convert_string_vectors_get_an_error_that_says_how_to_fix_it(tmp_path: Path) -> None:
    import dask
    import dask.dataframe as dd

    from shardvec.config import VectorColumnInput
    from shardvec.writer.dask import write_sharded as dask_write

    frame = pd.DataFrame({"id": [f"d{i}" for i in range(20)], "vector": list(source_vectors(rows=20))})
    with dask.config.set({"dataframe.convert-string": True, "scheduler": "synchronous"}):
        data = dd.from_pandas(frame, npartitions=2)
        with pytest.raises(ConfigValidationError, match=r"input.vector_col 'vector' is a text column .*"
                                                        r"dask.config.set\(\{'dataframe.convert-string': False\}\)"):
            dask_write(data, config(tmp_path / "store"), VectorColumnInput(vector_col="vector", id_col="id"))
    with dask.config.set({"dataframe.convert-string": False, "scheduler": "synchronous"}):
        data = dd.from_pandas(frame, npartitions=2)
        result = dask_write(data, config(tmp_path / "store"), VectorColumnInput(vector_col="vector", id_col="id"))
    assert result.stats.rows_written == 20
