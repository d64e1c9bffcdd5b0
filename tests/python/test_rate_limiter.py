"""Rate limiting: ``TokenBucket`` / ``ThreadSafeTokenBucket`` on a simulated clock (the reference's
semantics without its endless wait), the reader's ``rate_limiter`` (one token per query) and the
writers' ``rate_limits.max_writes_per_second`` (one token per ``batch_size`` rows of a shard), with the
throttled/denied metric events. No wall-clock assertions: a fake clock or a counting limiter."""

from __future__ import annotations

import asyncio
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import shardvec
from shardvec import AcquireResult, RateLimiter, ThreadSafeTokenBucket, TokenBucket
from shardvec.errors import ConfigValidationError
from shardvec.vector import ShardedVectorReader, VectorRecord, VectorShardedWriteConfig, write_arrays, write_sharded
from shardvec.vector import _distributed, writer
from shardvec.vector.config import VectorAdapterConfig, VectorIndexConfig, VectorShardingConfig, VectorWriteRateLimitConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy
from test_distributed import EXPLICIT_INPUT, config_for, make_table, make_writer

DIM = 4
DATA = np.random.default_rng(3).standard_normal((90, DIM)).astype(np.float32)


class FakeClock:
    """Time moves only when the bucket sleeps."""

    def __init__(self) -> None:
        self.now = 50.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def emit(self, event: str, payload: dict[str, Any]) -> None:
        with self._lock:
            self.seen.append((event, dict(payload)))

    def named(self, name: str) -> list[dict[str, Any]]:
        return [p for e, p in self.seen if e == name]


class CountingLimiter:
    def __init__(self) -> None:
        self.taken = 0
        self._lock = threading.Lock()

    def acquire(self, tokens: int = 1) -> None:
        with self._lock:
            self.taken += tokens

    def try_acquire(self, tokens: int = 1) -> AcquireResult:
        self.acquire(tokens)
        return AcquireResult(True, 0.0)

    async def acquire_async(self, tokens: int = 1) -> None:
        self.acquire(tokens)


def bucket(rate: float, cls: type[TokenBucket] = TokenBucket, **kwargs: Any) -> tuple[TokenBucket, FakeClock]:
    clock = FakeClock()
    return cls(rate, clock=clock, sleep=clock.sleep, async_sleep=clock.async_sleep, **kwargs), clock


# --- the bucket ------------------------------------------------------------------------------------


def test_the_classes_are_exported_from_the_top_level() -> None:
    for name in ("RateLimiter", "AcquireResult", "TokenBucket", "ThreadSafeTokenBucket"):
        assert name in shardvec.__all__
    assert isinstance(TokenBucket(5), RateLimiter)


def test_a_bucket_starts_full_then_serves_rate_per_second() -> None:
    limiter, clock = bucket(2.0)
    limiter.acquire()
    limiter.acquire()
    assert clock.sleeps == []
    limiter.acquire()
    limiter.acquire()
    assert clock.sleeps == [0.5, 0.5]
    assert clock.now == 51.0


def test_try_acquire_never_sleeps_and_reports_the_deficit() -> None:
    events = Events()
    limiter, clock = bucket(4.0, metrics_collector=events, limiter_type="ops")
    assert all(limiter.try_acquire() for _ in range(4))
    result = limiter.try_acquire()
    assert (bool(result), result.acquired, result.deficit) == (False, False, 0.25)
    assert clock.sleeps == []
    assert events.seen == [("rate_limiter.denied", {"deficit_seconds": 0.25, "limiter_type": "ops"})]
    clock.now += 100  # replenished, never above the capacity
    assert sum(bool(limiter.try_acquire()) for _ in range(10)) == 4


def test_a_blocking_acquire_emits_throttled_before_it_waits() -> None:
    events = Events()
    limiter, clock = bucket(1.0, metrics_collector=events, limiter_type="ops")
    limiter.acquire()
    assert events.seen == []
    limiter.acquire()
    assert events.seen == [("rate_limiter.throttled", {"wait_seconds": 1.0, "limiter_type": "ops"})]
    assert clock.sleeps == [1.0]


def test_acquire_async_awaits_the_deficit() -> None:
    events = Events()
    limiter, clock = bucket(2.0, metrics_collector=events)

    async def three() -> None:
        for _ in range(3):
            await limiter.acquire_async()

    asyncio.run(three())
    assert clock.sleeps == [0.5]
    assert [e for e, _ in events.seen] == ["rate_limiter.denied", "rate_limiter.throttled"]


def test_a_rate_below_one_per_second_serves_one_token_at_a_time() -> None:
    # The reference's bucket never holds a whole token at 0.5 per second and waits forever.
    limiter, clock = bucket(0.5)
    assert limiter.capacity == 1.0
    limiter.acquire()
    limiter.acquire()
    assert clock.sleeps == [2.0]


