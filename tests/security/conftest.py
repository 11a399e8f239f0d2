"""The security base and the other folders' RBAC, rendered with real kustomize."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gitops.render import render
from gitops.repository import entry_points, repo_root

ROOT = repo_root(Path(__file__))


@pytest.fixture(scope="session")
def security() -> list[dict[str, Any]]:
    return render(ROOT / "base" / "security", ROOT)[1]


@pytest.fixture(scope="session")
def everything() -> list[dict[str, Any]]:
    """Every object of every entry point (what Argo CD syncs)."""
    return [obj for directory in entry_points(ROOT) for obj in render(directory, ROOT)[1]]


@pytest.fixture(scope="session")
def environment_namespaces(everything: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """The service's environments: each Namespace labelled gitops/environment, by name, with its labels
    (base/security/environments/)."""
    return {
        o["metadata"]["name"]: o["metadata"]["labels"]
        for o in everything
        if o["kind"] == "Namespace" and "gitops/environment" in o["metadata"].get("labels", {})
    }
