"""`gitops rollback`: revert an environment's last promotion, as a branch and a pull request like a promotion.

The last change of ``overlays/<env>/release/kustomization.yaml`` that a promotion (``promote(<env>)``) or the pipeline
(``deploy(<env>)``) made is reverted with ``git revert``, on a branch ``rollback/<env>-<commit>``.
"""

from __future__ import annotations

from pathlib import Path

from gitops import commit_messages
from gitops.git import git
from gitops.layout import release_path
from gitops.proposal import Proposal, ProposalError, ReleaseChange, images_table, rendered_change, require_clean


def _last_change(root: Path, environment: str) -> tuple[str, str]:
    path = release_path(environment)
    log = git(root, "log", "--no-merges", "--format=%H%x1f%s", "--", path).stdout.splitlines()
    for line in log:
        sha, subject = line.split("\x1f", 1)
        if commit_messages.changes_release(subject, environment):
            return sha, subject
    raise ProposalError(f"no promotion of {environment} to roll back: no commit changed {path} that way")


def rollback(root: Path, environment: str, *, push: bool = False, remote: str = "origin") -> Proposal:
    change = ReleaseChange(root, environment, "rollback")
    require_clean(root, "rollback")
    sha, subject = _last_change(root, environment)

    def revert() -> None:
        reverted = git(root, "revert", "--no-edit", sha, check=False)
        if reverted.returncode != 0:
            git(root, "revert", "--abort", check=False)
            raise ProposalError(f"{sha[:12]} ({subject}) does not revert cleanly: {reverted.stderr.strip()}")

    branch, _ = change.on_branch(f"rollback/{environment}-{sha[:12]}", revert, push=push, remote=remote)
    body = (
        f"Reverts {sha[:12]} ({subject}). This pull request changes only `{release_path(environment)}`.\n\n"
        f"{images_table(('now', branch.previous), ('after the rollback', branch.image))}\n"
        f"{rendered_change(environment, branch.diff)}"
    )
    return Proposal(branch, f"Roll back {environment} to {branch.image.short}", body)
