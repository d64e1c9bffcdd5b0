"""Run registries: where a write records that it started, succeeded or failed (the API of
shardyfusion's ``run_registry`` module).

The engine always writes its own run record, ``<run_registry_prefix>/<ts>_run_id=<run>_<uuid>/run.yaml``
in the store, and renews its lease while the build runs: ``cleanup`` never touches a run whose record
says it is running within its lease. ``lifecycle.run_registry`` (or ``run_registry=``) adds a registry
of the user's choice: the Python writer and the Spark, Dask and Ray drivers then also create a record
there before the build, renew its lease every minute, and mark it ``succeeded`` (with the manifest
ref) or ``failed`` (with the error) at the end. Registry failures are logged, never fatal, as in the
reference. An :class:`S3RunRegistry` naming the write's own store and prefix *is* the engine's
registry and adds nothing. ``shardvec.cleanup(..., run_registry=r)`` consults ``r.list_records()``.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from shardvec.config import engine_store_options, validate_store_prefix
from shardvec.errors import ConfigValidationError

__all__ = [
    "RUN_RECORD_FORMAT_VERSION",
    "RUN_RECORD_NAME",
    "DEFAULT_RUN_LEASE_DURATION",
    "DEFAULT_RUN_HEARTBEAT_INTERVAL",
    "RunStatus",
    "RunRecord",
    "RunRegistry",
    "S3RunRegistry",
    "InMemoryRunRegistry",
    "RunRecordLifecycle",
    "parse_run_record",
    "live_run_ids",
    "validate_run_registry",
    "writer_run_record",
]

_logger = logging.getLogger(__name__)

RUN_REGISTRY_TIMESTAMP_FMT = "%Y-%m-%dT%H:%M:%S.%fZ"
RUN_RECORD_NAME = "run.yaml"
RUN_RECORD_FORMAT_VERSION = 1
DEFAULT_RUN_LEASE_DURATION = timedelta(minutes=10)
DEFAULT_RUN_HEARTBEAT_INTERVAL = timedelta(minutes=1)


class RunStatus(str, Enum):
    """A run's state in its record."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime(RUN_REGISTRY_TIMESTAMP_FMT)


def _parse_time(text: str | None, name: str) -> datetime:
    if not text:
        raise ValueError(f"run record field {name} is missing")
    # ISO 8601 with 'Z' or an offset, with or without microseconds (pydantic omits zero ones).
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(slots=True)
class RunRecord:
    """One write's record (the fields of the reference's ``RunRecord``; timestamps are aware UTC)."""

    run_id: str
    writer_type: str
    status: RunStatus
    started_at: datetime
    updated_at: datetime
    lease_expires_at: datetime
    s3_prefix: str
    shard_prefix: str
    db_path_template: str
    manifest_ref: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    format_version: int = RUN_RECORD_FORMAT_VERSION

    def model_copy(self, *, deep: bool = False) -> RunRecord:
        """A copy (every field is immutable, so shallow and deep are the same)."""
        return replace(self)

    def is_live(self, now: datetime | None = None) -> bool:
        """Running with a lease that has not expired at ``now`` (default: the current time)."""
        return RunStatus(self.status) == RunStatus.RUNNING and self.lease_expires_at > (now or _utc_now())

    def to_yaml(self) -> bytes:
        """The record as the engine's ``run.yaml`` (sorted keys, as ``yaml.safe_dump`` writes them)."""
        from shardvec._native import _engine

        return _engine.encode_run_record({
            "run_id": self.run_id, "writer_type": self.writer_type, "status": RunStatus(self.status).value,
            "started_at": _format_time(self.started_at), "updated_at": _format_time(self.updated_at),
            "lease_expires_at": _format_time(self.lease_expires_at), "s3_prefix": self.s3_prefix,
            "shard_prefix": self.shard_prefix, "db_path_template": self.db_path_template,
            "manifest_ref": self.manifest_ref, "error_type": self.error_type, "error_message": self.error_message,
        })