@pytest.mark.parametrize("cls", [TokenBucket, ThreadSafeTokenBucket])
def test_more_tokens_than_the_capacity_are_refused_not_awaited_forever(cls: type[TokenBucket]) -> None:
    limiter, clock = bucket(3.0, cls)
    for call in (lambda: limiter.acquire(4), lambda: limiter.try_acquire(4),
                 lambda: asyncio.run(limiter.acquire_async(4))):
        with pytest.raises(ConfigValidationError, match=r"tokens=4 can never be acquired: the bucket holds at most 3 "
                                                        r"\(rate=3 per second"):
            call()
    assert clock.sleeps == []
    limiter.acquire(3)  # exactly the capacity is served
    with pytest.raises(ConfigValidationError, match="tokens must be a finite number >= 0, got -1"):
        limiter.acquire(-1)


@pytest.mark.parametrize("rate", [0, -2.0, math.inf, math.nan, "5", True, None])
def test_a_bad_rate_is_refused_naming_it(rate: Any) -> None:
    with pytest.raises(ConfigValidationError, match="rate must be a finite number of tokens per second > 0"):
        TokenBucket(rate)


def test_a_thread_safe_bucket_hands_out_each_token_once() -> None:
    limiter, _ = bucket(1000.0, ThreadSafeTokenBucket)  # the clock stands still: exactly 1000 tokens
    won = [0] * 8

    def grab(slot: int) -> None:
        for _ in range(300):
            if limiter.try_acquire():
                won[slot] += 1

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(won) == 1000


# --- the reader ------------------------------------------------------------------------------------


def write_config(prefix: str, **kwargs: Any) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2),
        sharding=VectorShardingConfig(num_dbs=3, strategy=VectorShardingStrategy.LSH),
        s3_prefix=prefix, **kwargs)


@pytest.fixture
def snapshot(tmp_path: Path) -> str:
    store = str(tmp_path / "store")
    write_arrays(DATA, write_config(store))
    return store


def test_the_reader_takes_one_token_per_search_and_per_batch_query(snapshot: str, tmp_path: Path) -> None:
    counting = CountingLimiter()
    with ShardedVectorReader(s3_prefix=snapshot, local_root=str(tmp_path / "c"), rate_limiter=counting) as reader:
        assert reader.search(DATA[5], top_k=1, num_probes=3).results[0].id == 5
        assert counting.taken == 1
        assert len(reader.batch_search(DATA[:7], top_k=1)) == 7
        assert counting.taken == 8


def test_a_reader_over_its_rate_waits_and_the_bucket_reports_it(snapshot: str, tmp_path: Path) -> None:
    events = Events()
    limiter, clock = bucket(2.0, ThreadSafeTokenBucket, metrics_collector=events)
    with ShardedVectorReader(s3_prefix=snapshot, local_root=str(tmp_path / "c"), rate_limiter=limiter) as reader:
        for i in range(4):
            reader.search(DATA[i], top_k=1)
    assert clock.sleeps == [0.5, 0.5]
    assert len(events.named("rate_limiter.throttled")) == 2


@pytest.mark.parametrize("value", [object(), 5, "bucket"])
def test_a_reader_refuses_a_rate_limiter_without_acquire(snapshot: str, value: object) -> None:
    with pytest.raises(ConfigValidationError, match="rate_limiter must be None or a RateLimiter"):
        ShardedVectorReader(s3_prefix=snapshot, rate_limiter=value)


# --- the writers -----------------------------------------------------------------------------------


def expected_tokens(result: Any, batch_size: int) -> int:
    return sum(math.ceil(w.row_count / batch_size) for w in result.winners)


@pytest.fixture
def counting_writes(monkeypatch: pytest.MonkeyPatch) -> list[CountingLimiter]:
    """Every write limiter the writers make, replaced by a counting one (its rate and collector kept)."""
    made: list[CountingLimiter] = []

    def make(rate: float | None, metrics_collector: Any = None) -> CountingLimiter | None:
        if rate is None:
            return None
        made.append(CountingLimiter())
        return made[-1]

    monkeypatch.setattr(writer, "write_rate_limiter", make)
    monkeypatch.setattr(_distributed, "write_rate_limiter", make)
    return made


def test_the_python_writer_takes_one_token_per_batch_of_each_shard(tmp_path: Path,
                                                                    counting_writes: list[CountingLimiter]) -> None:
    records = (VectorRecord(id=i, vector=DATA[i]) for i in range(len(DATA)))
    result = write_sharded(records, write_config(str(tmp_path / "a"), batch_size=10, max_writes_per_second=50.0))
    assert len(counting_writes) == 1
    # Shards of 24, 35 and 31 rows: 3 + 4 + 4 batches, more than ceil(90 / 10) = 9 (each shard's
    # last batch is partial, as in the reference).
    assert sorted(w.row_count for w in result.winners) == [24, 31, 35]
    assert counting_writes[0].taken == expected_tokens(result, 10) == 11

    result = write_arrays(DATA, write_config(str(tmp_path / "b"), batch_size=10,
                                             rate_limits=VectorWriteRateLimitConfig(max_writes_per_second=5)))
    assert counting_writes[1].taken == 11


