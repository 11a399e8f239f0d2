"""`gitops rollback`: revert an environment's last promotion, as a branch and a pull request like a promotion.

The last change of ``overlays/<env>/release/kustomization.yaml`` that a promotion (``promote(<env>)``) or, for
dev, the pipeline (``deploy(dev)``) made is reverted with ``git revert``, on a branch ``rollback/<env>-<commit>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gitops.diff import rendered_diff
from gitops.git import branch_exists, git, head, is_clean, on_new_branch
from gitops.images import ImageRef, read_image, release_file
from gitops.promote import PromotionError


@dataclass(frozen=True)
class Rollback:
    environment: str
    reverted: str
    branch: str
    commit: str
    previous: ImageRef
    image: ImageRef
    title: str
    body: str
    pushed: bool = False


def _last_change(root: Path, environment: str) -> tuple[str, str]:
    path = release_file(root, environment).relative_to(root).as_posix()
    prefixes = (f"promote({environment}):", f"deploy({environment}):")
    log = git(root, "log", "--no-merges", "--format=%H%x1f%s", "--", path).stdout.splitlines()
    for line in log:
        sha, subject = line.split("\x1f", 1)
        if subject.startswith(prefixes):
            return sha, subject
    raise PromotionError(f"no promotion of {environment} to roll back: no commit changed {path} that way")


def rollback(root: Path, environment: str, *, push: bool = False, remote: str = "origin") -> Rollback:
    target_file = release_file(root, environment)
    if not is_clean(root):
        raise PromotionError("the work tree has uncommitted changes: commit or stash them before rolling back")
    sha, subject = _last_change(root, environment)
    branch = f"rollback/{environment}-{sha[:12]}"
    if branch_exists(root, branch):
        raise PromotionError(f"branch {branch} already exists: that rollback was prepared before")
    previous = read_image(target_file)
    with on_new_branch(root, branch) as base:
        reverted = git(root, "revert", "--no-edit", sha, check=False)
        if reverted.returncode != 0:
            git(root, "revert", "--abort", check=False)
            raise PromotionError(f"{sha[:12]} ({subject}) does not revert cleanly: {reverted.stderr.strip()}")
        image = read_image(target_file)
        diff = rendered_diff(root, environment, base, branch)
        commit = head(root)
        if push:
            git(root, "push", "--quiet", "--force", remote, f"refs/heads/{branch}")
    title = f"Roll back {environment} to {image.short}"
    body = (
        f"Reverts {sha[:12]} ({subject}). This pull request changes only "
        f"`overlays/{environment}/release/kustomization.yaml`.\n\n"
        f"| | image |\n|---|---|\n| now | `{previous}` |\n| after the rollback | `{image}` |\n\n"
        f"### Rendered change to {environment}\n\n```diff\n{diff}```\n"
    )
    return Rollback(environment, sha, branch, commit, previous, image, title, body, pushed=push)