def parse_run_record(payload: bytes) -> RunRecord:
    """Parses a ``run.yaml`` (written by shardvec or shardyfusion); ValueError when it is not one."""
    from shardvec._native import _engine

    try:
        fields = _engine.parse_run_record(bytes(payload))
    except Exception as error:  # the engine's Corruption: not a run record
        raise ValueError(f"not a run record: {error}") from None
    return RunRecord(
        run_id=fields["run_id"] or "", writer_type=fields["writer_type"] or "", status=RunStatus(fields["status"]),
        started_at=_parse_time(fields["started_at"], "started_at"),
        updated_at=_parse_time(fields["updated_at"], "updated_at"),
        lease_expires_at=_parse_time(fields["lease_expires_at"], "lease_expires_at"),
        s3_prefix=fields["s3_prefix"] or "", shard_prefix=fields["shard_prefix"] or "",
        db_path_template=fields["db_path_template"] or "", manifest_ref=fields["manifest_ref"],
        error_type=fields["error_type"], error_message=fields["error_message"],
        format_version=int(fields["format_version"] or RUN_RECORD_FORMAT_VERSION),
    )


@runtime_checkable
class RunRegistry(Protocol):
    """Where run records are kept. ``list_records()`` (a shardvec addition, optional) lets ``cleanup``
    ask which runs are still running."""

    def create(self, record: RunRecord) -> str:
        """Stores a new record and returns its reference."""
        ...

    def update(self, ref: str, record: RunRecord) -> None:
        """Replaces the record at ``ref``."""
        ...

    def load(self, ref: str) -> RunRecord:
        """The record at ``ref``."""
        ...


class S3RunRegistry:
    """Run records as ``run.yaml`` objects under ``<s3_prefix>/<run_registry_prefix>/`` of a store
    (``s3://`` or a folder), the engine's own layout.

    shardyfusion's first argument is a storage backend object; shardvec opens the store itself, so
    ``backend`` must be None and the store is reached with ``credential_provider`` and
    ``s3_connection_options``.
    """

    def __init__(self, s3_prefix: str, *, run_registry_prefix: str = "runs", backend: Any = None,
                 credential_provider: Any = None, s3_connection_options: Any = None) -> None:
        if backend is not None:
            raise ConfigValidationError(
                f"S3RunRegistry backend={backend!r} is not supported: shardvec opens the store from s3_prefix "
                "(pass credential_provider and s3_connection_options instead)")
        validate_store_prefix(s3_prefix, field_name="S3RunRegistry.s3_prefix")
        from shardvec._native import _engine

        _engine.validate_layout("shards", "db={db_id:05d}", run_registry_prefix, field_prefix="S3RunRegistry.")
        self.s3_prefix = s3_prefix.rstrip("/") or s3_prefix
        self.run_registry_prefix = run_registry_prefix
        self._credential_provider = credential_provider
        self._s3_connection_options = s3_connection_options

    def __repr__(self) -> str:
        return f"S3RunRegistry(s3_prefix={self.s3_prefix!r}, run_registry_prefix={self.run_registry_prefix!r})"

    def _options(self) -> Any:
        from shardvec.vector._bridge import store_options

        return store_options(engine_store_options(self._credential_provider, self._s3_connection_options))

    def _key(self, ref: str) -> str:
        from shardvec._native import _engine

        base = _engine.store_url(self.s3_prefix, self._options(), "")
        if not ref.startswith(base) or not ref.endswith("/" + RUN_RECORD_NAME):
            raise ValueError(f"run record ref {ref!r} is not a run record of {self!r}")
        return ref[len(base):]

    def is_store_registry(self, store: str, run_registry_prefix: str) -> bool:
        """Whether this registry is the one the engine writes for a write to ``store``."""
        def norm(prefix: str) -> str:
            if prefix.startswith("file://"):
                prefix = prefix[len("file://"):]
            return prefix.rstrip("/") if "://" in prefix else os.path.abspath(prefix)

        return norm(self.s3_prefix) == norm(store) and self.run_registry_prefix == run_registry_prefix

    def create(self, record: RunRecord) -> str:
        from shardvec._native import _engine

        name = f"{_format_time(_utc_now())}_run_id={record.run_id}_{uuid.uuid4().hex}"
        ref = _engine.store_url(self.s3_prefix, self._options(),
                                f"{self.run_registry_prefix}/{name}/{RUN_RECORD_NAME}")
        self.update(ref, record)
        return ref

    def update(self, ref: str, record: RunRecord) -> None:
        from shardvec._native import _engine

        _engine.store_put(self.s3_prefix, self._options(), self._key(ref), record.to_yaml())

    def load(self, ref: str) -> RunRecord:
        from shardvec._native import _engine

        return parse_run_record(_engine.store_get(self.s3_prefix, self._options(), self._key(ref)))

    def list_records(self) -> Iterator[tuple[str, RunRecord]]:
        """Every readable record under the prefix, with its ref (unreadable ones are logged and skipped)."""
        from shardvec._native import _engine

        options = self._options()
        for key in _engine.store_list_keys(self.s3_prefix, options, self.run_registry_prefix + "/"):
            if not key.endswith("/" + RUN_RECORD_NAME):
                continue
            ref = _engine.store_url(self.s3_prefix, options, key)
            try:
                yield ref, parse_run_record(_engine.store_get(self.s3_prefix, options, key))
            except (ValueError, OSError) as error:
                _logger.warning("run record %s ignored: %s", ref, error)