def test_without_a_rate_the_writer_takes_no_tokens(tmp_path: Path, counting_writes: list[CountingLimiter]) -> None:
    write_arrays(DATA, write_config(str(tmp_path / "a")))
    assert counting_writes == []


def test_the_write_bucket_reports_its_waits_to_the_writes_collector(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()

    def make(rate: float | None, metrics_collector: Any = None) -> TokenBucket:
        assert rate == 2.0
        return ThreadSafeTokenBucket(rate, metrics_collector, "ops", clock=clock, sleep=clock.sleep)

    monkeypatch.setattr(writer, "write_rate_limiter", make)
    events = Events()
    # One shard at a time, so the simulated clock moves only by the waits one thread makes.
    result = write_arrays(DATA, write_config(str(tmp_path / "a"), max_writes_per_second=2.0, metrics_collector=events,
                                             adapter=VectorAdapterConfig(batch_size=30, max_parallel_shards=1)))
    tokens = expected_tokens(result, 30)
    throttled = events.named("rate_limiter.throttled")
    # Two tokens at the start; every further batch waits half a second.
    assert len(throttled) == len(clock.sleeps) == tokens - 2
    assert all(p["limiter_type"] == "ops" for p in throttled)
    assert sum(clock.sleeps) == pytest.approx((tokens - 2) * 0.5)


def test_a_limiter_that_raises_fails_the_write_with_its_exception(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(CountingLimiter):
        def acquire(self, tokens: int = 1) -> None:
            raise KeyError("limiter failed")

    monkeypatch.setattr(writer, "write_rate_limiter", lambda rate, mc=None: Broken())
    store = tmp_path / "a"
    with pytest.raises(KeyError, match="limiter failed"):
        write_arrays(DATA, write_config(str(store), max_writes_per_second=3.0))
    assert not (store / "_CURRENT").exists()


def test_a_distributed_task_takes_one_token_per_batch_from_its_own_bucket(
        tmp_path: Path, counting_writes: list[CountingLimiter]) -> None:
    from shardvec.config import VectorColumnInput

    events = Events()
    config = write_config(str(tmp_path / "d"), batch_size=10, max_writes_per_second=7.0, metrics_collector=events)
    run = _distributed.DistributedRun(config, VectorColumnInput(vector_col="v", id_col="id"), None,
                                      "vector-test", "Test", None)
    try:
        spec = run.task_spec()
        assert (spec.max_writes_per_second, spec.metrics_collector) == (7.0, events)
        table = pa.table({"id": pa.array(np.arange(25, dtype=np.int64)),
                          "v": pa.FixedSizeListArray.from_arrays(pa.array(DATA[:25].reshape(-1)), DIM)})
        info = _distributed.build_shard(spec, 0, [table.slice(0, 12), table.slice(12)])
        assert info.row_count == 25
        assert [c.taken for c in counting_writes] == [3]  # ceil(25 / 10), one bucket for the task
        shared = CountingLimiter()
        _distributed.build_shard(spec, 1, [table], limiter=shared)
        assert shared.taken == 3 and len(counting_writes) == 1
    finally:
        run.abort(RuntimeError("test over"))


def test_a_spec_without_a_rate_ships_no_collector(tmp_path: Path) -> None:
    from shardvec.config import VectorColumnInput

    config = write_config(str(tmp_path / "d"), metrics_collector=Events())
    run = _distributed.DistributedRun(config, VectorColumnInput(vector_col="v", id_col="id"), None,
                                      "vector-test", "Test", None)
    try:
        spec = run.task_spec()
        assert (spec.max_writes_per_second, spec.metrics_collector, spec.new_rate_limiter()) == (None, None, None)
    finally:
        run.abort(RuntimeError("test over"))


@pytest.mark.parametrize("rate", [0, -1.0, math.inf, "3"])
def test_a_bad_write_rate_is_refused_naming_it(rate: Any) -> None:
    with pytest.raises(ConfigValidationError, match="rate_limits.max_writes_per_second must be"):
        VectorWriteRateLimitConfig(max_writes_per_second=rate)


def test_dask_tasks_take_their_tokens_and_report_their_waits(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from event_file import EventFile  # on the workers' PYTHONPATH (test_distributed sets it)

    # 4 shards of 300 rows in batches of 250: 2 tokens a shard. A bucket of 1 token per second per task
    # must wait for every token after a task's first (unless a batch took a second to build).
    collector = EventFile(str(tmp_path / "events.jsonl"))
    cfg = config_for(str(tmp_path / "dask"), VectorShardingStrategy.EXPLICIT)
    cfg.rate_limits = VectorWriteRateLimitConfig(max_writes_per_second=1.0)
    cfg.metrics_collector = collector
    result = make_writer(request, "dask")(make_table(), cfg, EXPLICIT_INPUT)
    assert sorted(w.row_count for w in result.winners) == [300] * 4
    throttled = [e["payload"] for e in collector.events() if e["event"] == "rate_limiter.throttled"]
    assert 1 <= len(throttled) <= 4 * 2 - 1
    assert all(p["limiter_type"] == "ops" and 0 < p["wait_seconds"] <= 1.0 for p in throttled)
