"""The ``shardvec`` console command that ``pip install`` puts on the PATH: it runs the C++ command-line
tool the wheel ships (``shardvec/_bin/shardvec``, the same program as a checkout's ``./bin/shardvec``),
so there is one CLI. The process is replaced by the tool (exit code, stdin, signals and terminal are
its own); only sqlite-vec's ``vec0.so`` is pointed at the installed ``sqlite_vec`` wheel's copy, as
the Python API does, unless ``SHARDVEC_VEC0_PATH`` is already set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from shardvec._native import _vec0_path

BINARY = Path(__file__).resolve().parent / "_bin" / "shardvec"


def main() -> None:
    if not os.access(BINARY, os.X_OK):
        sys.stderr.write(f"shardvec: error: the command-line tool is missing from the installed package "
                         f"('{BINARY}' is not an executable file); reinstall the package\n")
        sys.exit(1)
    os.environ.setdefault("SHARDVEC_VEC0_PATH", _vec0_path())
    os.execv(BINARY, ["shardvec", *sys.argv[1:]])


if __name__ == "__main__":
    main()
