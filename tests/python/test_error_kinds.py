"""Engine errors reach Python through one (status code, error kind) table: every class the table names is
raised by a real engine call below, and no class depends on the wording of the engine's message."""

from __future__ import annotations

import ast
import contextlib
import http.client
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shardvec import errors
from shardvec._native import _engine
from shardvec.config import WriterOutputConfig
from shardvec.errors import (
    ConfigValidationError,
    ManifestParseError,
    ManifestStoreError,
    PublishConflictError,
    PublishCurrentError,
    PublishManifestError,
    ReaderStateError,
    S3TransientError,
    ShardvecError,
    ShardWriteError,
    ShardyfusionError,
    UnknownRoutingTokenError,
    VectorSearchError,
    error_from_engine,
)
from shardvec.vector import ShardedVectorReader, VectorRecord, VectorShardedWriteConfig, write_arrays, write_sharded
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

from test_hostile_inputs import DIM, config, manifest_file, open_strict, published, records
from test_local_folders import open_reader_with_refused_threads

ROOT = Path(__file__).resolve().parents[2]
TABLE = _engine.error_table()


def engine_error(raised: pytest.ExceptionInfo[Any], code: str, kind: str) -> Any:
    """The raised error, checked to come from the engine with this code and kind."""
    assert (raised.value.engine_code, raised.value.engine_kind) == (code, kind), str(raised.value)
    return raised.value


# --- the table ------------------------------------------------------------------------------------


def test_the_table_names_public_classes_once_per_code_and_kind() -> None:
    pairs = [(code, kind) for code, kind, _, _ in TABLE]
    assert len(pairs) == len(set(pairs))
    for _, _, cls, retryable in TABLE:
        assert cls in errors.__all__, cls
        assert retryable in (None, False)


@pytest.mark.parametrize(
    ("code", "kind", "message", "cls", "retryable"),
    [
        ("InvalidArgument", "None", "index_config.dim must be > 0 (got 0)", ConfigValidationError, False),
        ("FailedPrecondition", "ReaderClosed", "reader is closed", ReaderStateError, False),
        ("Conflict", "PublishConflict", "PublishConflictError: _CURRENT now names manifest 'x'",
         PublishConflictError, False),
        ("Conflict", "None", "rollback to 'r' lost a race", PublishCurrentError, True),
        ("Corruption", "ManifestParse", "manifest: format_version 3 is not supported", ManifestParseError, False),
        ("Corruption", "ManifestParse", "CURRENT pointer validation failed: bad json", ManifestParseError, False),
        ("Corruption", "ShardVerification", "shard 3 failed verification: expected 10 bytes, got 9 bytes",
         VectorSearchError, False),
        ("Corruption", "None", "invalid id_map value 'x'", VectorSearchError, False),
        ("Corruption", "StoreResponse", "S3 ListObjectsV2 response is not XML", ManifestStoreError, True),
        ("Corruption", "RouterUnavailable", "centroids are 2 x 3, expected num_dbs x dim = 2 x 4", ReaderStateError,
         False),
        ("NotFound", "NoCurrentPointer", "No CURRENT pointer found at 'file:///x/_CURRENT'", ReaderStateError, False),
        ("NotFound", "None", "object 'file:///x/y' does not exist", ManifestStoreError, False),
        ("AlreadyExists", "ManifestExists", "manifest key 'manifests/x/manifest' already exists",
         PublishManifestError, True),
        ("AlreadyExists", "None", "local build directory '/tmp/x' already exists", ShardWriteError, False),
        ("PermissionDenied", "None", "S3 GET: AccessDenied", ManifestStoreError, False),
        ("IOError", "None", "cannot write '/x': No space left on device", ManifestStoreError, True),
        ("Unavailable", "None", "S3 PUT: SlowDown (gave up after 6 attempts)", S3TransientError, True),
        ("Unavailable", "ThreadLimit", "cannot start a thread for x: Resource temporarily unavailable", ShardvecError,
         False),
        ("Internal", "None", "invariant broken", ShardvecError, False),
        ("Whatever", "None", "unknown code", ShardvecError, False),
    ],
)
def test_error_from_engine(code: str, kind: str, message: str, cls: type, retryable: bool) -> None:
    error = error_from_engine(code, kind, message)
    assert type(error) is cls
    assert str(error) == message
    assert error.retryable is retryable
    assert (error.engine_code, error.engine_kind) == (code, kind)


