"""The bootstrap on an empty cluster, walked wave by wave as Argo CD syncs it (gitops.bootstrap has the rules and
the Argo CD source each one models; `gitops bootstrap-check` runs it). The first tests are the whole repository;
the others break one thing each and show the walk reports it, so that no rule is a check that cannot fail."""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gitops.bootstrap import Bootstrap, Problem, chart_entries, secrets_by_hand
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
GITOPS = ROOT / ".venv" / "bin" / "gitops"


@pytest.fixture(scope="module")
def pristine() -> Bootstrap:
    """The walk over the root's children and the Applications its ApplicationSets generate."""
    return Bootstrap(ROOT)


@pytest.fixture
def bootstrap(pristine: Bootstrap) -> Iterator[Bootstrap]:
    """A copy each test may break: the renders are shared, the objects copied."""
    yield copy.deepcopy(pristine)


def _child(bootstrap: Bootstrap, name: str) -> Any:
    return next(c for c in bootstrap.children if c.name == name)


def _set_wave(bootstrap: Bootstrap, name: str, wave: int) -> None:
    _child(bootstrap, name).obj["metadata"].setdefault("annotations", {})["argocd.argoproj.io/sync-wave"] = str(wave)


def _reasons(problems: list[Problem], application: str) -> str:
    return "\n".join(str(p) for p in problems if p.application == application)


def test_the_whole_repository_comes_up_on_an_empty_cluster(pristine: Bootstrap) -> None:
    problems = pristine.walk()
    assert problems == [], "\n".join(str(p) for p in problems)


def test_every_chart_application_has_a_contract_and_every_contract_an_application(pristine: Bootstrap) -> None:
    charts = {c.name for c in pristine.children if not c.objects}
    assert charts, "the root renders the chart Applications"
    assert charts == set(pristine.contracts)


@pytest.mark.parametrize(
    ("consumer", "provider"),
    [
        ("networking", "envoy-gateway"),  # GatewayClass, Gateway, HTTPRoute
        ("networking", "cert-manager"),  # ClusterIssuer
        ("observability", "prometheus-operator-crds"),  # PrometheusRules
        ("tekton-platform", "tekton-operator"),  # TektonConfig
        ("tekton-ci-cd", "tekton-platform"),  # Pipelines, Tasks, EventListeners: from the TektonConfig
        ("microservice-demo-prod", "vertical-pod-autoscaler"),  # the VPA
    ],
)
def test_a_custom_resource_in_the_same_wave_as_its_crd_fails_the_dry_run(
    bootstrap: Bootstrap, consumer: str, provider: str
) -> None:
    _set_wave(bootstrap, consumer, _child(bootstrap, provider).wave)
    assert "is not served yet and no earlier wave installs its CRD" in _reasons(bootstrap.walk(), consumer)


def test_skip_dry_run_does_not_excuse_a_crd_that_nothing_installed_first(bootstrap: Bootstrap) -> None:
    child = _child(bootstrap, "networking")
    _set_wave(bootstrap, "networking", _child(bootstrap, "envoy-gateway").wave)
    child.obj["spec"]["syncPolicy"].setdefault("syncOptions", []).append("SkipDryRunOnMissingResource=true")
    child.entries = [type(e)(e.kind, e.namespace, e.name, True) for e in child.entries]
    assert "SkipDryRunOnMissingResource only moves the failure" in _reasons(bootstrap.walk(), "networking")


