"""A metrics collector that pickles: each event is appended as one JSON line to a file, so the events
a Spark, Dask or Ray worker process emits can be read back by the test (on every worker's PYTHONPATH,
see test_distributed.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class EventFile:
    path: str

    def emit(self, event: str, payload: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"event": event, "payload": payload}, default=str) + "\n")

    def events(self) -> list[dict[str, Any]]:
        file = Path(self.path)
        return [json.loads(line) for line in file.read_text().splitlines()] if file.exists() else []
