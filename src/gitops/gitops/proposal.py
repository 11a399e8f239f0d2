"""What a promotion and a rollback both make: a branch with one commit that changes one environment's release file,
and the pull request that proposes it.

Every refusal leaves the repository as it was: no branch, no commit, a clean tree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from gitops.diff import rendered_diff
from gitops.git import branch_exists, git, head, is_clean, on_new_branch
from gitops.images import ImageRef, read_image
from gitops.layout import release_file

MAX_DIFF_LINES = 400
T = TypeVar("T")


class ProposalError(Exception):
    """A promotion or a rollback that must not happen; the message says why. Nothing was changed."""


@dataclass(frozen=True)
class Branch:
    """The branch made, and what it changes."""

    name: str
    commit: str
    previous: ImageRef
    image: ImageRef
    diff: str  # the rendered change, a unified diff
    pushed: bool


@dataclass(frozen=True)
class Proposal:
    branch: Branch
    title: str
    body: str


def require_clean(root: Path, kind: str) -> None:
    """Where both start: a work tree without uncommitted changes, which is what HEAD says (the overlays included)."""
    if not is_clean(root):
        raise ProposalError(f"the work tree has uncommitted changes: commit or stash them before preparing a {kind}")


@dataclass(frozen=True)
class ReleaseChange:
    """A change to be proposed of an environment's release file: a promotion or a rollback (``kind``, as messages
    name it)."""

    root: Path
    environment: str
    kind: str

    def __post_init__(self) -> None:
        release_file(self.root, self.environment)  # an unknown environment says so before anything is done

    @property
    def release(self) -> Path:
        return release_file(self.root, self.environment)

    def on_branch(self, name: str, change: Callable[[], T], *, push: bool, remote: str) -> tuple[Branch, T]:
        """Make the branch ``name`` from HEAD, let ``change`` commit on it, and (``push``) push it; then check out
        again what was checked out. What ``change`` raises removes the branch."""
        if branch_exists(self.root, name):
            raise ProposalError(f"branch {name} already exists: that {self.kind} was prepared before")
        previous = read_image(self.release)
        with on_new_branch(self.root, name) as base:
            outcome = change()
            image = read_image(self.release)
            diff = rendered_diff(self.root, self.environment, base, name)
            commit = head(self.root)
            if push:
                # The tool's branches are its own: a re-run (say a repeated notification, in a fresh clone) replaces
                # the branch, and --open-pr then updates its pull request instead of opening another.
                git(self.root, "push", "--quiet", "--force", remote, f"refs/heads/{name}")
        return Branch(name, commit, previous, image, diff, pushed=push), outcome


def images_table(before: tuple[str, ImageRef], after: tuple[str, ImageRef]) -> str:
    return "| | image |\n|---|---|\n" + "".join(f"| {label} | `{image}` |\n" for label, image in (before, after))


def rendered_change(environment: str, diff: str) -> str:
    """The body's section with the rendered diff, shortened past MAX_DIFF_LINES lines with a note."""
    lines = diff.splitlines()
    note = (
        f"\n_The diff has {len(lines)} lines; the first {MAX_DIFF_LINES} are shown. "
        f"Run `gitops diff {environment}` for all of it._\n"
        if len(lines) > MAX_DIFF_LINES
        else ""
    )
    shown = "\n".join(lines[:MAX_DIFF_LINES])
    return f"### Rendered change to {environment}\n\n```diff\n{shown}\n```\n{note}"
