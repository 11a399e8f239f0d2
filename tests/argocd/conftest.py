"""The Argo CD configuration, rendered with real kustomize: the root, its children, and what each child renders.
The children include the Applications the root's ApplicationSets generate, as gitops.applicationsets models the
ApplicationSet controller, so that every test here sees the environments' Applications as Argo CD would create them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops.applicationsets import expand
from gitops.bootstrap import wave_of
from gitops.render import render
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
REPO_URL = "https://github.com/your-org/microservice-demo.git"


def _git_sources(app: dict[str, Any]) -> list[dict[str, Any]]:
    spec = app["spec"]
    sources = spec.get("sources") or [spec["source"]]
    return [source for source in sources if source.get("repoURL") == REPO_URL]


class ArgoCD:
    def __init__(self, root: Path = ROOT) -> None:
        self.bootstrap = render(root / "argocd" / "bootstrap", root)[1]
        self.root_objects = render(root / "argocd" / "root", root)[1]
        self.root_app = next(o for o in self.bootstrap if o["kind"] == "Application")
        self.projects = {o["metadata"]["name"]: o for o in self.root_objects if o["kind"] == "AppProject"}
        self.repo_url = REPO_URL
        self.application_sets = {o["metadata"]["name"]: o for o in self.root_objects if o["kind"] == "ApplicationSet"}
        # Every Application: the root's children (this repository's folders and the upstream charts alike) and
        # those its ApplicationSets generate, each with the ApplicationSet that made it.
        self.children = {o["metadata"]["name"]: o for o in self.root_objects if o["kind"] == "Application"}
        self.generated_by: dict[str, dict[str, Any]] = {}
        for appset, app in expand(self.root_objects, root, REPO_URL):
            name = app["metadata"]["name"]
            assert name not in self.children, f"{name} is both an Application of the root and generated"
            self.children[name] = app
            self.generated_by[name] = appset
        # What each Application renders from this repository (the root included; the charts render nothing here).
        self.rendered: dict[str, list[dict[str, Any]]] = {"root": self.root_objects}
        for name, app in self.children.items():
            for source in _git_sources(app):
                self.rendered[name] = render(root / source["path"], root)[1]

    def all_applications(self) -> dict[str, dict[str, Any]]:
        """The root and every Application it renders or its ApplicationSets generate."""
        return {"root": self.root_app, **self.children}

    def charts(self) -> dict[str, dict[str, Any]]:
        """The Applications of upstream charts: no source in this repository."""
        return {name: app for name, app in self.children.items() if not _git_sources(app)}

    def wave(self, obj: dict[str, Any]) -> int:
        """The root's wave that creates the object: a generated Application's is its ApplicationSet's."""
        appset = self.generated_by.get(obj["metadata"]["name"]) if obj["kind"] == "Application" else None
        return wave_of(appset if appset is not None else obj)

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
