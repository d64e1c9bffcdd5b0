"""How the package's modules depend on each other: shardvec.config does not import shardvec.vector
(not at import, not lazily, not under TYPE_CHECKING), and the engine bridge is one module the writer,
the reader and the distributed writers share, none of them reaching into another's private names."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import shardvec

PACKAGE = Path(shardvec.__file__).resolve().parent


def imported_modules(path: Path) -> list[tuple[str, list[str]]]:
    """Every import in ``path`` (anywhere in the file) as (absolute module, names)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found.append((module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
    return found


def test_config_does_not_import_the_vector_package() -> None:
    for module, names in imported_modules(PACKAGE / "config.py"):
        assert not module.startswith("shardvec.vector"), (module, names)
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, shardvec.config; print(sorted(m for m in sys.modules if 'vector' in m))"],
        capture_output=True, text=True, check=True).stdout
    assert "shardvec.vector" not in loaded, loaded


def test_the_engine_bridge_is_one_module_and_no_private_helper_is_borrowed() -> None:
    users = ["vector/writer.py", "vector/reader.py", "vector/_distributed.py"]
    for user in users:
        imports = imported_modules(PACKAGE / user)
        assert any(module == "shardvec.vector._bridge" for module, _ in imports), user
        for module, names in imports:
            if module.startswith("shardvec.") and module != "shardvec._native":
                private = [n for n in names if n.startswith("_")]
                assert not private, (user, module, private)
