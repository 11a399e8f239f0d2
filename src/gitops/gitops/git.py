"""The few git operations the tooling needs, run with the real git command."""

from __future__ import annotations

import shutil
import subprocess
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
