"""Real git repositories for the tooling's tests: a bare remote seeded with this repository's manifests."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the tests import their helpers from gitrepos.py

from gitrepos import ROOT, git


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare remote whose main holds this repository as its work tree is: every file git tracks or would track."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "--quiet", str(bare), str(seed))
    for name in git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0"):
        if name and (ROOT / name).is_file():
            (seed / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, seed / name)
    git(seed, "add", "-A")
    git(seed, "commit", "--quiet", "-m", "initial manifests")
    git(seed, "push", "--quiet", "origin", "HEAD:main")
    return bare