def test_unknown_routing_token_is_a_value_error() -> None:
    error = error_from_engine("InvalidArgument", "UnknownRoutingToken", "token 'mars' is not in routing_values")
    assert type(error) is UnknownRoutingTokenError and isinstance(error, ValueError)
    assert not isinstance(error, ShardvecError)


def test_a_kind_the_table_lacks_for_a_code_falls_back_to_the_code() -> None:
    assert type(error_from_engine("IOError", "PublishConflict", "x")) is ManifestStoreError
    assert type(error_from_engine("Corruption", "NoSuchKind", "x")) is VectorSearchError


def test_error_classes() -> None:
    assert ShardyfusionError is ShardvecError
    assert issubclass(PublishConflictError, PublishCurrentError)
    assert PublishConflictError.retryable is False and PublishCurrentError.retryable is True
    assert ConfigValidationError.retryable is False and ManifestStoreError.retryable is True
    # instance overrides never leak into the class
    error_from_engine("NotFound", "None", "gone")
    assert ManifestStoreError.retryable is True


def test_publish_conflict_keeps_manifest_ref() -> None:
    # manifest_ref is the status's subject, not read out of the message.
    error = error_from_engine("Conflict", "PublishConflict", "lost", "manifests/A/manifest")
    assert isinstance(error, PublishConflictError)
    assert error.manifest_ref == "manifests/A/manifest"
    assert error_from_engine("Conflict", "None", "lost a race").manifest_ref is None


# --- no mapping depends on the message ------------------------------------------------------------

# The words errors.py used to look for in messages, and a few messages that would have fooled it.
OLD_NEEDLES = ["reader is closed", "manifest", "current pointer", "S3 ", "centroids", "hyperplanes",
               "No CURRENT pointer", "PublishConflictError", "stays in history", "cannot start a thread",
               "is not in routing_values"]
MESSAGES = ["", "something else entirely", "\u00e9\ufffd", *OLD_NEEDLES,
            "PublishConflictError: this run's manifest 'm' stays in history, S3 centroids reader is closed"]


@pytest.mark.parametrize(("code", "kind", "cls", "retryable"), TABLE)
def test_the_class_comes_from_code_and_kind_only(code: str, kind: str, cls: str, retryable: bool | None) -> None:
    for message in MESSAGES:
        error = error_from_engine(code, kind, message)
        assert type(error).__name__ == cls, (code, kind, message)
        assert str(error) == message
        if retryable is not None:
            assert error.retryable is retryable
        elif isinstance(error, ShardvecError):
            assert error.retryable is type(error).retryable


def test_errors_py_and_the_translator_never_read_the_message() -> None:
    source = (ROOT / "python" / "shardvec" / "errors.py").read_text()
    tree = ast.parse(source)
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names}
    assert "re" not in imported
    compared = [node for node in ast.walk(tree) if isinstance(node, ast.Compare)]
    assert compared == [], "errors.py compares something: classes must come from the engine's table"
    # No text to look for: the only strings are docstrings, the names in __all__ and subject's default "".
    docstrings = {ast.get_docstring(node, clean=False) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))}
    texts = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    assert texts - docstrings - set(errors.__all__) == {""}
    # The translator's lookup is given the code and the kind, never the message.
    translator = (ROOT / "python" / "src" / "error_translation.cc").read_text()
    assert "const Row* FindRow(std::string_view code, std::string_view kind)" in translator
    assert translator.count("FindRow(") == 2  # defined once, called once (by MakeError)


# --- every class the table names, raised by a real engine call --------------------------------------


