"""The Argo CD configuration, rendered with real kustomize: the root, its children, and what each child renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops.render import render
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
REPO_URL = "https://github.com/your-org/microservice-demo.git"


def _git_sources(app: dict[str, Any]) -> list[dict[str, Any]]:
    spec = app["spec"]
    sources = spec.get("sources") or [spec["source"]]
    return [source for source in sources if source.get("repoURL") == REPO_URL]


class ArgoCD:
    def __init__(self) -> None:
        self.bootstrap = render(ROOT / "argocd" / "bootstrap", ROOT)[1]
        self.root_objects = render(ROOT / "argocd" / "root", ROOT)[1]
        self.root_app = next(o for o in self.bootstrap if o["kind"] == "Application")
        self.projects = {o["metadata"]["name"]: o for o in self.root_objects if o["kind"] == "AppProject"}
        self.repo_url = REPO_URL
        # Every Application: the root's children, this repository's folders and the upstream charts alike.
        self.children = {o["metadata"]["name"]: o for o in self.root_objects if o["kind"] == "Application"}
        # What each Application renders from this repository (the root included; the charts render nothing here).
        self.rendered: dict[str, list[dict[str, Any]]] = {"root": self.root_objects}
        for name, app in self.children.items():
            for source in _git_sources(app):
                self.rendered[name] = render(ROOT / source["path"], ROOT)[1]

    def all_applications(self) -> dict[str, dict[str, Any]]:
        """The root and every Application it renders."""
        return {"root": self.root_app, **self.children}

    def charts(self) -> dict[str, dict[str, Any]]:
        """The Applications of upstream charts: no source in this repository."""
        return {name: app for name, app in self.children.items() if not _git_sources(app)}

    @staticmethod
    def wave(obj: dict[str, Any]) -> int:
        return int((obj["metadata"].get("annotations") or {}).get("argocd.argoproj.io/sync-wave", "0"))

    @staticmethod
    def git_sources(app: dict[str, Any]) -> list[dict[str, Any]]:
        return _git_sources(app)


@pytest.fixture(scope="session")
def argocd() -> ArgoCD:
    return ArgoCD()


@pytest.fixture(scope="session")
def notifications() -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "argocd" / "config" / "argocd-notifications-cm.yaml").read_text())
    data: dict[str, Any] = config["data"]
    return data
