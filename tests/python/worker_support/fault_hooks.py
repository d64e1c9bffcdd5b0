"""Faults the distributed-writer tests inject through ``ShardTaskSpec.after_upload``. A module of its
own, on every worker's PYTHONPATH (test_distributed.py), so a hook pickled on the driver is found
again by the Spark, Dask and Ray worker processes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FailFirstAttemptAfterUpload:
    """Fails the first attempt (attempt 0) of db ``db_id`` once its shard is uploaded."""

    db_id: int

    def __call__(self, info: Any) -> None:
        if info.db_id == self.db_id and info.attempt == 0:
            raise RuntimeError(f"injected failure after uploading db {self.db_id} attempt 0")
