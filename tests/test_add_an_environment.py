"""Adds `qa` between staging and prod exactly as docs/add-an-environment.md says (its shell block, run by bash on a
copy of the repository), then shows that everything an environment needs covers it: the admission policies, its
quota and limit range, the network rules, the role bindings, the Gateway's listener, its Argo CD Application and the
promotion order; that the repository's own checks pass on the copy; and that the tests which read the list of
environments from overlays/ pass there too."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops.admission import selects
from gitops.layout import environments
from gitops.policy_check import load_policies
from gitops.promotion_order import PromotionOrder
from gitops.render import render
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
RECIPE = ROOT / "docs" / "add-an-environment.md"
GITOPS = str(Path(sys.executable).with_name("gitops"))
QA = "microservice-demo-qa"
# The tests that take the environments from overlays/ (each reads the checkout it sits in).
ENVIRONMENT_TESTS = [
    "tests/security/test_environments.py",
    "tests/security/test_quotas.py",
    "tests/security/test_rbac.py",
    "tests/security/test_network.py",
    "tests/overlays/test_consistency.py",
    "tests/argocd/test_applications.py",
]


def _recipe() -> str:
    (block,) = re.findall(r"^```sh\n(.*?)^```$", RECIPE.read_text(), re.S | re.M)
    return block


@pytest.fixture(scope="module")
def with_qa(tmp_path_factory: pytest.TempPathFactory, copy_repository: Callable[[Path], Path]) -> Path:
    root = copy_repository(tmp_path_factory.mktemp("with-qa"))
    subprocess.run(["bash", "-euo", "pipefail", "-c", _recipe()], cwd=root, check=True)
    return root


@pytest.fixture(scope="module")
def security(with_qa: Path) -> list[dict[str, Any]]:
    return render(with_qa / "base" / "security", with_qa)[1]


@pytest.fixture(scope="module")
def qa_labels(security: list[dict[str, Any]]) -> dict[str, str]:
    """qa's Namespace labels, as the API server has them (it adds kubernetes.io/metadata.name)."""
    (namespace,) = [o for o in security if o["kind"] == "Namespace" and o["metadata"]["name"] == QA]
    return {**namespace["metadata"]["labels"], "kubernetes.io/metadata.name": QA}


def _in_qa(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind and o["metadata"].get("namespace") == QA}


def test_the_recipe_puts_qa_between_staging_and_prod(with_qa: Path) -> None:
    assert environments(with_qa) == sorted([*environments(ROOT), "qa"])
    order = PromotionOrder.read(with_qa)
    assert order.back("prod") == ["prod", "qa", "staging", "dev"]
    assert order.targets("staging") == ["qa"]
    overlay = (with_qa / "overlays" / "qa" / "kustomization.yaml").read_text()
    assert re.findall(r".*\bstaging.*", overlay) == ["    gitops/promoted-from: staging"], "a name left from the copy"
    for file in (with_qa / "base" / "security" / "environments" / "qa").iterdir():
        assert "staging" not in file.read_text(), file.name


def test_qa_has_its_namespace_quota_limit_range_and_role_bindings(
    with_qa: Path, security: list[dict[str, Any]], qa_labels: dict[str, str]
) -> None:
    assert (qa_labels["gitops/environment"], qa_labels["gitops/admission"]) == ("qa", "enforce")
    assert qa_labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert set(_in_qa(security, "ResourceQuota")) == set(_in_qa(security, "LimitRange")) == {"microservice-demo"}
    site = yaml.safe_load((with_qa / "settings" / "site.yaml").read_text())["data"]
    bindings = {name: {s["name"] for s in b["subjects"]} for name, b in _in_qa(security, "RoleBinding").items()}
    assert bindings == {
        "platform:namespace-reader": {site["groupDevelopers"], site["groupQaTesters"], site["groupServiceOwners"]},
        "platform:diagnose": {site["groupPlatformSre"], site["groupServiceOwners"]},
    }