class InMemoryRunRegistry:
    """Run records in this process's memory (tests, local flows)."""

    def __init__(self) -> None:
        self._records: dict[str, RunRecord] = {}
        self._lock = threading.Lock()

    def create(self, record: RunRecord) -> str:
        ref = f"mem://runs/{record.run_id}/{uuid.uuid4().hex}/{RUN_RECORD_NAME}"
        self.update(ref, record)
        return ref

    def update(self, ref: str, record: RunRecord) -> None:
        with self._lock:
            self._records[ref] = record.model_copy(deep=True)

    def load(self, ref: str) -> RunRecord:
        with self._lock:
            return self._records[ref].model_copy(deep=True)

    def list_records(self) -> Iterator[tuple[str, RunRecord]]:
        """Every record with its ref."""
        with self._lock:
            items = [(ref, record.model_copy()) for ref, record in self._records.items()]
        return iter(items)


def validate_run_registry(registry: object, *, field_name: str = "lifecycle.run_registry") -> None:
    """None, or an object with callable create(), update() and load()."""
    if registry is None:
        return
    missing = [m for m in ("create", "update", "load") if not callable(getattr(registry, m, None))]
    if missing:
        raise ConfigValidationError(
            f"{field_name}={registry!r} is not a RunRegistry: it has no {', '.join(f'{m}()' for m in missing)}")


def live_run_ids(registry: object, now: datetime | None = None) -> list[str]:
    """The run ids ``registry.list_records()`` says are running within their lease."""
    lister = getattr(registry, "list_records", None)
    if not callable(lister):
        raise ConfigValidationError(
            f"run_registry={registry!r} has no list_records(), so cleanup cannot tell which of its runs are "
            "still running; give a registry with list_records() (S3RunRegistry, InMemoryRunRegistry)")
    moment = now or _utc_now()
    return sorted({record.run_id for _, record in lister() if record.is_live(moment)})


