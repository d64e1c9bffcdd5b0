"""What the installed package ships: one version number everywhere (the repository's VERSION file
is its only source), no fault-injection hook in its modules, its engine or its CLI, and the
`shardvec` console command, which is the checkout's CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
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
    files = [p for p in package.rglob("*")
             if p.is_file() and (p.suffix in (".py", ".so") or p.parent.name == "_bin")]
    assert any(p.suffix == ".so" and p.name.startswith("_engine") for p in files), files
    assert package / "_bin" / "shardvec" in files, files
    for path in files:
        data = path.read_bytes()
        for name in HOOK_NAMES:
            assert name not in data, f"{name.decode()} in {path}"


def test_the_console_command_is_the_same_cli(tmp_path: Path) -> None:
    """`pip install` puts `shardvec` beside the venv's python; it runs the CLI the package ships,
    which answers as ./bin/shardvec does and finds vec0 in the sqlite_vec wheel on its own."""
    command = Path(sysconfig.get_path("scripts")) / "shardvec"
    assert command.is_file(), f"{command}: pip install of the package installs no console command"
    env = {k: v for k, v in os.environ.items() if k != "SHARDVEC_VEC0_PATH"}

    def both(*args: str) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
        return tuple(subprocess.run([str(program), *args], capture_output=True, text=True, env=env,
                                    timeout=120) for program in (command, CLI))

    for args in (["--version"], ["search", "--help"], ["search"], ["bogus-subcommand"]):
        ours, checkout = both(*args)
        assert (ours.returncode, ours.stdout, ours.stderr) == (
            checkout.returncode, checkout.stdout.replace(str(CLI), "shardvec"),
            checkout.stderr.replace(str(CLI), "shardvec")), args
    assert both("search")[0].returncode == 2  # a usage error passes through as the CLI's exit code

    lines = [json.dumps({"vector": [float(i), float(i % 3), 1.0]}) for i in range(40)]
    (tmp_path / "v.jsonl").write_text("\n".join(lines) + "\n")
    store = tmp_path / "store"
    built = subprocess.run([str(command), "build", "--store", str(store), "--input", str(tmp_path / "v.jsonl"),
                            "--metric", "l2", "--strategy", "lsh", "--num-dbs", "2", "--json"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert built.returncode == 0, built.stderr
    found = subprocess.run([str(command), "search", "--store", str(store), "--query", "7,1,1",
                            "--top-k", "1", "--shard-ids", "0,1", "--cache-dir", str(tmp_path / "cache"), "--json"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert found.returncode == 0, found.stderr
    assert [r["id"] for r in json.loads(found.stdout)["results"]] == [7]
