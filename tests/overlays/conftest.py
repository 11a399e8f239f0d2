"""Rendered overlays and platform bases, with real kustomize, once per test session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gitops.layout import environments
from gitops.render import render
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
ENVIRONMENTS = tuple(environments(ROOT))


class Rendered:
    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = objects

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        matches = [obj for obj in self.all(kind) if name is None or obj["metadata"]["name"] == name]
        assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
        return matches[0]

    @property
    def container(self) -> dict[str, Any]:
        (container,) = self.one("Deployment")["spec"]["template"]["spec"]["containers"]
        return container

    @property
    def settings(self) -> dict[str, str]:
        data: dict[str, str] = self.one("ConfigMap")["data"]
        return data


@pytest.fixture(scope="session")
def overlays() -> dict[str, Rendered]:
    return {env: Rendered(render(ROOT / "overlays" / env, ROOT)[1]) for env in ENVIRONMENTS}


@pytest.fixture(scope="session")
def networking() -> Rendered:
    return Rendered(render(ROOT / "base" / "networking", ROOT)[1])
