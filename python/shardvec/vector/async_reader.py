"""``AsyncShardedVectorReader``: the sharded reader for asyncio programs.

Every engine call (open, search, batch search, refresh, close) runs on the reader's own thread pool
while the C++ engine works without the GIL, so the event loop keeps serving other coroutines during
a cold shard download or a long scan. The reader wraps one :class:`ShardedVectorReader`, so it takes
the same options, checks them the same way and searches the same snapshot state.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

from shardvec._arrays import float32_array
from shardvec.errors import ConfigValidationError, ReaderStateError
from shardvec.rate_limiter import RateLimiter, check_rate_limiter
from shardvec.sqlite_vec_adapter import check_reader_factory
from shardvec.vector.reader import ShardedVectorReader
from shardvec.vector.types import ReaderHealth, ShardDetail, SnapshotInfo, VectorSearchResponse

__all__ = ["AsyncShardedVectorReader", "MAX_CONCURRENCY_LIMIT"]

_T = TypeVar("_T")

#: The largest ``max_concurrency`` accepted (as the engine's thread limit).
MAX_CONCURRENCY_LIMIT = 1024


#: The options passed on to the ShardedVectorReader this reader wraps (its keyword parameters but the
#: rate limiter, which this reader awaits itself).
_SYNC_OPTIONS = frozenset(inspect.signature(ShardedVectorReader.__init__).parameters) - {"self", "rate_limiter"}


def _default_concurrency() -> int:
    """asyncio's own default for its thread pool: CPUs + 4, at most 32."""
    return min(32, (os.cpu_count() or 1) + 4)


def _check_concurrency(value: object) -> int:
    if value is None:
        return _default_concurrency()
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY_LIMIT:
        raise ConfigValidationError(
            f"max_concurrency must be None or an int in 1..{MAX_CONCURRENCY_LIMIT}, got {value!r}")
    return value


