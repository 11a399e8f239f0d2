"""CODEOWNERS makes a promotion to prod need its owners' review (with branch protection requiring it)."""

from __future__ import annotations

import fnmatch
from pathlib import Path

from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))


def _owners(path: str) -> list[str]:
    """The owners GitHub applies to ``path``: the last matching rule wins."""
    owners: list[str] = []
    for line in (ROOT / ".github" / "CODEOWNERS").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        pattern, *names = line.split()
        if (pattern.endswith("/") and f"/{path}".startswith(pattern)) or fnmatch.fnmatch(f"/{path}", pattern):
            owners = names
    return owners


def test_prod_needs_its_owners() -> None:
    owners = _owners("overlays/prod/release/kustomization.yaml")
    assert owners
    assert all(owner.startswith("@") and "/" in owner for owner in owners), "an owner group (a team), not a person"


def test_dev_and_staging_promotions_need_no_extra_owner() -> None:
    assert _owners("overlays/dev/release/kustomization.yaml") == []
    assert _owners("overlays/staging/release/kustomization.yaml") == []


def test_the_platform_paths_need_the_platform_team() -> None:
    """What builds of main run privileged with push credentials, and what the cluster becomes, needs the platform
    team's review: a pull request that changes them is reviewed by them before it can run with any credential."""
    for path in ("tekton/ci-cd/tasks/run-checks.yaml", "tekton/pull-requests/kustomization.yaml", "scripts/test",
                 ".ci/run", "argocd/root/kustomization.yaml", "base/security/namespaces.yaml",
                 "base/security/environments/prod/kustomization.yaml",
                 "policies/kustomization.yaml", ".github/CODEOWNERS", "tools/scanners/pyproject.toml"):  # fmt: skip
        assert _owners(path) == ["@your-org/platform-team"], path
