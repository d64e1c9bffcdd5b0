"""Loads the C++ engine and points it at sqlite-vec's vec0 from the pinned PyPI wheel."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from shardvec import _engine


def _vec0_path() -> str:
    """vec0.so inside the installed ``sqlite_vec`` wheel, found without importing it: importing it
    imports Python's ``sqlite3``, which initialises SQLite before the engine can configure it."""
    spec = importlib.util.find_spec("sqlite_vec")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the sqlite-vec package is not installed (pip install sqlite-vec==0.1.9)")
    return str(Path(next(iter(spec.submodule_search_locations))) / "vec0.so")


# The engine's default vec0 is the wheel's copy (SHARDVEC_VEC0_PATH, when set, wins over it).
_engine.set_default_vec0_path(_vec0_path())

__all__ = ["_engine"]
