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
    """A bare remote whose main holds this repository's manifests and tooling settings."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "--quiet", str(bare), str(seed))
    for folder in ("base", "components", "overlays", "policies"):
        shutil.copytree(ROOT / folder, seed / folder)
    shutil.copy(ROOT / "pyproject.toml", seed / "pyproject.toml")
    shutil.copy(ROOT / ".trivyignore.yaml", seed / ".trivyignore.yaml")
    git(seed, "add", "-A")
    git(seed, "commit", "--quiet", "-m", "initial manifests")
    git(seed, "push", "--quiet", "origin", "HEAD:main")
    return bare
