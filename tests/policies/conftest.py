"""The admission policies, judged by `gitops policy-check` against the repository and against objects that break
exactly one policy each."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops.policy_check import PolicyCheckResult, run_policy_check
from gitops.render import render
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))


class Compliant:
    """Objects that pass every policy, taken from what the repository really deploys."""

    def __init__(self) -> None:
        prod = render(ROOT / "overlays" / "prod", ROOT)[1]
        root = render(ROOT / "argocd" / "root", ROOT)[1]
        networking = render(ROOT / "base" / "networking", ROOT)[1]
        deployment = next(o for o in prod if o["kind"] == "Deployment")
        self._objects = {
            "Deployment": deployment,
            "Service": next(o for o in prod if o["kind"] == "Service"),
            "HTTPRoute": next(o for o in prod if o["kind"] == "HTTPRoute"),
            "Application": next(o for o in root if o["kind"] == "Application"),
            # The platform's Gateway, envoy-gateway-system/public.
            "Gateway": next(o for o in networking if o["kind"] == "Gateway"),
            # A bare Pod: the Deployment's pod template with the Deployment's labels, and no owner.
            "Pod": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "microservice-demo-bare",
                    "namespace": deployment["metadata"]["namespace"],
                    "labels": deployment["metadata"]["labels"],
                },
                "spec": deployment["spec"]["template"]["spec"],
            },
        }

    def __call__(self, kind: str, namespace: str | None = None) -> dict[str, Any]:
        obj = copy.deepcopy(self._objects[kind])
        if namespace is not None:
            obj["metadata"]["namespace"] = namespace
        return obj


@pytest.fixture(scope="session")
def compliant() -> Compliant:
    return Compliant()


@pytest.fixture
def judge(tmp_path: Path) -> Callable[..., PolicyCheckResult]:
    """Write the objects to a file and run the policy check on it, as `gitops policy-check FILE` does."""

    def run(*objects: dict[str, Any]) -> PolicyCheckResult:
        path = tmp_path / "manifests.yaml"
        path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
        return run_policy_check(ROOT, [path])

    return run
