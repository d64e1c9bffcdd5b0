"""Token-bucket rate limiting for the readers and the writers (shardyfusion's ``RateLimiter`` API).

``RateLimiter`` is what the readers and writers call: ``acquire()`` blocks, ``try_acquire()`` never
blocks, ``acquire_async()`` awaits. ``TokenBucket`` holds ``rate`` tokens per second; a call takes
``tokens`` (1 for an operation). ``ThreadSafeTokenBucket`` is the same bucket shared by threads.

Differences from the reference, on purpose:

* The bucket's capacity is ``max(rate, 1)`` tokens, so a rate below one per second (``0.5``: one
  search every two seconds) works; the reference's bucket never reaches one token then and waits
  forever.
* A request for more tokens than the capacity can never be served: it raises
  :class:`~shardvec.errors.ConfigValidationError` naming both values instead of waiting forever.
* ``rate`` must be a finite number > 0 (the reference divides by it unchecked).

Metric events: a bucket given a ``metrics_collector`` emits ``rate_limiter.throttled``
(``wait_seconds``, ``limiter_type``) each time a blocking acquire has to wait, and
``rate_limiter.denied`` (``deficit_seconds``, ``limiter_type``) each time ``try_acquire`` finds too
few tokens (``acquire_async`` and the thread-safe ``acquire`` go through ``try_acquire``, so they
emit both), as the reference does.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .errors import ConfigValidationError

__all__ = [
    "RATE_LIMITER_DENIED",
    "RATE_LIMITER_THROTTLED",
    "AcquireResult",
    "RateLimiter",
    "ThreadSafeTokenBucket",
    "TokenBucket",
    "check_rate_limiter",
    "write_rate_limiter",
]

#: The metric event a blocking acquire emits before it waits.
RATE_LIMITER_THROTTLED = "rate_limiter.throttled"
#: The metric event ``try_acquire`` emits when it finds too few tokens.
RATE_LIMITER_DENIED = "rate_limiter.denied"

_logger = logging.getLogger("shardvec.rate_limiter")


@dataclass(slots=True)
class AcquireResult:
    """What ``try_acquire()`` found: ``acquired`` is True when the tokens were taken; ``deficit`` is
    the seconds until enough tokens would be there (0.0 when acquired). Truthy when acquired."""

    acquired: bool
    deficit: float

    def __bool__(self) -> bool:
        return self.acquired


@runtime_checkable
class RateLimiter(Protocol):
    """What the readers and writers call. ``try_acquire`` only does arithmetic (never blocks, safe
    from async code); ``acquire`` sleeps until the tokens are there; ``acquire_async`` awaits."""

    def acquire(self, tokens: int = 1) -> None: ...
    def try_acquire(self, tokens: int = 1) -> AcquireResult: ...
    async def acquire_async(self, tokens: int = 1) -> None: ...


def check_rate_limiter(limiter: object, *, needs_async: bool = False,
                       field_name: str = "rate_limiter") -> None:
    """``limiter`` must be None or have a callable ``acquire`` (``acquire_async`` for an async
    reader); anything else raises ConfigValidationError naming ``field_name``."""
    if limiter is None:
        return
    method = "acquire_async" if needs_async else "acquire"
    if not callable(getattr(limiter, method, None)):
        raise ConfigValidationError(
            f"{field_name} must be None or a RateLimiter (an object with {method}(tokens=1), e.g. "
            f"TokenBucket(rate)), got {limiter!r}")


def _check_rate(rate: object) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate <= 0:
        raise ConfigValidationError(f"rate must be a finite number of tokens per second > 0, got {rate!r}")
    return float(rate)


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, at most ``max(rate, 1)`` held, full at the start.

    Not thread-safe (see :class:`ThreadSafeTokenBucket`). ``limiter_type`` labels the metric events
    (``"ops"``, ``"bytes"``). ``clock``, ``sleep`` and ``async_sleep`` replace ``time.monotonic``,
    ``time.sleep`` and ``asyncio.sleep`` (a simulated clock in tests).
    """

    def __init__(
        self,
        rate: float,
        metrics_collector: Any | None = None,
        limiter_type: str = "ops",
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        async_sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self._rate = _check_rate(rate)
        self._capacity = max(self._rate, 1.0)
        self._clock = clock or time.monotonic
        self._sleep = sleep or time.sleep
        self._async_sleep = async_sleep or asyncio.sleep
        self._tokens = self._capacity
        self._last = self._clock()
        self._metrics = metrics_collector
        self._limiter_type = limiter_type

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self._rate

    @property
    def capacity(self) -> float:
        """The most tokens the bucket holds: ``max(rate, 1)``."""
        return self._capacity

    def _check_tokens(self, tokens: object) -> float:
        if isinstance(tokens, bool) or not isinstance(tokens, (int, float)) or not math.isfinite(tokens) or tokens < 0:
            raise ConfigValidationError(f"tokens must be a finite number >= 0, got {tokens!r}")
        if tokens > self._capacity:
            raise ConfigValidationError(
                f"tokens={tokens!r} can never be acquired: the bucket holds at most {self._capacity:g} "
                f"(rate={self._rate:g} per second, capacity max(rate, 1))")
        return float(tokens)

    def _replenish(self) -> None:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + max(0.0, now - self._last) * self._rate)
        self._last = now

    def _emit(self, event: str, payload: dict[str, Any]) -> None:
        _logger.debug("%s %s", event, payload)
        if self._metrics is not None:
            self._metrics.emit(event, payload)

    def _throttled(self, wait: float) -> None:
        self._emit(RATE_LIMITER_THROTTLED, {"wait_seconds": wait, "limiter_type": self._limiter_type})

    def _take(self, tokens: float) -> AcquireResult:
        """Replenish, then take ``tokens`` if there; otherwise the seconds until they would be."""
        self._replenish()
        if self._tokens >= tokens:
            self._tokens -= tokens
            return AcquireResult(acquired=True, deficit=0.0)
        return AcquireResult(acquired=False, deficit=(tokens - self._tokens) / self._rate)

    def try_acquire(self, tokens: int = 1) -> AcquireResult:
        """Takes ``tokens`` if they are there now; never blocks. Emits ``rate_limiter.denied`` when not."""
        result = self._take(self._check_tokens(tokens))
        if not result:
            self._emit(RATE_LIMITER_DENIED, {"deficit_seconds": result.deficit, "limiter_type": self._limiter_type})
        return result

    def acquire(self, tokens: int = 1) -> None:
        """Blocks until ``tokens`` are taken, emitting ``rate_limiter.throttled`` before each wait."""
        wanted = self._check_tokens(tokens)
        while not (result := self._take(wanted)):
            self._throttled(result.deficit)
            self._sleep(result.deficit)

    async def acquire_async(self, tokens: int = 1) -> None:
        """As ``acquire``, awaiting ``asyncio.sleep`` instead of blocking the thread."""
        while not (result := self.try_acquire(tokens)):
            self._throttled(result.deficit)
            await self._async_sleep(result.deficit)


