"""`pip install .` in a fresh virtualenv builds the engine and gives a working package, with the
`shardvec` console command (the C++ CLI the wheel ships).

Offline: the build backend and the runtime dependencies come from .deps/wheelhouse, which
scripts/setup fills with requirements.txt's pins. Only the project's tracked files are copied, so
no build folder of this checkout is reused. When the run compiles through ccache (scripts/test sets
that up), the copy is ccache's base folder, so the engine files this checkout's Release build has
just compiled with the same command lines come from the cache instead of compiling a second time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / ".deps" / "wheelhouse"

CHECK = r"""
import numpy as np, sys
from shardvec.vector import ShardedVectorReader, VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy
import shardvec
assert shardvec.__file__.startswith(sys.prefix), shardvec.__file__  # the venv's copy, not the checkout
data = np.random.default_rng(0).standard_normal((2000, 24)).astype(np.float32)
config = VectorShardedWriteConfig(
    sharding=VectorShardingConfig(num_dbs=4, strategy=VectorShardingStrategy.LSH),
    s3_prefix=sys.argv[1], index_config=VectorIndexConfig(dim=24, metric=DistanceMetric.L2))
write_arrays(data, config)
with ShardedVectorReader(s3_prefix=sys.argv[1], local_root=sys.argv[2]) as reader:
    for q in data[:5]:
        hits = [h.id for h in reader.search(q, top_k=10, shard_ids=[0, 1, 2, 3]).results]
        assert hits == list(np.argsort(((data - q) ** 2).sum(axis=1), kind="stable")[:10]), hits
print("fresh install ok")
"""


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                         capture_output=True, text=True)
    return [f for f in out.stdout.splitlines() if (ROOT / f).is_file()]


def test_pip_install_in_a_fresh_venv(tmp_path: Path) -> None:
    source = tmp_path / "src"
    for name in tracked_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The project venv's pip drives the install into the fresh venv (--python), so no pip is fetched.
    build_env = dict(os.environ)
    if build_env.get("CMAKE_CXX_COMPILER_LAUNCHER"):
        # The same command lines as the Release build (no precompiled engine headers, as there):
        # paths relative to the copy, and the compiler names CMake picks by itself
        # (scikit-build-core would otherwise set Python's, g++ and gcc).
        build_env["CCACHE_BASEDIR"] = str(source)
        build_env.setdefault("CXX", "c++")
        build_env.setdefault("CC", "cc")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index",
         "--find-links", str(WHEELHOUSE), "-C", "cmake.define.SHARDVEC_ENGINE_PCH=OFF", str(source)],
        capture_output=True, text=True, timeout=1800, env=build_env)  # the engine, bindings and CLI
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    run = subprocess.run([str(python), "-c", CHECK, str(tmp_path / "store"), str(tmp_path / "cache")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "fresh install ok" in run.stdout
    env = {k: v for k, v in os.environ.items() if k != "SHARDVEC_VEC0_PATH"}
    cli = subprocess.run([str(venv / "bin" / "shardvec"), "search", "--store", str(tmp_path / "store"),
                          "--query", ",".join(["0.5"] * 24), "--shard-ids", "0,1,2,3",
                          "--cache-dir", str(tmp_path / "cli-cache"), "--json"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert len(json.loads(cli.stdout)["results"]) == 10
