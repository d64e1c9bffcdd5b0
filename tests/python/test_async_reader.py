"""``AsyncShardedVectorReader``: the synchronous reader's answers from asyncio code, with engine calls
off the event loop. A TCP proxy in front of the S3 test server holds shard downloads until the test
lets them go, so "the loop keeps running during a cold read", "a cancelled search leaves the reader
usable" and "max_concurrency bounds the calls in flight" are shown by what happens while a download
is held, never by timing."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shardvec.errors import ConfigValidationError, ReaderStateError
from shardvec.rate_limiter import AcquireResult
from shardvec.vector import AsyncShardedVectorReader, ShardedVectorReader, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardedWriteConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

DIM = 8
NUM_DBS = 4
DATA = np.random.default_rng(11).standard_normal((400, DIM)).astype(np.float32)
QUERIES = np.random.default_rng(12).standard_normal((6, DIM)).astype(np.float32)
#: Bounds every polling loop (each step yields to the event loop for a millisecond).
MAX_STEPS = 20_000
#: A held download is let go after this many seconds even if the test never does (so a reader
#: that blocked the loop fails its assertions instead of hanging the test).
HOLD_LIMIT_SECONDS = 30


def write_config(prefix: str, **kwargs: Any) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2),
        sharding=VectorShardingConfig(num_dbs=NUM_DBS, strategy=VectorShardingStrategy.LSH),
        s3_prefix=prefix, **kwargs)


@pytest.fixture
def folder_snapshot(tmp_path: Path) -> str:
    store = str(tmp_path / "store")
    write_arrays(DATA, write_config(store))
    return store


class HoldingProxy:
    """Forwards TCP to the S3 server; a request for a shard.db waits for ``release`` first."""

    def __init__(self, endpoint: str) -> None:
        host, port = endpoint.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.held: set[bytes] = set()  # shard keys whose GET is waiting
        self.server = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, requests: bool) -> None:
        try:
            while data := src.recv(65536):
                if requests and data.startswith(b"GET ") and b"shard.db" in data.split(b"\r\n", 1)[0]:
                    key = data.split(b" ", 2)[1]
                    with self.lock:
                        self.held.add(key)
                    self.release.wait(HOLD_LIMIT_SECONDS)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def held_count(self) -> int:
        with self.lock:
            return len(self.held)

    def close(self) -> None:
        self.closed = True
        self.release.set()
        self.server.close()


@pytest.fixture
def s3_snapshot(s3_server: dict[str, Any], tmp_path: Path) -> Iterator[tuple[str, HoldingProxy, dict[str, Any]]]:
    """A snapshot on the S3 test server, a HoldingProxy in front of the server, and reader options
    that reach the snapshot through the proxy."""
    creds = s3_server["credentials"]
    write_arrays(DATA, write_config(s3_server["prefix"], s3_connection_options=s3_server["s3_connection_options"],
                                    credential_provider=lambda: creds))
    proxy = HoldingProxy(s3_server["s3_connection_options"]["endpoint_url"])
    options = {"s3_connection_options": {**s3_server["s3_connection_options"], "endpoint_url": proxy.endpoint,
                                         "read_timeout": 120},
               "credential_provider": lambda: creds, "local_root": str(tmp_path / "cache")}
    try:
        yield s3_server["prefix"], proxy, options
    finally:
        proxy.close()


async def wait_until(predicate: Any, what: str) -> None:
    for _ in range(MAX_STEPS):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"never happened: {what}")


def hits(response: Any) -> list[tuple[Any, float]]:
    return [(r.id, r.score) for r in response.results]


# --- the API ---------------------------------------------------------------------------------------


def test_open_search_batch_refresh_close_answer_as_the_sync_reader(folder_snapshot: str, tmp_path: Path) -> None:
    with ShardedVectorReader(s3_prefix=folder_snapshot, local_root=str(tmp_path / "sync")) as sync:
        expected = [hits(sync.search(q, top_k=5, num_probes=2)) for q in QUERIES]
        expected_batch = [hits(r) for r in sync.batch_search(QUERIES, top_k=5, num_probes=2)]
        info, details, route = sync.snapshot_info(), sync.shard_details(), sync.route_vector(QUERIES[0], num_probes=2)

    async def scenario() -> None:
        reader = await AsyncShardedVectorReader.open(s3_prefix=folder_snapshot, local_root=str(tmp_path / "a"),
                                                     max_concurrency=3)
        assert reader.max_concurrency == 3
        assert [hits(await reader.search(q, top_k=5, num_probes=2)) for q in QUERIES] == expected
        assert [hits(r) for r in await reader.batch_search(QUERIES, top_k=5, num_probes=2)] == expected_batch
        # Concurrent searches from one loop answer each query as it does alone.
        together = await asyncio.gather(*(reader.search(q, top_k=5, num_probes=2) for q in QUERIES))
        assert [hits(r) for r in together] == expected
        assert reader.snapshot_info() == info
        assert reader.shard_details() == details
        assert [reader.shard_for_id(d.db_id) for d in details] == details
        assert reader.route_vector(QUERIES[0], num_probes=2) == route
        assert reader.health().status == "healthy"
        assert await reader.refresh() is False
        write_arrays(DATA[:50], write_config(folder_snapshot))
        assert await reader.refresh() is True
        assert reader.snapshot_info().total_vectors == 50
        await reader.close()
        await reader.close()  # idempotent
        assert reader.health().is_closed
        with pytest.raises(ReaderStateError, match="Reader is closed"):
            await reader.search(QUERIES[0])
        with pytest.raises(ReaderStateError, match="Reader is closed"):
            reader.snapshot_info()

    asyncio.run(scenario())


def test_async_with_opens_and_closes(folder_snapshot: str, tmp_path: Path) -> None:
    async def scenario() -> AsyncShardedVectorReader:
        async with AsyncShardedVectorReader(s3_prefix=folder_snapshot, local_root=str(tmp_path / "a")) as reader:
            assert (await reader.search(DATA[17], top_k=1, num_probes=NUM_DBS)).results[0].id == 17
        return reader

    reader = asyncio.run(scenario())
    assert reader.health().is_closed


def test_errors_are_the_sync_readers_classes_never_an_exception_group(folder_snapshot: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        unopened = AsyncShardedVectorReader(s3_prefix=folder_snapshot)
        with pytest.raises(ReaderStateError, match="not open"):
            await unopened.search(QUERIES[0])
        assert unopened.health().status == "unhealthy"
        async with AsyncShardedVectorReader(s3_prefix=folder_snapshot, local_root=str(tmp_path / "a")) as reader:
            with pytest.raises(ConfigValidationError, match="dim"):
                await reader.search(np.ones(DIM + 1, dtype=np.float32))
            with pytest.raises(ConfigValidationError, match="top_k"):
                await reader.batch_search(QUERIES, top_k=0)
            with pytest.raises(ConfigValidationError, match="shard_ids"):
                await reader.search(QUERIES[0], shard_ids=[NUM_DBS + 3])
            # Still usable after the errors.
            assert len((await reader.search(QUERIES[0], top_k=2)).results) == 2
        with pytest.raises(ReaderStateError):  # the sync reader's class for "nothing published here"
            await AsyncShardedVectorReader.open(s3_prefix=str(tmp_path / "empty"), local_root=str(tmp_path / "b"))

    asyncio.run(scenario())


def test_options_are_checked_as_the_sync_reader_checks_them(folder_snapshot: str) -> None:
    for bad in (0, -1, 1025, 2.5, True, "4"):
        with pytest.raises(ConfigValidationError, match="max_concurrency must be None or an int in 1..1024"):
            AsyncShardedVectorReader(s3_prefix=folder_snapshot, max_concurrency=bad)

    class SyncOnly:
        def acquire(self, tokens: int = 1) -> None: ...

    with pytest.raises(ConfigValidationError, match=r"rate_limiter must be None or a RateLimiter .*acquire_async"):
        AsyncShardedVectorReader(s3_prefix=folder_snapshot, rate_limiter=SyncOnly())
    with pytest.raises(ConfigValidationError, match="reader_factory"):
        AsyncShardedVectorReader(s3_prefix=folder_snapshot, reader_factory=object())
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['max_worker'\]"):
        AsyncShardedVectorReader(s3_prefix=folder_snapshot, max_worker=2)
    with pytest.raises(ConfigValidationError, match="max_workers"):  # the sync reader's own check
        asyncio.run(AsyncShardedVectorReader.open(s3_prefix=folder_snapshot, max_workers=-1))

    # manifest_store goes to the same place as the sync reader's (one code path): same outcome.
    store = object()
    with pytest.raises(ConfigValidationError) as sync_error:
        ShardedVectorReader(s3_prefix=folder_snapshot, manifest_store=store)
    with pytest.raises(ConfigValidationError) as async_error:
        asyncio.run(AsyncShardedVectorReader.open(s3_prefix=folder_snapshot, manifest_store=store))
    assert str(async_error.value) == str(sync_error.value)


def test_the_rate_limiter_is_awaited_once_per_query(folder_snapshot: str, tmp_path: Path) -> None:
    class Counting:
        def __init__(self) -> None:
            self.async_taken = 0
            self.sync_taken = 0

        def acquire(self, tokens: int = 1) -> None:
            self.sync_taken += tokens

        def try_acquire(self, tokens: int = 1) -> AcquireResult:
            return AcquireResult(True, 0.0)

        async def acquire_async(self, tokens: int = 1) -> None:
            self.async_taken += tokens

    limiter = Counting()

    async def scenario() -> None:
        async with AsyncShardedVectorReader(s3_prefix=folder_snapshot, local_root=str(tmp_path / "a"),
                                            rate_limiter=limiter) as reader:
            await reader.search(QUERIES[0])
            await reader.batch_search(QUERIES[:4])
            await reader.batch_search(QUERIES[0])  # one 1-D query

    asyncio.run(scenario())
    assert (limiter.async_taken, limiter.sync_taken) == (6, 0)


def test_metrics_reach_the_collector(folder_snapshot: str, tmp_path: Path) -> None:
    events: list[str] = []

    class Collector:
        def emit(self, event: str, payload: dict[str, Any]) -> None:
            events.append(event)

    async def scenario() -> None:
        async with AsyncShardedVectorReader(s3_prefix=folder_snapshot, local_root=str(tmp_path / "a"),
                                            metrics_collector=Collector()) as reader:
            await reader.search(QUERIES[0])

    asyncio.run(scenario())
    for name in ("vector.reader.initialized", "vector.reader.search", "vector.reader.closed"):
        assert name in events


# --- off the event loop (S3 through the holding proxy) ---------------------------------------------


def test_the_loop_keeps_serving_coroutines_during_a_cold_s3_read(s3_snapshot: tuple[str, HoldingProxy, dict[str, Any]]) -> None:
    prefix, proxy, options = s3_snapshot
    ticks = 0

    async def ticker(stop: asyncio.Event) -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    async def scenario() -> None:
        reader = await AsyncShardedVectorReader.open(s3_prefix=prefix, **options)
        try:
            stop = asyncio.Event()
            ticking = asyncio.create_task(ticker(stop))
            search = asyncio.create_task(reader.search(DATA[42], top_k=3, shard_ids=[reader.route_vector(DATA[42])[0]]))
            await wait_until(lambda: proxy.held_count() == 1, "the shard download reached the proxy")
            before = ticks
            await wait_until(lambda: ticks >= before + 50, "the ticker ran 50 more times")
            # The ticker ran while the search was waiting for its shard.
            assert not search.done()
            proxy.release.set()
            response = await search
            assert response.results[0].id == 42
            stop.set()
            await ticking
        finally:
            await reader.close()

    asyncio.run(scenario())


def test_a_cancelled_search_leaves_the_reader_usable(s3_snapshot: tuple[str, HoldingProxy, dict[str, Any]]) -> None:
    prefix, proxy, options = s3_snapshot

    async def scenario() -> None:
        async with AsyncShardedVectorReader(s3_prefix=prefix, max_concurrency=2, **options) as reader:
            shard = reader.route_vector(DATA[7])[0]
            search = asyncio.create_task(reader.search(DATA[7], top_k=2, shard_ids=[shard]))
            await wait_until(lambda: proxy.held_count() == 1, "the shard download reached the proxy")
            search.cancel()
            with pytest.raises(asyncio.CancelledError):
                await search
            proxy.release.set()
            # The same shard, and every other one, answer afterwards.
            assert (await reader.search(DATA[7], top_k=1, shard_ids=[shard])).results[0].id == 7
            answers = await asyncio.gather(*(reader.search(DATA[i], top_k=1, num_probes=NUM_DBS) for i in range(20)))
            assert [r.results[0].id for r in answers] == list(range(20))
            assert reader.health().status == "healthy"

    asyncio.run(scenario())


def test_max_concurrency_bounds_the_engine_calls_in_flight(s3_snapshot: tuple[str, HoldingProxy, dict[str, Any]]) -> None:
    prefix, proxy, options = s3_snapshot

    async def scenario() -> None:
        async with AsyncShardedVectorReader(s3_prefix=prefix, max_concurrency=2, **options) as reader:
            searches = [asyncio.create_task(reader.search(QUERIES[0], top_k=1, shard_ids=[db]))
                        for db in range(NUM_DBS)]
            await wait_until(lambda: proxy.held_count() == 2, "two shard downloads reached the proxy")
            for _ in range(50):
                await asyncio.sleep(0.001)
            # Two calls run; the other two wait for a thread (the loop itself is free).
            assert proxy.held_count() == 2
            assert not any(s.done() for s in searches)
            proxy.release.set()
            answers = await asyncio.gather(*searches)
            assert [r.num_shards_queried for r in answers] == [1] * NUM_DBS
            assert proxy.held_count() == NUM_DBS

    asyncio.run(scenario())
