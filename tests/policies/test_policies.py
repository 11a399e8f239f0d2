"""Every policy denies an object that breaks it, and only it, with its own message; compliant objects, the
repository's rendered manifests and objects outside a binding's scope pass."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops.policy_check import PolicyCheckResult, load_policies, run_policy_check
from gitops.render import render
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
GITOPS = str(Path(sys.executable).with_name("gitops"))
DIGEST = "@sha256:" + "ab" * 32
PROD, DEV = "microservice-demo-prod", "microservice-demo-dev"


def _container(obj: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = obj["spec"]["template"]["spec"]["containers"][0]
    return container


def _ingress() -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web", "app.kubernetes.io/part-of": "x"}},
        "spec": {"defaultBackend": {"service": {"name": "microservice-demo", "port": {"number": 80}}}},
    }


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = obj
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[last] = value

    return mutate


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = obj
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        del target[last]

    return mutate


CONTAINER = "spec.template.spec.containers.0"
# policy -> (kind of the compliant object, how to break it, words of the message expected)
BREAKERS: dict[str, tuple[str, Callable[[dict[str, Any]], None], str]] = {
    "trusted-registries": (
        "Deployment", _set(f"{CONTAINER}.image", "docker.io/library/nginx:1.27" + DIGEST), "not from a trusted registry"
    ),
    "no-latest-or-untagged-images": (
        "Deployment", _set(f"{CONTAINER}.image", "ghcr.io/your-org/microservice-demo:latest" + DIGEST), "tag latest"
    ),
    "images-pinned-by-digest": (
        "Deployment", _set(f"{CONTAINER}.image", "ghcr.io/your-org/microservice-demo:0.1.0"), "without a digest"
    ),
    "resources-required": ("Deployment", _delete(f"{CONTAINER}.resources.limits.cpu"), "resources.requests or"),
    "probes-required": ("Deployment", _delete(f"{CONTAINER}.livenessProbe"), "needs a readinessProbe"),
    "read-only-root-filesystem": (
        "Deployment", _set(f"{CONTAINER}.securityContext.readOnlyRootFilesystem", False), "readOnlyRootFilesystem"
    ),
    "non-root-no-privilege-escalation": (
        "Deployment", _set(f"{CONTAINER}.securityContext.allowPrivilegeEscalation", True), "must run as non-root"
    ),
    "required-labels": ("Deployment", _delete("metadata.labels.app.kubernetes.io/part-of"), "lacks the label"),
    "service-type-cluster-ip": ("Service", _set("spec.type", "NodePort"), "has type NodePort"),
    "no-ingress": ("Ingress", lambda obj: None, "is not allowed here"),
    "httproute-platform-gateway": ("HTTPRoute", _set("spec.parentRefs.0.name", "private"), 'attaches to "private"'),
    "argocd-application-project": ("Application", _set("spec.project", "default"), 'uses the project "default"'),
}  # fmt: skip
DEV_WARNS = {"images-pinned-by-digest", "resources-required", "probes-required", "required-labels"}


def _broken(compliant: Any, policy: str, namespace: str) -> dict[str, Any]:
    kind, mutate, _ = BREAKERS[policy]
    obj = _ingress() if kind == "Ingress" else compliant(kind)
    if kind == "Deployment" and policy == "required-labels":
        obj["metadata"]["labels"].pop("app.kubernetes.io/part-of")
    else:
        mutate(obj)
    obj["metadata"]["namespace"] = "argocd" if kind == "Application" else namespace
    return obj


# Policies whose breaking cases need objects built from other folders, in a test file of their own.
BROKEN_ELSEWHERE = {"tekton-runs-use-this-repositorys-tasks": "tests/policies/test_tekton_runs.py"}


def test_every_policy_has_a_breaking_case() -> None:
    assert set(BREAKERS) | set(BROKEN_ELSEWHERE) == set(load_policies(ROOT).policies)
    assert all((ROOT / path).is_file() for path in BROKEN_ELSEWHERE.values())


def test_the_repository_passes_every_policy_without_a_warning() -> None:
    result = run_policy_check(ROOT)
    assert result.decisions == []
    assert result.objects > 100
    assert set(result.sources) >= {"overlays/dev", "overlays/staging", "overlays/prod", "argocd/root"}


@pytest.mark.parametrize("policy", sorted(BREAKERS))
def test_an_object_breaking_one_policy_is_denied_by_it_alone(
    policy: str, compliant: Any, judge: Callable[..., PolicyCheckResult]
) -> None:
    result = judge(_broken(compliant, policy, PROD))
    assert [(d.policy, d.actions) for d in result.decisions] == [(policy, ("Deny", "Audit"))]
    assert BREAKERS[policy][2] in result.decisions[0].message
    assert not result.ok


@pytest.mark.parametrize("kind", ["Deployment", "Service", "HTTPRoute", "Application"])
def test_compliant_objects_pass(kind: str, compliant: Any, judge: Callable[..., PolicyCheckResult]) -> None:
    obj = compliant(kind, "argocd" if kind == "Application" else PROD)
    assert judge(obj).decisions == []


@pytest.mark.parametrize("policy", sorted(p for p, (kind, _, _) in BREAKERS.items() if kind != "Application"))
def test_dev_warns_where_staging_and_prod_deny(
    policy: str, compliant: Any, judge: Callable[..., PolicyCheckResult]
) -> None:
    result = judge(_broken(compliant, policy, DEV))
    (decision,) = result.decisions
    if policy in DEV_WARNS:
        assert decision.actions == ("Warn", "Audit")
        assert result.ok, "a warning does not fail the check"
    else:
        assert decision.actions == ("Deny", "Audit")


# The exposure policies, bound in every namespace (a binding without namespaceSelector): a way into the cluster is one
# wherever it is made.
EVERYWHERE = {"service-type-cluster-ip", "no-ingress", "httproute-platform-gateway"}


def test_objects_outside_the_bindings_scope_are_not_judged(
    compliant: Any, judge: Callable[..., PolicyCheckResult]
) -> None:
    outside = [_broken(compliant, policy, "some-other-team") for policy in sorted(BREAKERS) if policy not in EVERYWHERE]
    outside = [o for o in outside if o["kind"] != "Application"]
    application = _broken(compliant, "argocd-application-project", PROD)
    application["metadata"]["namespace"] = "some-other-team"
    assert judge(*outside, application).decisions == []
    everywhere = [_broken(compliant, policy, "some-other-team") for policy in sorted(EVERYWHERE)]
    assert sorted(d.policy for d in judge(*everywhere).decisions) == sorted(EVERYWHERE)


def test_the_policies_bound_everywhere_are_the_exposure_policies() -> None:
    """Every namespace but kube-system, the provider's (its add-ons manage their own Services there)."""
    everywhere = {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                        "values": ["kube-system"]}]}  # fmt: skip
    bound = {b.policy for b in load_policies(ROOT).bindings if b.match_resources.get("namespaceSelector") == everywhere}
    assert bound == EVERYWHERE