class RunRecordLifecycle:
    """Keeps one record in a registry current: created running, its lease renewed by a daemon thread
    every ``heartbeat_interval``, then marked succeeded or failed. Registry errors are logged only."""

    def __init__(self, *, registry: RunRegistry | None, record: RunRecord, ref: str | None,
                 lease_duration: timedelta = DEFAULT_RUN_LEASE_DURATION,
                 heartbeat_interval: timedelta = DEFAULT_RUN_HEARTBEAT_INTERVAL) -> None:
        self._registry = registry
        self._record = record
        self._ref = ref
        self._lease = lease_duration
        self._interval = heartbeat_interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._terminal = False
        self._thread: threading.Thread | None = None
        if registry is not None and ref is not None:
            self._thread = threading.Thread(target=self._heartbeat, name=f"shardvec-run-heartbeat-{record.run_id}",
                                            daemon=True)
            self._thread.start()

    @classmethod
    def start(cls, *, registry: RunRegistry, run_id: str, writer_type: str, s3_prefix: str, shard_prefix: str,
              db_path_template: str, lease_duration: timedelta = DEFAULT_RUN_LEASE_DURATION,
              heartbeat_interval: timedelta = DEFAULT_RUN_HEARTBEAT_INTERVAL) -> RunRecordLifecycle:
        now = _utc_now()
        record = RunRecord(run_id=run_id, writer_type=writer_type, status=RunStatus.RUNNING, started_at=now,
                           updated_at=now, lease_expires_at=now + lease_duration, s3_prefix=s3_prefix,
                           shard_prefix=shard_prefix, db_path_template=db_path_template)
        try:
            ref: str | None = registry.create(record)
        except Exception as error:  # noqa: BLE001 - observability only, as in the reference
            _logger.error("run_record_create_failed: run_id=%s: %s: %s", run_id, type(error).__name__, error)
            ref = None
        return cls(registry=registry if ref is not None else None, record=record, ref=ref,
                   lease_duration=lease_duration, heartbeat_interval=heartbeat_interval)

    @property
    def run_record_ref(self) -> str | None:
        return self._ref

    def __enter__(self) -> RunRecordLifecycle:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None:
            self.mark_failed(exc)
        self.close()

    def set_manifest_ref(self, manifest_ref: str) -> None:
        with self._lock:
            self._record.manifest_ref = manifest_ref

    def mark_succeeded(self) -> None:
        self._finish(RunStatus.SUCCEEDED, None, None)

    def mark_failed(self, exc: BaseException) -> None:
        self._finish(RunStatus.FAILED, type(exc).__name__, str(exc))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self._interval.total_seconds())

    def _heartbeat(self) -> None:
        while not self._stop.wait(self._interval.total_seconds()):
            with self._lock:
                if self._terminal:
                    return
                now = _utc_now()
                self._record.updated_at = now
                self._record.lease_expires_at = now + self._lease
                record = self._record.model_copy()
            self._write("run_record_heartbeat_failed", record)

    def _finish(self, status: RunStatus, error_type: str | None, error_message: str | None) -> None:
        with self._lock:
            if self._terminal:
                return
            self._terminal = True
            now = _utc_now()
            self._record.status = status
            self._record.updated_at = self._record.lease_expires_at = now
            self._record.error_type = error_type
            self._record.error_message = error_message
            record = self._record.model_copy()
        self.close()
        self._write("run_record_terminal_update_failed", record)

    def _write(self, event: str, record: RunRecord) -> None:
        if self._registry is None or self._ref is None:
            return
        try:
            self._registry.update(self._ref, record)
        except Exception as error:  # noqa: BLE001 - observability only, as in the reference
            _logger.error("%s: run_id=%s ref=%s: %s: %s", event, record.run_id, self._ref, type(error).__name__, error)


@contextmanager
def writer_run_record(config: Any, writer_type: str) -> Iterator[tuple[str | None, RunRecordLifecycle | None]]:
    """Around one write of ``config`` (a ``VectorShardedWriteConfig``): yields ``(run_id, lifecycle)``.

    Without ``lifecycle.run_registry`` (or with an S3RunRegistry that is the engine's own for this
    store) it yields ``(config.output.run_id, None)``: the engine's record is the only one. Otherwise
    it fixes the run id (``output.run_id`` or a new uuid4 hex, which the caller passes to the engine),
    creates the record running, and marks it failed if the body raises; the caller marks success
    with ``lifecycle.set_manifest_ref(ref)`` and ``lifecycle.mark_succeeded()``.
    """
    registry = config.lifecycle.run_registry
    validate_run_registry(registry)
    output = config.output
    if registry is None or (isinstance(registry, S3RunRegistry)
                            and registry.is_store_registry(config.s3_prefix, output.run_registry_prefix)):
        yield output.run_id, None
        return
    run_id = output.run_id or uuid.uuid4().hex
    life = RunRecordLifecycle.start(registry=registry, run_id=run_id, writer_type=writer_type,
                                    s3_prefix=config.s3_prefix, shard_prefix=output.shard_prefix,
                                    db_path_template=output.db_path_template)
    with life:
        yield run_id, life
