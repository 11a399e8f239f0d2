"""The few git operations the tooling needs, run with the real git command."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path


class GitError(Exception):
    """A git command failed; the message is git's own."""


@cache
def _executable() -> str:
    found = shutil.which("git")
    if found is None:
        raise GitError("git is not installed")
    return found


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([_executable(), "-C", str(root), *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {(result.stderr or result.stdout).strip()}")
    return result


def is_clean(root: Path, path: Path | None = None) -> bool:
    """No uncommitted change to tracked files (untracked files, such as build outputs, don't count)."""
    args = ["status", "--porcelain", "--untracked-files=no"] + ([str(path)] if path is not None else [])
    return git(root, *args).stdout.strip() == ""


def head(root: Path) -> str:
    return git(root, "rev-parse", "HEAD").stdout.strip()


def git_bytes(root: Path, *args: str) -> bytes:
    """A git command's raw output (an archive, say)."""
    result = subprocess.run([_executable(), "-C", str(root), *args], capture_output=True, check=False)
    if result.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def return_to(root: Path, branch: str, commit: str) -> None:
    """Check out ``branch`` again, or ``commit`` detached when ``branch`` is "HEAD" (no branch was checked out)."""
    if branch == "HEAD":
        git(root, "switch", "--quiet", "--detach", commit)
    else:
        git(root, "switch", "--quiet", branch)


def branch_exists(root: Path, branch: str) -> bool:
    return git(root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False).returncode == 0


@contextmanager
def on_new_branch(root: Path, branch: str) -> Iterator[str]:
    """Create ``branch`` at HEAD and work on it; afterwards check out again what was checked out before.

    Yields that starting point (a branch name, or a commit when HEAD was detached). If the block raises, the branch
    and everything done on it are removed, so a refusal leaves the repository exactly as it was.
    """
    start = git(root, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
    start_commit = head(root)
    git(root, "switch", "--quiet", "--create", branch)
    try:
        yield start if start != "HEAD" else start_commit
    except BaseException:
        git(root, "reset", "--quiet", "--hard", start_commit)
        return_to(root, start, start_commit)
        git(root, "branch", "--quiet", "--delete", "--force", branch)
        raise
    return_to(root, start, start_commit)
