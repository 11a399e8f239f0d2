"""An environment is a folder: overlays/<env>/ for the service and base/security/environments/<env>/ for what the
platform keeps in its namespace. Everything else reaches an environment by the Namespace's labels
(gitops/environment, gitops/admission), so these tests check the labels, who can set them, and that every policy
covers every environment the overlays name. tests/test_add_an_environment.py adds one and runs all of this again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops.admission import selects
from gitops.layout import environments
from gitops.policy_check import load_policies
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
ENVIRONMENTS = ROOT / "base" / "security" / "environments"


def _overlay_namespace(env: str) -> str:
    kustomization = yaml.safe_load((ROOT / "overlays" / env / "kustomization.yaml").read_text())
    namespace: str = kustomization["namespace"]
    return namespace


def test_each_overlay_has_its_platform_folder_and_nothing_else_has_one() -> None:
    listed = yaml.safe_load((ENVIRONMENTS / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == environments(ROOT)
    assert sorted(p.name for p in ENVIRONMENTS.iterdir() if p.is_dir()) == environments(ROOT)


def test_each_environment_namespace_is_labelled_and_restricted(
    environment_namespaces: dict[str, dict[str, str]],
) -> None:
    namespaces = environment_namespaces
    assert set(namespaces) == {_overlay_namespace(env) for env in environments(ROOT)}
    for env in environments(ROOT):
        labels = namespaces[_overlay_namespace(env)]
        assert labels["gitops/environment"] == env
        assert labels["gitops/admission"] in ("enforce", "warn"), env
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted", env
    assert [n for n, labels in namespaces.items() if labels["gitops/admission"] == "warn"] == ["microservice-demo-dev"]


def test_only_the_platform_security_application_labels_environments(everything: list[dict[str, Any]]) -> None:
    """The labels decide which policies apply: only base/security (synced by the platform project) renders a
    Namespace, and the service's project may create none (its clusterResourceWhitelist is empty). Nobody this
    repository binds may write a Namespace (tests/security/test_rbac.py)."""
    namespaces = [o for o in everything if o["kind"] == "Namespace"]
    assert {o["metadata"]["labels"]["app.kubernetes.io/part-of"] for o in namespaces} == {"platform-security"}
    project = yaml.safe_load((ROOT / "argocd" / "projects" / "microservice-demo.appproject.yaml").read_text())
    assert project["spec"]["clusterResourceWhitelist"] == []
    everyone_else = [o for o in everything if o.get("metadata", {}).get("labels", {}).get("gitops/environment")]
    assert {o["metadata"]["labels"]["app.kubernetes.io/part-of"] for o in everyone_else} == {"platform-security"}


def _workload_policies() -> dict[str, list[Any]]:
    """Policy name -> its bindings, for the policies bound by the environment labels."""
    policies: dict[str, list[Any]] = {}
    for binding in load_policies(ROOT).bindings:
        selector = binding.match_resources.get("namespaceSelector") or {}
        if any(e["key"].startswith("gitops/") for e in selector.get("matchExpressions", [])):
            policies.setdefault(binding.policy, []).append(binding)
    return policies


@pytest.mark.parametrize("development", [True, False], ids=["development", "enforced"])
def test_every_workload_policy_judges_every_environment(
    environment_namespaces: dict[str, dict[str, str]], development: bool
) -> None:
    """Refused in every environment but a development one, where some only warn; and a namespace labelled as an
    environment but without gitops/admission is refused (the label's absence must not open a gap)."""
    policies = _workload_policies()
    assert len(policies) == 8
    namespaces = {**environment_namespaces, "unlabelled-admission": {"gitops/environment": "unlabelled"}}
    for name, labels in namespaces.items():
        if (labels.get("gitops/admission") == "warn") != development:
            continue
        for policy, bindings in policies.items():
            actions = {
                action
                for binding in bindings
                if selects(binding.match_resources["namespaceSelector"], labels)
                for action in binding.actions
            }
            assert "Deny" in actions or (development and "Warn" in actions), (policy, name, actions)
    assert not any(
        selects(b.match_resources["namespaceSelector"], {"kubernetes.io/metadata.name": "observability"})
        for bindings in policies.values()
        for b in bindings
    ), "a platform namespace is judged by the service's workload policies"
