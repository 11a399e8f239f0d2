"""The documentation's links lead somewhere: every relative link in README.md and docs/ names a file of the
repository, and a link to a section (`file.md#section`, or a comment pointing to a README section by name) names a
heading that exists. The README stays a page for the first five minutes; the details live in docs/."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# A comment that sends the reader to a README section: (README: "Section") or README's "Section".
README_SECTION = re.compile(r"README(?::|'s) \"([^\"]+)\"")


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "bench").glob("*.md"))]


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but hyphens and underscores dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_anchor(line.lstrip("#")) for line in path.read_text().splitlines() if line.startswith("#")}


def _headings(path: Path) -> set[str]:
    return {line.lstrip("#").strip() for line in path.read_text().splitlines() if line.startswith("#")}


@pytest.mark.parametrize("document", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(document: Path) -> None:
    broken = []
    for target in LINK.findall(document.read_text()):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        destination = (document.parent / file_part).resolve() if file_part else document
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in _anchors(destination):
            broken.append(f"{target}: no such section")
    assert not broken, f"{document.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_link_check_finds_a_broken_link(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\n[b](b.md) [a](a.md#a) [x](a.md#nowhere)\n")
    links = LINK.findall((tmp_path / "a.md").read_text())
    assert links == ["b.md", "a.md#a", "a.md#nowhere"]
    assert not (tmp_path / "b.md").exists()
    assert "a" in _anchors(tmp_path / "a.md") and "nowhere" not in _anchors(tmp_path / "a.md")


def test_every_readme_section_a_file_points_to_exists() -> None:
    """Manifests and scripts send readers to README sections by name; each must be a heading of the README."""
    # Tracked files and new ones not yet added (but not ignored ones): a reference breaks before it is committed.
    listed = ["git", "ls-files", "--cached", "--others", "--exclude-standard"]
    files = subprocess.run(listed, cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    this_file = Path(__file__).resolve().relative_to(ROOT).as_posix()  # its comments show the form, with "Section"
    headings = _headings(ROOT / "README.md")
    missing = [
        f"{name}: {section}"
        for name in files
        if not name.endswith((".lock", ".json")) and name != this_file and (ROOT / name).is_file()
        for section in README_SECTION.findall(re.sub(r"\n\s*#\s*", " ", (ROOT / name).read_text(errors="replace")))
        if section not in headings
    ]
    assert not missing, missing


def test_the_readme_is_under_1200_words() -> None:
    """What this is, the data path, the layout, the two commands, making it yours, the bootstrap, an index of docs/:
    everything else has a page in docs/ (team issue #16)."""
    words = len((ROOT / "README.md").read_text().split())
    assert words < 1200, f"README.md has {words} words: move the details to docs/"


def test_the_package_readme_is_a_page_the_image_build_can_read() -> None:
    """pyproject.toml's readme is the wheel's description; hatchling reads it when the Containerfile builds the wheel,
    so the build context (.containerignore) must admit it and the Containerfile copy it before that build."""
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["readme"]
    assert (ROOT / readme).is_file(), readme
    assert f"!{readme}" in (ROOT / ".containerignore").read_text().splitlines()
    lines = (ROOT / "Containerfile").read_text().splitlines()
    copy = next(i for i, line in enumerate(lines) if line.startswith("COPY ") and readme in line.split()[1:-1])
    wheel = next(i for i, line in enumerate(lines) if "uv sync" in line and "--no-install-project" not in line)
    assert copy < wheel, "the readme must be in the build stage before the project is built"
