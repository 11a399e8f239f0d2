"""Namespaces, their Pod Security levels, and a default-deny NetworkPolicy in every one of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitops.layout import environments
from gitops.repository import repo_root
from gitops.schemas import SUPPORTED_KUBERNETES

ROOT = repo_root(Path(__file__))
SERVICE = {f"microservice-demo-{env}" for env in environments(ROOT)}
PLATFORM = {
    "cert-manager",
    "envoy-gateway-system",
    "vpa",
    "observability",
    "ci-cd",
    "security-tools",
    "tekton-operator",
    "tekton-pipelines",  # the Tekton Operator's target namespace: created here, adopted by the operator
    "ci-pull-requests",  # pull requests' checks: untrusted code
    "argocd",  # Argo CD's own, created by its installation and adopted here (never pruned)
}
LEVELS = ["privileged", "baseline", "restricted"]


def _namespaces(security: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {o["metadata"]["name"]: o["metadata"]["labels"] for o in security if o["kind"] == "Namespace"}


def test_the_platform_and_service_namespaces_exist(security: list[dict[str, Any]]) -> None:
    assert set(_namespaces(security)) == SERVICE | PLATFORM


def test_pod_security_levels(security: list[dict[str, Any]]) -> None:
    oldest = f"v{min(SUPPORTED_KUBERNETES, key=lambda v: tuple(map(int, v.split('.'))))}"
    for name, labels in _namespaces(security).items():
        enforce = labels["pod-security.kubernetes.io/enforce"]
        assert labels["pod-security.kubernetes.io/enforce-version"] == oldest, name
        if name in SERVICE:
            assert enforce == "restricted", name
        # warn and audit are never looser than enforce, so what would have to change to tighten it shows up.
        for mode in ("warn", "audit"):
            assert LEVELS.index(labels[f"pod-security.kubernetes.io/{mode}"]) >= LEVELS.index(enforce), (name, mode)


def test_every_exception_to_restricted_says_why(security: list[dict[str, Any]]) -> None:
    documents = (ROOT / "base" / "security" / "namespaces.yaml").read_text().split("\n---\n")
    for document in documents:
        if "enforce: restricted" not in document:
            assert "\n    # " in document, f"no reason next to the level in:\n{document}"


def _denies_all(policy: dict[str, Any]) -> bool:
    spec = policy["spec"]
    return (
        spec["podSelector"] == {}
        and set(spec["policyTypes"]) == {"Ingress", "Egress"}
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def test_every_namespace_denies_all_traffic_by_default(everything: list[dict[str, Any]]) -> None:
    denied = {o["metadata"].get("namespace") for o in everything if o["kind"] == "NetworkPolicy" and _denies_all(o)}
    assert denied >= SERVICE | PLATFORM


def test_every_network_policy_is_in_a_namespace_that_exists(
    everything: list[dict[str, Any]], security: list[dict[str, Any]]
) -> None:
    known = set(_namespaces(security))
    for obj in everything:
        if obj["kind"] == "NetworkPolicy":
            assert obj["metadata"].get("namespace") in known, obj["metadata"]


def test_argo_cds_namespace_is_never_pruned_or_deleted_with_the_application(security: list[dict[str, Any]]) -> None:
    """Deleting or pruning it would delete Argo CD itself."""
    (argocd,) = [o for o in security if o["kind"] == "Namespace" and o["metadata"]["name"] == "argocd"]
    options = argocd["metadata"]["annotations"]["argocd.argoproj.io/sync-options"].split(",")
    assert {"Prune=false", "Delete=false"} <= set(options)
