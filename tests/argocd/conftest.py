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
        self.children = {o["metadata"]["name"]: o for o in self.root_objects if o["kind"] == "Application"}
        # What each Application renders from this repository (the root included).
        self.rendered: dict[str, list[dict[str, Any]]] = {"root": self.root_objects}
        for name, app in self.children.items():
            (source,) = _git_sources(app)
            self.rendered[name] = render(ROOT / source["path"], ROOT)[1]

    def all_applications(self) -> dict[str, dict[str, Any]]:
        """The root, its children, and the Applications the children render (the upstream charts)."""
        apps = {"root": self.root_app, **self.children}
        for objects in self.rendered.values():
            for obj in objects:
                if obj["kind"] == "Application":
                    apps.setdefault(obj["metadata"]["name"], obj)
        return apps

    def root_wave(self, name: str) -> int:
        """The wave in which the root syncs an Application: its own for a child, its parent child's for a chart
        Application that a child renders."""
        if name in self.children:
            return self.wave(self.children[name])
        parent = next(
            child
            for child, objects in self.rendered.items()
            if child != "root" and any(o["kind"] == "Application" and o["metadata"]["name"] == name for o in objects)
        )
        return self.wave(self.children[parent])

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
