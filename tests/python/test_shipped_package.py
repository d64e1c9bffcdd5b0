"""What the installed package ships: one version number everywhere (the repository's VERSION file
is its only source), and no fault-injection hook in its modules or its engine."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

import shardvec
from shardvec import _native

from conftest import CLI, ROOT

HOOK_NAMES = [b"SHARDVEC_FAULT_POINT", b"SHARDVEC_FAULT_ACTION", b"SHARDVEC_TEST_FAULT_FILE", b"fault injected at"]


def test_cmake_the_wheel_and_the_module_give_the_version_file() -> None:
    version = (ROOT / "VERSION").read_text().strip()
    assert shardvec.__version__ == version
    assert metadata.version("shardvec") == version  # the wheel's metadata (pyproject.toml)
    assert _native._engine.version == version  # CMake's project version, compiled into the engine
    cli = subprocess.run([str(CLI), "--version"], capture_output=True, text=True, check=True)
    assert cli.stdout.strip() == f"shardvec {version}"


def test_the_installed_package_has_no_fault_hook() -> None:
    package = Path(shardvec.__file__).parent
    files = [p for p in package.rglob("*") if p.is_file() and p.suffix in (".py", ".so")]
    assert any(p.suffix == ".so" and p.name.startswith("_engine") for p in files), files
    for path in files:
        data = path.read_bytes()
        for name in HOOK_NAMES:
            assert name not in data, f"{name.decode()} in {path}"