class AsyncShardedVectorReader:
    """Searches the snapshot a store's ``_CURRENT`` names, from asyncio code.

    Open it with ``reader = await AsyncShardedVectorReader.open(s3_prefix=..., local_root=..., ...)``
    or ``async with AsyncShardedVectorReader(s3_prefix=..., ...) as reader:`` (which opens it and
    closes it at the end). The options are :class:`ShardedVectorReader`'s (``reader_factory``,
    ``manifest_store``, ``max_workers``, ``max_fallback_attempts``, ``preload_shards``,
    ``max_cached_shards``, ``metrics_collector``, ``credential_provider``,
    ``s3_connection_options``), passed to it and checked by it (an unknown name is a TypeError),
    plus:

    * ``max_concurrency``: engine calls in flight at once (1..1024; None: CPUs + 4, at most 32).
      Each call runs on one of this many threads; further calls wait for a free one without
      blocking the event loop. A single search still fans out across shards on the engine's
      ``max_workers`` threads.
    * ``rate_limiter``: a :class:`~shardvec.rate_limiter.RateLimiter`; ``search`` awaits
      ``acquire_async()`` (one token) before it searches, ``batch_search`` one per query.

    ``search``, ``batch_search`` and ``refresh`` are coroutines; ``snapshot_info``,
    ``shard_details``, ``shard_for_id``, ``health`` and ``route_vector`` are plain methods, as in the reference (they
    read state already in memory).

    Errors: the same classes the synchronous reader raises, each raised as itself (never wrapped in
    an ``ExceptionGroup``): ``ConfigValidationError`` for a bad option or query, ``ReaderStateError``
    when the reader is closed or was never opened, and the engine's classes
    (``ManifestParseError``, ``VectorSearchError``, ``S3TransientError``, …) for store and shard
    failures. A cancelled ``search`` raises ``asyncio.CancelledError`` in the caller; the engine
    call it started finishes on its thread and its result is dropped, and the reader stays usable.
    """

    def __init__(
        self,
        *,
        s3_prefix: str,
        local_root: str | None = None,
        reader_factory: Any = None,
        manifest_store: Any = None,
        max_concurrency: int | None = None,
        rate_limiter: RateLimiter | None = None,
        **options: Any,
    ) -> None:
        unknown = sorted(set(options) - _SYNC_OPTIONS)
        if unknown:
            raise TypeError(f"AsyncShardedVectorReader got unexpected keyword argument(s) {unknown}; "
                            f"it takes ShardedVectorReader's options: {sorted(_SYNC_OPTIONS)}")
        check_reader_factory(reader_factory)
        check_rate_limiter(rate_limiter, needs_async=True)
        self._max_concurrency = _check_concurrency(max_concurrency)
        # The synchronous reader's options: it checks them again and opens the engine with them.
        self._options: dict[str, Any] = {"s3_prefix": s3_prefix, "local_root": local_root,
                                         "reader_factory": reader_factory, "manifest_store": manifest_store,
                                         **options}
        self._rate_limiter = rate_limiter
        self._executor: ThreadPoolExecutor | None = None
        self._reader: ShardedVectorReader | None = None
        self._refresh_lock: asyncio.Lock | None = None
        self._closed = False

    @classmethod
    async def open(cls, *, s3_prefix: str, local_root: str | None = None, **kwargs: Any) -> AsyncShardedVectorReader:
        """Creates the reader and loads the current snapshot (off the event loop)."""
        reader = cls(s3_prefix=s3_prefix, local_root=local_root, **kwargs)
        await reader._open()
        return reader

    @property
    def max_concurrency(self) -> int:
        """Engine calls in flight at most."""
        return self._max_concurrency

    async def _open(self) -> None:
        if self._closed:
            raise ReaderStateError("Reader is closed")
        if self._reader is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=self._max_concurrency,
                                            thread_name_prefix="shardvec-async-reader")
        try:
            self._reader = await self._run(ShardedVectorReader, **self._options)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def _run(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Runs ``fn`` on the reader's threads. Cancelling the caller does not interrupt the call
        already running (the engine cannot be interrupted); its result is dropped."""
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    def _open_reader(self) -> ShardedVectorReader:
        if self._closed:
            raise ReaderStateError("Reader is closed")
        if self._reader is None:
            raise ReaderStateError(
                "Reader is not open: use `await AsyncShardedVectorReader.open(...)` or "
                "`async with AsyncShardedVectorReader(...)`")
        return self._reader

    async def _take_tokens(self, queries: int) -> None:
        if self._rate_limiter is not None:
            for _ in range(queries):
                await self._rate_limiter.acquire_async()

    async def search(self, query: Any, top_k: int = 10, *, shard_ids: Sequence[int] | None = None,
                     num_probes: int | None = None,
                     routing_context: dict[str, Any] | None = None,
                     sublist_probes: int | None = None, filter: str | None = None,  # noqa: A002
                     max_extra_probes: int | None = None) -> VectorSearchResponse:
        """As :meth:`ShardedVectorReader.search`, without blocking the event loop."""
        reader = self._open_reader()
        await self._take_tokens(1)
        return await self._run(reader.search, query, top_k, shard_ids=shard_ids, num_probes=num_probes,
                               routing_context=routing_context, sublist_probes=sublist_probes, filter=filter,
                               max_extra_probes=max_extra_probes)

    async def batch_search(self, queries: Any, top_k: int = 10, *, shard_ids: Sequence[int] | None = None,
                           num_probes: int | None = None,
                           routing_context: dict[str, Any] | None = None,
                           sublist_probes: int | None = None, filter: str | None = None,  # noqa: A002
                           max_extra_probes: int | None = None) -> list[VectorSearchResponse]:
        """As :meth:`ShardedVectorReader.batch_search` (the rows searched in parallel in one engine
        call), without blocking the event loop."""
        reader = self._open_reader()
        matrix = float32_array(queries, "queries")
        await self._take_tokens(1 if matrix.ndim == 1 else int(matrix.shape[0]))
        return await self._run(reader.batch_search, matrix, top_k, shard_ids=shard_ids, num_probes=num_probes,
                               routing_context=routing_context, sublist_probes=sublist_probes, filter=filter,
                               max_extra_probes=max_extra_probes)

    async def refresh(self) -> bool:
        """Moves to the snapshot ``_CURRENT`` names now; False when it did not change. Refreshes
        run one at a time."""
        reader = self._open_reader()
        if self._refresh_lock is None:
            self._refresh_lock = asyncio.Lock()
        async with self._refresh_lock:
            return await self._run(reader.refresh)

    def route_vector(self, query: Any, *, num_probes: int | None = None,
                     routing_context: dict[str, Any] | None = None) -> list[int]:
        """The shards a query would probe (routing only, in memory)."""
        return self._open_reader().route_vector(query, num_probes=num_probes, routing_context=routing_context)

    def snapshot_info(self) -> SnapshotInfo:
        return self._open_reader().snapshot_info()

    def shard_details(self) -> list[ShardDetail]:
        return self._open_reader().shard_details()

    def shard_for_id(self, shard_id: int) -> ShardDetail:
        """As :meth:`ShardedVectorReader.shard_for_id`."""
        return self._open_reader().shard_for_id(shard_id)

    def health(self, staleness_threshold: timedelta | None = None, *, deep: bool = False,
               sample: int | None = None) -> ReaderHealth:
        """As :meth:`ShardedVectorReader.health`: unhealthy and ``is_closed`` once closed (or never
        opened). Synchronous, as the reference's is: ``deep=True`` reads the shards on the calling
        thread, so from a running event loop call it as ``await asyncio.to_thread(reader.health,
        deep=True)``."""
        if self._reader is None or self._closed:
            return ReaderHealth(status="unhealthy", manifest_ref=None, manifest_age_seconds=None,
                                      num_shards=0, is_closed=True)
        return self._reader.health(staleness_threshold, deep=deep, sample=sample)

    async def close(self) -> None:
        """Closes the reader; idempotent. Searches still running finish on their threads (the
        engine keeps their shards open until they release them); new calls raise ReaderStateError."""
        if self._closed:
            return
        self._closed = True
        reader, executor = self._reader, self._executor
        if reader is not None:
            # Not on the reader's threads: they may all be busy with searches.
            await asyncio.to_thread(reader.close)
        if executor is not None:
            executor.shutdown(wait=False)

    async def __aenter__(self) -> AsyncShardedVectorReader:
        await self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
