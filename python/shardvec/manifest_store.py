"""Where a snapshot's manifests and its current pointer live.

A :class:`ManifestStore` persists manifests and moves the current pointer; the writer publishes
through one, the reader reads the pointer and manifests through one. By default both sit beside the
shards (``manifests/<timestamp>_run_id=<run>/manifest`` and ``_CURRENT`` under ``s3_prefix``);
:class:`S3ManifestStore` is that layout (on S3 or a local folder), :class:`InMemoryManifestStore`
keeps everything in the process (tests), and any object with the protocol's five methods works too::

    store = InMemoryManifestStore()
    write_sharded(records, VectorShardedWriteConfig(..., manifest=WriterManifestConfig(store=store)))
    reader = ShardedVectorReader(s3_prefix=..., manifest_store=store)

The shards themselves always stay at ``s3_prefix``. A Python store's methods are called by the engine
with the GIL held; an exception one raises comes back to the caller unchanged (same class, same
object). The engine checks a custom store's publish against the publish policy by reading
``load_current()`` just before ``publish()``; that check and a rollback's compare-and-swap
(``set_current`` after ``load_current``) are atomic only when the store itself serialises them.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Protocol, runtime_checkable

from shardvec._native import _engine
from shardvec.config import engine_store_options, require_utf8, validate_manifest_store, validate_store_prefix
from shardvec.db_manifest_store import PostgresManifestStore
from shardvec.errors import ConfigValidationError, ManifestStoreError
from shardvec.manifest import (
    ManifestRef,
    ParsedManifest,
    RequiredBuildMeta,
    RequiredShardMeta,
    check_list_limit,
    check_publish_run_id,
    format_timestamp,
    manifest_from_json,
    manifest_to_json,
    parse_timestamp,
)

__all__ = [
    "InMemoryManifestStore",
    "ManifestRef",
    "ManifestStore",
    "ParsedManifest",
    "PostgresManifestStore",
    "S3ManifestStore",
]


@runtime_checkable
class ManifestStore(Protocol):
    """Persists manifests and the current pointer (shardyfusion's protocol)."""

    def publish(
        self,
        *,
        run_id: str,
        required_build: RequiredBuildMeta,
        shards: list[RequiredShardMeta],
        custom: dict[str, Any],
    ) -> str:
        """Persists the manifest, makes it current, and returns its ref."""
        ...

    def load_current(self) -> ManifestRef | None:
        """The current pointer, or None when nothing was published."""
        ...

    def load_manifest(self, ref: str) -> ParsedManifest:
        """The manifest ``ref`` names."""
        ...

    def list_manifests(self, *, limit: int = 10) -> list[ManifestRef]:
        """At most ``limit`` manifests, newest first."""
        ...

    def set_current(self, ref: str) -> None:
        """Points the current pointer at ``ref``."""
        ...


# --- helpers the engine calls (python/src/manifest_store_bindings.cc) -----------------------------


def ref_tuple(ref: Any, method: str) -> tuple[str, str, str]:
    """A ManifestRef-like object that ``method`` returned, as (ref, run_id, published_at text);
    ``ManifestStoreError`` naming the method when it is not one."""
    if not all(hasattr(ref, name) for name in ("ref", "run_id", "published_at")):
        raise ManifestStoreError(f"manifest store {method}() returned {ref!r}, not a ManifestRef")
    published = ref.published_at
    text = format_timestamp(published) if isinstance(published, datetime) else str(published)
    return str(ref.ref), str(ref.run_id), text


def parsed_manifest_json(parsed: Any) -> str:
    """A ParsedManifest-like object (this package's or shardyfusion's) as the engine's JSON form."""
    return manifest_to_json(parsed.required_build, list(parsed.shards), dict(parsed.custom or {}))


def _ref(row: tuple[str, str, str]) -> ManifestRef:
    return ManifestRef(ref=row[0], run_id=row[1],
                       published_at=parse_timestamp(row[2], field_name="published_at"))


def engine_manifest_store(store: Any, field_name: str = "manifest_store") -> Any:
    """The engine's handle for ``store`` (None stays None): an :class:`S3ManifestStore`'s own, else
    the adapter over a Python object implementing the protocol. Anything else raises
    ``ConfigValidationError`` naming ``field_name``."""
    if store is None:
        return None
    if isinstance(store, S3ManifestStore):
        return store._engine_store
    validate_manifest_store(store, field_name=field_name)
    return _engine.python_manifest_store(store)


# --- the object-store layout -----------------------------------------------------------------------


class S3ManifestStore:
    """Manifests under ``<s3_prefix>/manifests/<timestamp>_run_id=<run>/manifest`` (put-if-absent)
    and the pointer at ``<s3_prefix>/<current_pointer_key>``, moved by compare-and-swap: the layout
    shardvec and shardyfusion write by default. ``s3_prefix`` may be ``s3://bucket/prefix`` or a
    local folder.

    ``S3ManifestStore(s3_prefix)`` and shardyfusion's ``S3ManifestStore(backend, s3_prefix)`` both
    work; a ``backend`` other than None is refused (the engine reaches the store itself: pass
    ``credential_provider`` and ``s3_connection_options`` instead). ``manifest_name`` must be
    "manifest" (the layout's file name).
    """

    def __init__(
        self,
        backend: Any = None,
        s3_prefix: str | None = None,
        *,
        manifest_name: str = "manifest",
        current_pointer_key: str = "_CURRENT",
        credential_provider: Any = None,
        s3_connection_options: Mapping[str, Any] | None = None,
    ) -> None:
        if s3_prefix is None and isinstance(backend, str):
            backend, s3_prefix = None, backend
        if backend is not None:
            raise ConfigValidationError(
                f"backend {backend!r} is not supported: shardvec's engine reaches the store itself; "
                "give s3_prefix with credential_provider / s3_connection_options instead"
            )
        validate_store_prefix(s3_prefix, field_name="s3_prefix")
        require_utf8(s3_prefix, "s3_prefix")
        if manifest_name != "manifest":
            raise ConfigValidationError(
                f"manifest_name {manifest_name!r} is not supported: the layout names every manifest 'manifest'"
            )
        if not isinstance(current_pointer_key, str):
            raise ConfigValidationError(f"current_pointer_key must be a string, got {current_pointer_key!r}")
        require_utf8(current_pointer_key, "current_pointer_key")
        from shardvec.vector._bridge import store_options  # the bridge imports this module's users

        self.s3_prefix = s3_prefix.rstrip("/")
        self.manifest_name = manifest_name
        self.current_pointer_key = current_pointer_key
        self._engine_store = _engine.object_manifest_store(
            s3_prefix, store_options(engine_store_options(credential_provider, s3_connection_options)),
            current_pointer_key,
        )

    def __repr__(self) -> str:
        return f"S3ManifestStore({self.s3_prefix!r}, current_pointer_key={self.current_pointer_key!r})"

    def publish(
        self,
        *,
        run_id: str,
        required_build: RequiredBuildMeta,
        shards: list[RequiredShardMeta],
        custom: dict[str, Any],
    ) -> str:
        """Writes the manifest (never over another) and swaps the pointer to it; returns its URL."""
        check_publish_run_id(run_id, required_build)
        ref, _, _ = self._engine_store.publish(manifest_to_json(required_build, list(shards), dict(custom or {})),
                                               last_writer_wins=True)
        return ref

    def load_current(self) -> ManifestRef | None:
        row = self._engine_store.load_current()
        return None if row is None else _ref(row)

    def load_manifest(self, ref: str) -> ParsedManifest:
        return manifest_from_json(self._engine_store.load_manifest_json(ref))

    def list_manifests(self, *, limit: int = 10) -> list[ManifestRef]:
        limit = check_list_limit(limit)
        if limit == 0:
            return []
        return [_ref(row) for row in self._engine_store.list_manifests(limit)]

    def set_current(self, ref: str) -> None:
        """Points the pointer at ``ref`` (a manifest of this store; ``ManifestStoreError`` naming it
        otherwise)."""
        self._engine_store.set_current(ref)


# --- in memory -------------------------------------------------------------------------------------


class InMemoryManifestStore:
    """Manifests and the pointer in this process (tests). Thread-safe; refs look like
    ``mem://manifests/run_id=<run>/manifest``, so publishing a run id twice replaces its manifest.
    ``load_manifest`` and ``set_current`` raise ``KeyError`` for an unknown ref."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._manifests: dict[str, ParsedManifest] = {}
        self._history: list[ManifestRef] = []
        self._current_ref: str | None = None

    def publish(
        self,
        *,
        run_id: str,
        required_build: RequiredBuildMeta,
        shards: list[RequiredShardMeta],
        custom: dict[str, Any],
    ) -> str:
        ref = f"mem://manifests/run_id={run_id}/manifest"
        manifest = ParsedManifest(required_build=required_build, shards=list(shards), custom=dict(custom or {}))
        with self._lock:
            self._manifests[ref] = manifest
            self._history.append(ManifestRef(ref=ref, run_id=run_id, published_at=datetime.now(timezone.utc)))
            self._current_ref = ref
        return ref

    def load_current(self) -> ManifestRef | None:
        with self._lock:
            if self._current_ref is None:
                return None
            for entry in reversed(self._history):
                if entry.ref == self._current_ref:
                    return entry
        return None

    def load_manifest(self, ref: str) -> ParsedManifest:
        with self._lock:
            if ref not in self._manifests:
                raise KeyError(f"Manifest not found: {ref}")
            return self._manifests[ref]

    def list_manifests(self, *, limit: int = 10) -> list[ManifestRef]:
        limit = check_list_limit(limit)
        with self._lock:
            return list(reversed(self._history))[:limit]

    def set_current(self, ref: str) -> None:
        with self._lock:
            if ref not in self._manifests:
                raise KeyError(f"Manifest not found: {ref}")
            self._current_ref = ref
