"""The repository documents itself: no file cites documents that live outside it, and every
``docs/*.md`` reference (with its ``#section``) names a file and a heading that exist."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

# Citations of texts kept outside the repository. Spelled in pieces so this file does not match itself.
OUTSIDE_CITATIONS = [
    re.compile("spec" + r"\s*\u00a7", re.IGNORECASE),  # a section of the reference's spec
    re.compile("DESIGN" + r"(\.md|\s*\u00a7)"),  # the design notes, by file or section
    re.compile(re.escape(".." + "/shared")),  # the folder beside the repository
    re.compile(r"(?<![\w-])" + "reference" + "/"),  # the reference's texts, by path
    re.compile("performance" + "-notes"),  # the measurements kept beside them
]
DOC_LINK = re.compile(r"docs/([A-Za-z0-9_.-]+\.md)(?:#([A-Za-z0-9_-]+))?")
MARKDOWN_LINK = re.compile(r"\]\(([A-Za-z0-9_.-]*\.md)?(?:#([A-Za-z0-9_-]+))?\)")


def repo_files() -> list[Path]:
    """Tracked files plus new ones not ignored: what a commit of this tree would hold."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=ROOT, capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the file list comes from git")
    names = sorted({n for n in listed.stdout.decode().split("\0") if n})
    return [ROOT / n for n in names if (ROOT / n).is_file()]


def text_of(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    found: set[str] = set()
    in_fence = False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and (m := re.match(r"#{1,6}\s+(.*)", line)):
            found.add(slug(m.group(1)))
    return found


def test_no_file_cites_documents_outside_the_repository() -> None:
    offenders = []
    for path in repo_files():
        text = text_of(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if any(p.search(line) for p in OUTSIDE_CITATIONS):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "cite docs/ instead:\n" + "\n".join(offenders)


def test_the_docs_exist_and_say_what_the_reference_is() -> None:
    for name in ["README.md", "architecture.md", "snapshot-format.md", "routing.md", "publish-protocol.md"]:
        assert (DOCS / name).is_file(), f"docs/{name} is missing"
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    assert "shardyfusion" in index and "the reference" in index.lower()


def test_every_docs_reference_names_an_existing_file_and_section() -> None:
    broken = []
    checked = 0
    for path in repo_files():
        text = text_of(path)
        if text is None:
            continue
        in_docs = path.parent == DOCS
        for number, line in enumerate(text.splitlines(), 1):
            refs = [(DOCS / m.group(1), m.group(2)) for m in DOC_LINK.finditer(line)]
            if in_docs:  # links between the docs are relative: (routing.md#cel), (#manifest)
                refs += [(DOCS / m.group(1) if m.group(1) else path, m.group(2))
                         for m in MARKDOWN_LINK.finditer(line) if m.group(1) or m.group(2)]
            for target, section in refs:
                checked += 1
                where = f"{path.relative_to(ROOT)}:{number}"
                if not target.is_file():
                    broken.append(f"{where}: no file {target.relative_to(ROOT)}")
                elif section and section not in anchors(target):
                    broken.append(f"{where}: no section #{section} in {target.relative_to(ROOT)}")
    assert not broken, "\n".join(broken)
    assert checked > 20, f"only {checked} docs/ references found: the scan is not reading the sources"
