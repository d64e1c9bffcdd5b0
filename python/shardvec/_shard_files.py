"""One shard file on its own (shardyfusion's per-shard classes), over the C++ engine.

:class:`SqliteVecShardReader` downloads ``{db_url}/shard.db`` into ``local_dir``, opens it read-only
and searches it with the reader's own shard searcher, so its hits (ids, scores, payloads) are the
ones ``ShardedVectorReader`` returns for that shard. :class:`SqliteVecAdapter` builds one shard file
with the writer's shard builder (every row checked as the writer checks it) and uploads it to
``{db_url}/shard.db`` on ``close()``. ``db_url`` is a shard folder URL (``s3://bucket/…``,
``file:///…`` or a folder path), as a manifest's ``db_url`` is. Both are re-exported by
:mod:`shardvec.sqlite_vec_adapter`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from shardvec._arrays import float32_array
from shardvec._native import _engine
from shardvec.config import (
    CredentialProvider,
    S3ConnectionOptions,
    VectorSpec,
    engine_store_options,
    require_utf8,
)
from shardvec.errors import ConfigValidationError, SqliteVecAdapterError
from shardvec.sqlite_vec_adapter import ENGINE_PAGE_SIZE, check_factory_settings
from shardvec.vector._bridge import engine_metric, split_ids, store_options
from shardvec.vector.types import SearchResult

__all__ = ["SqliteVecAdapter", "SqliteVecShardReader"]

_DB_FILENAME = "shard.db"
_DB_IDENTITY_FILENAME = "shard.identity.json"


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigValidationError(f"{name} must be a non-empty str, got {value!r}")
    return require_utf8(value, name)


def _folder(value: object, name: str) -> Path:
    if isinstance(value, str):
        require_utf8(value, name)
    elif not isinstance(value, Path):
        raise ConfigValidationError(f"{name} must be a str or Path, got {type(value).__name__}")
    folder = Path(value)
    _engine.ensure_private_folder(str(folder), name)
    return folder


class SqliteVecShardReader:
    """Searches one shard: ``SqliteVecShardReader(db_url=…, local_dir=…)``, then ``search(query, top_k)``.

    The file is downloaded once: a later reader with the same ``db_url`` and ``checkpoint_id`` reuses
    the copy in ``local_dir`` (recorded in ``shard.identity.json`` beside it), as the reference does.
    ``s3_connection_options`` and ``credential_provider`` reach the store; ``mmap_size`` is only the
    default (the engine maps each whole file), any other value raises ``ConfigValidationError``.
    ``get(key)`` reads the shard's ``kv`` table (empty in vector snapshots). After ``close()`` every
    call raises ``SqliteVecAdapterError``. ``local_dir`` is created 0700 when missing and refused
    (``ConfigValidationError``) when another user owns it or group or others may write it, as the
    reader's cache is: a file swapped in there would be served.
    """

    def __init__(
        self,
        *,
        db_url: str,
        local_dir: Path | str,
        checkpoint_id: str | None = None,
        mmap_size: int = 268_435_456,
        s3_connection_options: S3ConnectionOptions | None = None,
        credential_provider: CredentialProvider | None = None,
    ) -> None:
        check_factory_settings("SqliteVecShardReader", mmap_size=mmap_size)
        url = _text(db_url, "db_url")
        if checkpoint_id is not None:
            _text(checkpoint_id, "checkpoint_id")
        folder = _folder(local_dir, "SqliteVecShardReader local_dir")
        options = store_options(engine_store_options(credential_provider, s3_connection_options))
        db_path = folder / _DB_FILENAME
        identity_path = folder / _DB_IDENTITY_FILENAME
        identity = {"db_url": url, "checkpoint_id": checkpoint_id}
        fetched = False
        if not (db_path.is_file() and _read_identity(identity_path) == identity):
            identity_path.unlink(missing_ok=True)
            _engine.get_shard_file(url, options, _DB_FILENAME, str(db_path))
            fetched = True
        self._file: Any = _engine.ShardFile(str(db_path))
        if fetched:  # recorded only for a file that opened, so a bad one is fetched again next time
            identity_path.write_text(json.dumps(identity))

    def _open_file(self) -> Any:
        if self._file is None:
            raise SqliteVecAdapterError("Reader already closed")
        return self._file

    def search(self, query: Any, top_k: int) -> list[SearchResult]:
        """The ``top_k`` (0..4096) nearest rows to ``query``, nearest first (scores are sqlite-vec
        distances, payloads as ``ShardedVectorReader`` returns them)."""
        from shardvec.vector.reader import hit_results  # the reader's module imports this one's

        shard = self._open_file()
        vector = float32_array(query, "query").reshape(-1)
        if isinstance(top_k, bool) or not isinstance(top_k, int):
            raise ConfigValidationError(f"top_k must be an int, got {top_k!r}")
        return hit_results(shard.search(vector, top_k))

    def get(self, key: bytes) -> bytes | None:
        """The shard's ``kv`` value for ``key``, or None."""
        shard = self._open_file()
        if not isinstance(key, bytes):
            raise ConfigValidationError(f"key must be bytes, got {type(key).__name__}")
        value: bytes | None = shard.get(key)
        return value

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> SqliteVecShardReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_identity(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class SqliteVecAdapter:
    """Builds one shard and uploads it: the reference's per-shard writer adapter.

    ``write_vector_batch(ids, vectors, payloads)`` (or ``add_batch``) adds rows (int or str ids; the
    vector's dimension, finite values, a non-zero vector under cosine and each payload's being a JSON
    object are checked, naming the row); ``seal()`` finishes the file; ``close()`` seals it if that
    was not done and uploads ``local_dir/shard.db`` to ``{db_url}/shard.db``.

    ``local_dir`` must be private, as ``SqliteVecShardReader``'s.
    ``page_size`` takes effect (4096…65536; ``"auto"`` is the engine's 65536). ``cache_size_pages``
    is only the default -2000. ``emit_sidecar`` may be True or False: no sidecar is written (no reader
    of either tool needs one). ``write_batch`` (KV pairs) raises ``SqliteVecAdapterError``: shardvec
    shards hold vectors only.
    """

    def __init__(
        self,
        *,
        db_url: str,
        local_dir: Path | str,
        vector_spec: VectorSpec,
        page_size: int | Literal["auto"] = 4096,
        cache_size_pages: int = -2000,
        s3_connection_options: S3ConnectionOptions | None = None,
        credential_provider: CredentialProvider | None = None,
        emit_sidecar: bool = True,
    ) -> None:
        if not isinstance(vector_spec, VectorSpec):
            raise ConfigValidationError(f"vector_spec must be a VectorSpec, got {type(vector_spec).__name__}")
        check_factory_settings("SqliteVecAdapter", page_size=page_size, cache_size_pages=cache_size_pages,
                               emit_sidecar=emit_sidecar)
        metric = engine_metric(vector_spec.metric, "vector_spec.metric")
        self._db_url = _text(db_url, "db_url")
        self._store_options = store_options(engine_store_options(credential_provider, s3_connection_options))
        self._db_path = _folder(local_dir, "SqliteVecAdapter local_dir") / _DB_FILENAME
        self._builder: Any = _engine.ShardFileBuilder(
            str(self._db_path), int(vector_spec.dim), metric, ENGINE_PAGE_SIZE if page_size == "auto" else int(page_size))
        self._db_bytes = 0
        self._sealed = False
        self._closed = False

    def __enter__(self) -> SqliteVecAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _writable(self) -> Any:
        if self._closed:
            raise SqliteVecAdapterError("Adapter already closed")
        if self._sealed:
            raise SqliteVecAdapterError("Cannot write after seal")
        return self._builder

    def write_batch(self, pairs: Iterable[tuple[bytes, bytes]]) -> None:
        """Not supported: shardvec shards hold vectors only (their kv table stays empty)."""
        raise SqliteVecAdapterError(
            "write_batch (KV pairs) is not supported: shardvec shards hold vectors only; "
            "use write_vector_batch")

    def write_vector_batch(self, ids: Any, vectors: Any, payloads: list[dict[str, Any]] | None = None) -> None:
        """Adds rows; they get internal ids 0, 1, 2… in the order added."""
        builder = self._writable()
        matrix = float32_array(vectors, "vectors")
        if matrix.ndim != 2:
            raise ConfigValidationError(f"vectors must be a 2-D array, got shape {matrix.shape}")
        int_ids, str_ids = split_ids(ids, matrix.shape[0], builder.row_count)
        if int_ids is None and not str_ids and matrix.shape[0]:
            raise ConfigValidationError("ids must be given, one per vector")
        texts: list[str | None] = []
        if payloads is not None:
            if len(payloads) != matrix.shape[0]:
                raise ConfigValidationError(f"payloads has {len(payloads)} entries for {matrix.shape[0]} vectors")
            texts = [None if p is None else json.dumps(p) for p in payloads]
        builder.add(matrix, int_ids, str_ids, texts)

    def add_batch(self, ids: Any, vectors: Any, payloads: list[dict[str, Any]] | None = None) -> None:
        """``write_vector_batch`` (the ``VectorIndexWriter`` protocol's name)."""
        self.write_vector_batch(ids, vectors, payloads)

    def flush(self) -> None:
        """Nothing to do: rows are in the file's open transaction until ``seal()``."""

    def seal(self) -> None:
        """Commits and closes the local file; ``db_bytes()`` is then its size."""
        if self._closed:
            raise SqliteVecAdapterError("Adapter already closed")
        if self._sealed:
            raise SqliteVecAdapterError("Adapter already sealed")
        self._db_bytes = int(self._builder.seal())
        self._sealed = True

    def db_bytes(self) -> int:
        return self._db_bytes

    def sidecar_decompressed_bytes(self) -> int | None:
        """Always None: no page-cache sidecar is written."""
        return None

    def close(self) -> None:
        """Seals (when not yet sealed) and uploads the shard to ``{db_url}/shard.db``; then a no-op."""
        if self._closed:
            return
        if not self._sealed:
            self.seal()
        _engine.put_shard_file(self._db_url, self._store_options, _DB_FILENAME, str(self._db_path))
        self._closed = True