def test_a_cluster_namespace_label_decides_not_the_name_alone(judge: Callable[..., PolicyCheckResult]) -> None:
    """The bindings select by kubernetes.io/metadata.name, which the API server sets on every namespace; an input's
    own Namespace object with a misleading label does not move an object out of scope."""
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": PROD, "labels": {"kubernetes.io/metadata.name": "elsewhere"}},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "s",
            "namespace": PROD,
            "labels": {"app.kubernetes.io/name": "s", "app.kubernetes.io/part-of": "p"},
        },
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
    }
    assert [d.policy for d in judge(namespace, service).decisions] == ["service-type-cluster-ip"]


def test_the_trusted_registry_is_the_one_in_the_settings_file() -> None:
    """One home: settings/site.yaml's imageRegistry, which the rendered policy reads (and set-image runs it)."""
    site = yaml.safe_load((ROOT / "settings" / "site.yaml").read_text())["data"]["imageRegistry"]
    (policy,) = [
        o
        for o in render(ROOT / "policies", ROOT)[1]
        if o["kind"] == "ValidatingAdmissionPolicy" and o["metadata"]["name"] == "trusted-registries"
    ]
    (trusted,) = [v["expression"] for v in policy["spec"]["variables"] if v["name"] == "trusted"]
    assert yaml.safe_load(trusted) == [f"{site}/"]


def test_every_policy_fails_closed_and_explains_itself() -> None:
    for obj in render(ROOT / "policies", ROOT)[1]:
        if obj["kind"] == "ValidatingAdmissionPolicy":
            assert obj["spec"]["failurePolicy"] == "Fail", obj["metadata"]["name"]
            for validation in obj["spec"]["validations"]:
                assert validation.get("messageExpression"), obj["metadata"]["name"]
                assert validation.get("reason") in {"Forbidden", "Invalid"}, obj["metadata"]["name"]


def test_the_command_prints_file_object_policy_and_message_and_exits_1(compliant: Any, tmp_path: Path) -> None:
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(_broken(compliant, "probes-required", PROD)))
    result = subprocess.run([GITOPS, "policy-check", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{path}: Deployment/{PROD}/microservice-demo: probes-required: container ")
    assert first.endswith("[Deny, Audit]")
    assert result.stdout.splitlines()[-1].endswith("1 denied")


def test_the_command_names_a_file_that_is_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("kind: [")
    result = subprocess.run([GITOPS, "policy-check", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert str(path) in result.stderr and "not valid YAML" in result.stderr
