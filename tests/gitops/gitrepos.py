"""Helpers for the tooling's tests against real git repositories (imported by the tests and their conftest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gitops.layout import environments
from gitops.promotion_order import PromotionOrder
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
ENVIRONMENTS = environments(ROOT)
# The repository's promotion order, as its overlays declare it: the environment the pipeline sets, the one promoted
# from it, and the one promoted from that (dev, staging, prod).
ORDER = PromotionOrder.read(ROOT)
FIRST, SECOND, THIRD = ORDER.lines()[0]
GITOPS = str(Path(sys.executable).with_name("gitops"))
IMAGE = "ghcr.io/your-org/microservice-demo"
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "pipeline",
    "GIT_AUTHOR_EMAIL": "pipeline@example.com",
    "GIT_COMMITTER_NAME": "pipeline",
    "GIT_COMMITTER_EMAIL": "pipeline@example.com",
}


def digest(n: int) -> str:
    return "sha256:" + (f"{n:x}" * 64 if n < 16 else f"{n:064x}")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=True).stdout


def gitops(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the gitops command as the pipeline would (``env`` adds variables to the git identity)."""
    return subprocess.run(
        [GITOPS, *args],
        cwd=cwd,
        env={**GIT_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def clone(remote: Path, where: Path) -> Path:
    git(where.parent, "clone", "--quiet", "--branch", "main", str(remote), str(where))
    return where