def test_a_bad_query_raises_config_validation_error(tmp_path: Path) -> None:
    with open_strict(published(tmp_path), tmp_path) as reader:
        with pytest.raises(ConfigValidationError, match="query has 3 values") as raised:
            reader.search(np.ones(3, np.float32), top_k=3, shard_ids=[0, 1])
    engine_error(raised, "InvalidArgument", "None")


def test_an_unknown_routing_token_raises_unknown_routing_token_error(tmp_path: Path) -> None:
    cfg = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(strategy=VectorShardingStrategy.CEL, cel_expr="region",
                                      cel_columns={"region": "string"}, routing_values=["eu", "us"]),
        s3_prefix=str(tmp_path / "store"), index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2))
    with pytest.raises(UnknownRoutingTokenError, match="'mars'|\"mars\"") as raised:
        write_arrays(np.ones((2, DIM), np.float32), cfg, routing_contexts=[{"region": "eu"}, {"region": "mars"}])
    engine_error(raised, "InvalidArgument", "UnknownRoutingToken")


def test_a_closed_engine_reader_raises_reader_state_error(tmp_path: Path) -> None:
    reader = open_strict(published(tmp_path), tmp_path)
    reader.close()
    reader._closed = False  # past the Python-side guard: the engine's own check answers
    with pytest.raises(ReaderStateError, match="reader is closed") as raised:
        reader.search(np.ones(DIM, np.float32), top_k=3, shard_ids=[0, 1])
    engine_error(raised, "FailedPrecondition", "ReaderClosed")


def test_a_store_without_current_raises_reader_state_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReaderStateError, match="No CURRENT pointer") as raised:
        open_strict(tmp_path / "empty", tmp_path)
    engine_error(raised, "NotFound", "NoCurrentPointer")


def test_corrupt_centroids_in_a_store_named_manifest_raise_reader_state_error(tmp_path: Path) -> None:
    """Under the old message matching, the word "manifest" in the artifact's URL made this a
    ManifestParseError."""
    store = tmp_path / "manifest" / "store"
    rng = np.random.default_rng(3)
    write_sharded([VectorRecord(id=i, vector=rng.standard_normal(DIM)) for i in range(40)], VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.CLUSTER, train_centroids=True),
        s3_prefix=str(store), index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2)))
    centroids = next((store / "vector_meta").rglob("centroids.npy"))
    centroids.write_bytes(centroids.read_bytes()[:-3])
    with pytest.raises(ReaderStateError, match="centroids_ref") as raised:
        open_strict(store, tmp_path)
    engine_error(raised, "Corruption", "RouterUnavailable")


def test_a_truncated_manifest_raises_manifest_parse_error(tmp_path: Path) -> None:
    store = published(tmp_path)
    manifest = manifest_file(store)
    manifest.write_bytes(manifest.read_bytes()[:-1])
    with pytest.raises(ManifestParseError, match="truncated") as raised:
        open_strict(store, tmp_path)
    engine_error(raised, "Corruption", "ManifestParse")


def test_a_missing_manifest_raises_manifest_store_error_not_retryable(tmp_path: Path) -> None:
    store = published(tmp_path)
    manifest_file(store).unlink()
    with pytest.raises(ManifestStoreError, match="does not exist") as raised:
        open_strict(store, tmp_path)
    assert engine_error(raised, "NotFound", "None").retryable is False


def test_a_run_published_meanwhile_raises_publish_conflict_error(tmp_path: Path) -> None:
    store = tmp_path / "store"

    def rows() -> Iterator[VectorRecord]:
        # While this run streams, another one publishes: its manifest is newer than this run's start.
        write_sharded(records(), config(store))
        yield from records()

    with pytest.raises(PublishConflictError, match="stays in history") as raised:
        write_sharded(rows(), config(store))
    error = engine_error(raised, "Conflict", "PublishConflict")
    assert error.retryable is False
    current = manifest_file(store).as_uri()
    assert error.manifest_ref != current
    assert Path(error.manifest_ref.removeprefix("file://")).is_file()  # this run's manifest stays in history