def test_every_workload_policy_refuses_in_qa(with_qa: Path, qa_labels: dict[str, str]) -> None:
    refused = {
        binding.policy
        for binding in load_policies(with_qa).bindings
        if "Deny" in binding.actions and selects(binding.match_resources.get("namespaceSelector"), qa_labels)
    }
    everywhere = {"service-type-cluster-ip", "no-ingress", "httproute-platform-gateway"}
    workload = {
        "trusted-registries", "no-latest-or-untagged-images", "images-pinned-by-digest", "resources-required",
        "probes-required", "read-only-root-filesystem", "non-root-no-privilege-escalation", "required-labels",
    }  # fmt: skip
    assert refused == workload | everywhere


def test_the_network_rules_admit_qa_where_they_admit_the_other_environments(
    with_qa: Path, security: list[dict[str, Any]], qa_labels: dict[str, str]
) -> None:
    """Each NetworkPolicy peer that selects an environment by its label selects qa's namespace too (what the
    peers allow, port by port, tests/security/test_network.py computes on this copy)."""
    objects = [*render(with_qa / "base" / "observability", with_qa)[1], *security]
    peers = {
        o["metadata"]["name"]: selects(peer["namespaceSelector"], qa_labels)
        for o in objects
        if o["kind"] == "NetworkPolicy"
        for rule in [*o["spec"].get("ingress", []), *o["spec"].get("egress", [])]
        for peer in rule.get("from", []) + rule.get("to", [])
        if any(e["key"] == "gitops/environment" for e in peer.get("namespaceSelector", {}).get("matchExpressions", []))
    }
    assert peers == {
        "alloy-allow-otlp-from-service": True,
        "prometheus-allow-scrape": True,
        "allow-gateway-traffic": True,
    }


def test_the_gateway_has_qas_listener_for_its_host(with_qa: Path) -> None:
    site = yaml.safe_load((with_qa / "settings" / "site.yaml").read_text())["data"]
    (gateway,) = [o for o in render(with_qa / "base" / "networking", with_qa)[1] if o["kind"] == "Gateway"]
    (listener,) = [item for item in gateway["spec"]["listeners"] if item["name"] == "https-qa"]
    assert listener["hostname"] == site["qaHost"]
    assert listener["allowedRoutes"]["namespaces"]["selector"] == {"matchLabels": {"gitops/environment": "qa"}}
    (route,) = [o for o in render(with_qa / "overlays" / "qa", with_qa)[1] if o["kind"] == "HTTPRoute"]
    assert route["metadata"]["namespace"] == QA
    assert route["spec"]["hostnames"] == [site["qaHost"]]
    assert route["spec"]["parentRefs"][0]["sectionName"] == "https-qa"


@pytest.mark.process
@pytest.mark.parametrize("command", [["check", "--no-scan"], ["policy-check"], ["bootstrap-check"]], ids=" ".join)
def test_the_repositorys_checks_pass_with_qa(with_qa: Path, command: list[str]) -> None:
    """Valid manifests, admitted by the admission policies, and a platform that comes up wave by wave with qa's
    Application (the ApplicationSet's, in its wave) syncing into the namespace the security folder creates."""
    result = subprocess.run([GITOPS, *command], cwd=with_qa, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    if command == ["bootstrap-check"]:
        shipped = subprocess.run([GITOPS, *command], cwd=ROOT, capture_output=True, text=True, check=True)
        counts = [int(re.search(r"(\d+) Applications", r.stdout + r.stderr)[1]) for r in (shipped, result)]  # type: ignore[index]
        assert counts[1] == counts[0] + 1, "qa's Application is walked too"


@pytest.mark.process
def test_the_tests_that_read_the_environments_pass_with_qa(with_qa: Path) -> None:
    """They read the environments from the copy's overlays/, so they check qa as they check the others: the
    Application the ApplicationSet makes for it, its quota and limit range, its role bindings, connectivity."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            *ENVIRONMENT_TESTS,
            "-k",
            "not a_new_overlay_folder and not source_lint",
        ],  # fmt: skip  (one adds qa itself, one needs git)
        cwd=with_qa,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"\[qa\]", subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider", *ENVIRONMENT_TESTS],
        cwd=with_qa, capture_output=True, text=True, check=False,
    ).stdout), "no test was collected for qa"  # fmt: skip