class ThreadSafeTokenBucket(TokenBucket):
    """A :class:`TokenBucket` shared by threads: ``try_acquire`` holds a lock; ``acquire`` and
    ``acquire_async`` sleep outside it, so a waiting caller does not block the others."""

    def __init__(self, rate: float, metrics_collector: Any | None = None, limiter_type: str = "ops",
                 **kwargs: Any) -> None:
        super().__init__(rate, metrics_collector, limiter_type, **kwargs)
        self._lock = threading.Lock()

    def try_acquire(self, tokens: int = 1) -> AcquireResult:
        with self._lock:
            return super().try_acquire(tokens)

    def acquire(self, tokens: int = 1) -> None:
        while not (result := self.try_acquire(tokens)):
            self._throttled(result.deficit)
            self._sleep(result.deficit)


def write_rate_limiter(max_writes_per_second: float | None, metrics_collector: Any | None = None,
                       ) -> ThreadSafeTokenBucket | None:
    """The writers' limiter for ``rate_limits.max_writes_per_second`` (None when unset): one token
    per batch of ``batch_size`` rows of a shard, metric events to the write's ``metrics_collector``.
    Thread-safe, since a write builds several shards at once."""
    if max_writes_per_second is None:
        return None
    return ThreadSafeTokenBucket(max_writes_per_second, metrics_collector=metrics_collector, limiter_type="ops")