@pytest.mark.parametrize(
    ("chart", "change", "expected"),
    [
        # kube-prometheus-stack's defaults: Services and ServiceMonitors for the control plane in kube-system.
        ("kube-prometheus-stack", lambda r: r["namespaces"].append("kube-system"), "'kube-system' is not a dest"),
        # cert-manager's default leader-election Role and RoleBinding.
        ("cert-manager", lambda r: r["namespaces"].append("kube-system"), "'kube-system' is not a dest"),
        # Trivy Operator's default compliance specs.
        ("trivy-operator", lambda r: r["clusterScoped"].append("ClusterComplianceReport.aquasecurity.github.io"),
         "ClusterComplianceReport.aquasecurity.github.io is not in clusterResourceWhitelist"),
    ],
)  # fmt: skip
def test_an_object_the_project_refuses_fails_the_sync(
    bootstrap: Bootstrap, chart: str, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    child = _child(bootstrap, chart)
    assert child.contract is not None
    change(child.contract.renders)
    child.entries = chart_entries(child.contract)
    assert expected in _reasons(bootstrap.walk(), chart)


def test_an_application_before_its_namespace_fails(bootstrap: Bootstrap) -> None:
    _set_wave(bootstrap, "kube-prometheus-stack", _child(bootstrap, "security").wave)
    assert "the namespace 'observability' does not exist yet" in _reasons(bootstrap.walk(), "kube-prometheus-stack")


def test_without_the_health_check_in_the_bootstrap_the_waves_do_not_wait(bootstrap: Bootstrap) -> None:
    (config,) = [o for o in bootstrap.bootstrap_objects if o["metadata"]["name"] == "argocd-cm"]
    del config["data"]["resource.customizations.health.argoproj.io_Application"]
    assert "the bootstrap does not apply the Application health check" in _reasons(bootstrap.walk(), "root")


def test_without_the_tekton_config_health_check_ci_cd_would_not_wait(bootstrap: Bootstrap) -> None:
    (config,) = [o for o in bootstrap.bootstrap_objects if o["metadata"]["name"] == "argocd-cm"]
    del config["data"]["resource.customizations.health.operator.tekton.dev_TektonConfig"]
    assert "no health check for TektonConfig.operator.tekton.dev" in _reasons(bootstrap.walk(), "tekton-platform")


def test_a_secret_a_chart_mounts_must_exist_before_its_wave_ends(bootstrap: Bootstrap) -> None:
    bootstrap.secrets_by_hand.discard(("observability", "grafana-admin"))
    reasons = _reasons(bootstrap.walk(), "kube-prometheus-stack")
    assert "Secret observability/grafana-admin: the chart mounts it" in reasons


def test_the_stack_after_the_secret_its_alertmanager_mounts(bootstrap: Bootstrap) -> None:
    _set_wave(bootstrap, "kube-prometheus-stack", _child(bootstrap, "observability").wave - 1)
    assert "Secret observability/alertmanager-config" in _reasons(bootstrap.walk(), "kube-prometheus-stack")


def test_the_secrets_created_by_hand_are_documented_in_the_bootstrap_steps() -> None:
    steps = (ROOT / "docs" / "syncing.md").read_text()
    for namespace, name in secrets_by_hand(ROOT):
        assert f"`{name}`" in steps and f"`{namespace}`" in steps, name


@pytest.mark.process
def test_gitops_bootstrap_check_names_the_wave_the_application_its_file_the_object_and_why(tmp_path: Path) -> None:
    ok = subprocess.run([str(GITOPS), "bootstrap-check"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "it comes up" in ok.stderr
    scratch = tmp_path / "repo"
    shutil.copytree(ROOT, scratch, ignore=shutil.ignore_patterns(".venv", ".tools", "node_modules", ".cache"))
    application = scratch / "argocd" / "root" / "applications" / "networking.application.yaml"
    application.write_text(application.read_text().replace('sync-wave: "-5"', 'sync-wave: "-6"'))
    broken = subprocess.run([str(GITOPS), "bootstrap-check"], cwd=scratch, capture_output=True, text=True, check=False)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert (
        "wave -6, networking (base/networking): GatewayClass.gateway.networking.k8s.io "
        "envoy-gateway: GatewayClass.gateway.networking.k8s.io is not served yet"  # cluster-scoped: no namespace
    ) in broken.stdout
