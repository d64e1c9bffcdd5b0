"""Loads the C++ engine and points it at sqlite-vec's vec0 from the pinned PyPI wheel."""

from __future__ import annotations

import os

import sqlite_vec

# The engine loads vec0 itself; SHARDVEC_VEC0_PATH (when already set) wins over the wheel's copy.
os.environ.setdefault("SHARDVEC_VEC0_PATH", sqlite_vec.loadable_path() + ".so")

from shardvec import _engine  # noqa: E402  (must follow the variable above)

__all__ = ["_engine"]
