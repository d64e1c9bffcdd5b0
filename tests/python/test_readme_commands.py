"""README.md's commands run as written.

Every fenced block of README.md names its language, and every shell block (sh, bash, shell, zsh,
console) is marked on the line before it: ``<!-- runnable -->`` or ``<!-- not-runnable: REASON -->``.
The runnable ones run here, in README order, one ``bash -e -o pipefail`` each, in one temporary
folder set up like a checkout after ``scripts/setup`` (``bin/shardvec``, ``scripts``, ``.venv`` and
``.deps`` link to this checkout's), with ``XDG_CACHE_HOME`` inside it, no ``shardvec`` on the PATH,
and ``/usr/share/datasets/fashion-mnist`` replaced by a small generated dataset in the same IDX
format (2000 train and 100 test images), so the walk-through runs in seconds. Each must exit 0.
The quick start's table in README.md has the header and the column layout scripts/quickstart_eval.py
prints.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from conftest import CLI, ROOT

README = ROOT / "README.md"
SHELL_LANGUAGES = {"sh", "bash", "shell", "zsh", "console"}
FENCE = re.compile(r"^(\s*)```(.*)$")
MARKER = re.compile(r"^\s*<!--\s*(runnable|not-runnable)\s*(?::\s*(.*?))?\s*-->\s*$")
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    marker: str | None  # "runnable", "not-runnable" or None
    reason: str


def readme_blocks(text: str) -> list[Block]:
    """Every fenced block, with the marker on the last non-blank line before its fence."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, info = m.group(1), m.group(2).strip()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not re.match(rf"^{re.escape(indent)}```\s*$", lines[j]):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        assert j < len(lines), f"README.md line {i + 1}: the block is never closed"
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        mark = MARKER.match(lines[k]) if k >= 0 else None
        blocks.append(Block(i + 1, info.split()[0] if info else "", "\n".join(body) + "\n",
                            mark.group(1) if mark else None, (mark.group(2) or "") if mark else ""))
        i = j + 1
    return blocks


def commands_of(block: Block) -> str:
    """A console block's commands are its ``$ `` lines (with their continuations); others run whole."""
    if block.language != "console":
        return block.text
    out: list[str] = []
    continuing = False
    for line in block.text.splitlines():
        if line.startswith("$ ") or continuing:
            out.append(line[2:] if line.startswith("$ ") and not continuing else line)
            continuing = line.endswith("\\")
    return "\n".join(out) + "\n"


def test_every_block_names_its_language_and_every_shell_block_is_marked() -> None:
    text = README.read_text(encoding="utf-8")
    blocks = readme_blocks(text)
    problems = []
    for b in blocks:
        if not b.language:
            problems.append(f"line {b.line}: a fenced block without a language (use ```text for "
                            f"synopses and output, ```sh for commands)")
        elif b.language in SHELL_LANGUAGES and b.marker is None:
            problems.append(f"line {b.line}: a {b.language} block without <!-- runnable --> or "
                            f"<!-- not-runnable: REASON --> on the line before it")
        elif b.language not in SHELL_LANGUAGES and b.marker is not None:
            problems.append(f"line {b.line}: a {b.marker} marker before a {b.language} block")
        elif b.marker == "not-runnable" and not b.reason:
            problems.append(f"line {b.line}: <!-- not-runnable --> needs a reason")
        elif b.marker == "runnable" and b.reason:
            problems.append(f"line {b.line}: <!-- runnable --> takes no reason")
    # A marker that no block follows (the walk-through would silently lose a block).
    markers = sum(1 for line in text.splitlines() if MARKER.match(line))
    if markers != sum(1 for b in blocks if b.marker):
        problems.append(f"{markers} markers, {sum(1 for b in blocks if b.marker)} of them before a block")
    assert not problems, "\n".join(problems)
    assert sum(1 for b in blocks if b.marker == "runnable") >= 2  # the walk-through is really run


def write_idx(path: Path, images: np.ndarray) -> None:
    """An IDX3 uint8 image file (gzip), the format of Debian's dataset-fashion-mnist."""
    header = np.array([0x803, len(images), 28, 28], dtype=">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + images.astype(np.uint8).tobytes())


def small_fashion_mnist(folder: Path) -> Path:
    """Random 28x28 images in place of Fashion-MNIST: 2000 train, 100 test."""
    folder.mkdir()
    rng = np.random.default_rng(27)
    write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (2000, 784)))
    write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (100, 784)))
    return folder


def path_without_shardvec() -> str:
    """PATH minus folders holding a ``shardvec`` command: a fresh clone has none on its PATH."""
    dirs = os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
    return os.pathsep.join(d for d in dirs if d and not (Path(d) / "shardvec").exists())


def test_the_runnable_blocks_run_as_written(tmp_path: Path) -> None:
    runnable = [b for b in readme_blocks(README.read_text(encoding="utf-8")) if b.marker == "runnable"]
    if not runnable:
        pytest.fail("README.md has no runnable block")
    work = tmp_path / "checkout"
    (work / "bin").mkdir(parents=True)
    (work / "bin" / "shardvec").symlink_to(CLI)
    for name in ("scripts", ".venv", ".deps"):
        (work / name).symlink_to(ROOT / name)
    data = small_fashion_mnist(tmp_path / "fashion-mnist")
    env = dict(os.environ, PATH=path_without_shardvec(), XDG_CACHE_HOME=str(tmp_path / "xdg-cache"))
    env.pop("SHARDVEC_VEC0_PATH", None)
    for block in runnable:
        script = commands_of(block).replace(FASHION_MNIST, str(data))
        run = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=work, env=env,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, (f"README.md line {block.line} exited {run.returncode}:\n{script}\n"
                                     f"stdout: {run.stdout[-2000:]}\nstderr: {run.stderr[-2000:]}")


def quickstart_eval():
    spec = importlib.util.spec_from_file_location("quickstart_eval", ROOT / "scripts" / "quickstart_eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_quick_start_table_is_the_one_the_script_prints() -> None:
    evaluation = quickstart_eval()
    lines = README.read_text(encoding="utf-8").splitlines()
    assert lines.count(evaluation.HEADER) == 1, f"README.md lacks the table header {evaluation.HEADER!r}"
    at = lines.index(evaluation.HEADER)
    rows = []
    for line in lines[at + 1:]:
        if not line.strip():
            break
        rows.append(line)
    # The script's default probes, one row each, every column right-aligned under its header.
    ends = [m.end() for m in re.finditer(r"\S+", evaluation.HEADER)]
    probes = [int(p) for p in evaluation.DEFAULT_PROBES.split(",")]
    assert [int(r.split()[0]) for r in rows] == probes, rows
    example = evaluation.table_row(1, 0.5, np.array([1.0, 2.0]), 10.0)
    assert [m.end() for m in re.finditer(r"\S+", example)] == ends, example
    for row in rows:
        assert [m.end() for m in re.finditer(r"\S+", row)] == ends, row
        assert re.fullmatch(r"\s*\d+\s+[01]\.\d{4}(\s+\d+\.\d{2}){3}\s+\d+", row), row