def test_claimed_attempts_raise_publish_current_error(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for attempt in range(100):  # every attempt a task may claim is taken
        claim = store / "shards" / "run_id=r1" / "db=00000" / f"attempt={attempt:02d}" / "_CLAIM"
        claim.parent.mkdir(parents=True)
        claim.write_text("{}")
    task = _engine.ShardTask(store=str(store), store_options=_engine.StoreOptions(),
                             local_root=str(tmp_path / "build"), run_id="r1", db_id=0, dim=DIM,
                             metric=_engine.Metric.L2, first_attempt=0)
    with pytest.raises(PublishCurrentError, match="are all claimed") as raised:
        _engine.build_shard_attempt(task, lambda: None)
    assert type(raised.value) is PublishCurrentError
    assert engine_error(raised, "Conflict", "None").manifest_ref is None


def test_a_build_folder_in_use_raises_shard_write_error(tmp_path: Path) -> None:
    def cfg(store: str) -> VectorShardedWriteConfig:
        return VectorShardedWriteConfig(
            sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.EXPLICIT),
            s3_prefix=store, index_config=VectorIndexConfig(dim=DIM),
            output=WriterOutputConfig(run_id="same", local_root=str(tmp_path / "build")))

    def rows() -> Iterator[VectorRecord]:
        # Same run_id and local_root, another store: the run's build folder is locked by this write.
        write_sharded(records(), cfg(str(tmp_path / "other")))
        yield from records()

    with pytest.raises(ShardWriteError, match="is in use") as raised:
        write_sharded(rows(), cfg(str(tmp_path / "store")))
    assert engine_error(raised, "AlreadyExists", "None").retryable is False


def test_refused_threads_raise_shardvec_error(tmp_path: Path) -> None:
    child = open_reader_with_refused_threads(published(tmp_path), tmp_path / "cache")
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith("ShardvecError Unavailable ThreadLimit False cannot start a thread"), (
        child.stdout + child.stderr)


# --- store failures, through a proxy in front of the S3 test server ---------------------------------

Rule = Callable[[str, str], "tuple[int, bytes] | None"]


def s3_error(code: str) -> bytes:
    return f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>injected</Message></Error>".encode()


class _Relay(http.server.BaseHTTPRequestHandler):
    """Answers a request from the rule, or relays it unchanged (Host included, so SigV4 still holds)."""

    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, *args: Any) -> None:
        pass

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        answer = self.server.rule(self.command, self.path)
        headers: list[tuple[str, str]] = [("Content-Type", "application/xml")]
        if answer is None:
            upstream = http.client.HTTPConnection(*self.server.upstream, timeout=30)
            upstream.request(self.command, self.path, body=body,
                             headers={k: v for k, v in self.headers.items() if k.lower() != "connection"})
            response = upstream.getresponse()
            status, data = response.status, response.read()
            headers = [(k, v) for k, v in response.getheaders()
                       if k.lower() not in ("connection", "transfer-encoding", "content-length")]
            if self.command == "HEAD":
                headers.append(("Content-Length", response.getheader("Content-Length") or "0"))
            upstream.close()
        else:
            status, data = answer
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        if self.command != "HEAD" or answer is not None:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any


@contextlib.contextmanager
def s3_proxy(s3_server: dict[str, Any], rule: Rule) -> Iterator[dict[str, Any]]:
    """Storage settings for a write or a reader whose S3 requests go through `rule` first."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Relay)
    server.daemon_threads = True
    upstream = s3_server["s3_connection_options"]["endpoint_url"].removeprefix("http://")
    host, port = upstream.split(":")
    server.upstream = (host, int(port))  # type: ignore[attr-defined]
    server.rule = rule  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    creds = s3_server["credentials"]
    try:
        yield {"s3_connection_options": dict(s3_server["s3_connection_options"], max_attempts=2,
                                             endpoint_url=f"http://127.0.0.1:{server.server_address[1]}"),
               "credential_provider": lambda: creds}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def s3_config(s3_server: dict[str, Any], storage: dict[str, Any], tmp_path: Path,
              run_id: str | None = None) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.EXPLICIT),
        s3_prefix=s3_server["prefix"], index_config=VectorIndexConfig(dim=DIM),
        output=WriterOutputConfig(run_id=run_id, local_root=str(tmp_path / "build")), **storage)


def test_s3_throttling_raises_s3_transient_error(s3_server: dict[str, Any], tmp_path: Path) -> None:
    with s3_proxy(s3_server, lambda method, path: (503, s3_error("SlowDown"))) as storage:
        with pytest.raises(S3TransientError, match="SlowDown") as raised:
            ShardedVectorReader(s3_prefix=s3_server["prefix"], local_root=str(tmp_path / "cache"), **storage)
    assert engine_error(raised, "Unavailable", "None").retryable is True


def test_s3_access_denied_raises_manifest_store_error_not_retryable(s3_server: dict[str, Any],
                                                                    tmp_path: Path) -> None:
    with s3_proxy(s3_server, lambda method, path: (403, s3_error("AccessDenied"))) as storage:
        with pytest.raises(ManifestStoreError, match="AccessDenied") as raised:
            ShardedVectorReader(s3_prefix=s3_server["prefix"], local_root=str(tmp_path / "cache"), **storage)
    assert engine_error(raised, "PermissionDenied", "None").retryable is False


def test_a_garbled_s3_listing_raises_manifest_store_error(s3_server: dict[str, Any], tmp_path: Path) -> None:
    def rule(method: str, path: str) -> tuple[int, bytes] | None:
        return (200, b"this is not XML") if method == "GET" and "list-type=2" in path else None

    with s3_proxy(s3_server, rule) as storage:
        # A run_id given by the caller is checked unused by listing the store.
        with pytest.raises(ManifestStoreError, match="response is not XML") as raised:
            write_sharded(records(), s3_config(s3_server, storage, tmp_path, run_id="listed"))
    assert engine_error(raised, "Corruption", "StoreResponse").retryable is True


def test_a_taken_manifest_key_raises_publish_manifest_error(s3_server: dict[str, Any], tmp_path: Path) -> None:
    def rule(method: str, path: str) -> tuple[int, bytes] | None:
        return (412, s3_error("PreconditionFailed")) if method == "PUT" and "/manifests/" in path else None

    with s3_proxy(s3_server, rule) as storage:
        with pytest.raises(PublishManifestError, match="already exists") as raised:
            write_sharded(records(), s3_config(s3_server, storage, tmp_path))
    assert engine_error(raised, "AlreadyExists", "ManifestExists").retryable is True


# Which test raises each class the table names (this file's, unless another is named).
REACHED_BY = {
    "ConfigValidationError": "test_a_bad_query_raises_config_validation_error",
    "UnknownRoutingTokenError": "test_an_unknown_routing_token_raises_unknown_routing_token_error",
    "ReaderStateError": "test_a_closed_engine_reader_raises_reader_state_error",
    "VectorSearchError": "test_hostile_inputs.py::test_corrupt_shard_raises_vector_search_error",
    "ManifestParseError": "test_a_truncated_manifest_raises_manifest_parse_error",
    "ManifestStoreError": "test_a_missing_manifest_raises_manifest_store_error_not_retryable",
    "PublishConflictError": "test_a_run_published_meanwhile_raises_publish_conflict_error",
    "PublishCurrentError": "test_claimed_attempts_raise_publish_current_error",
    "ShardWriteError": "test_a_build_folder_in_use_raises_shard_write_error",
    "ShardvecError": "test_refused_threads_raise_shardvec_error",
    "S3TransientError": "test_s3_throttling_raises_s3_transient_error",
    "PublishManifestError": "test_a_taken_manifest_key_raises_publish_manifest_error",
}


def test_every_class_of_the_table_is_raised_by_a_real_engine_call() -> None:
    assert set(REACHED_BY) == {cls for _, _, cls, _ in TABLE}
    for cls, test in REACHED_BY.items():
        module, _, name = test.rpartition("::")
        source = (Path(__file__).parent / (module or Path(__file__).name)).read_text()
        body = source[source.index(f"def {name}("):]
        assert cls in body.split("\ndef ")[0], (cls, test)  # the test names the class it expects
