"""The app-of-apps: what the root creates, what each child renders, and what its project allows."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
EXPECTED_CHILDREN = {
    "argocd-config",
    "platform-policies",
    "platform-security",
    "platform-networking",
    "platform-autoscaling",
    "platform-tekton",
    "platform-observability",
    "platform-ci-cd",
    "microservice-demo-dev",
    "microservice-demo-staging",
    "microservice-demo-prod",
}
# Kinds that live outside namespaces (the ones this repository and its charts use).
CLUSTER_SCOPED = {
    "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration", "GatewayClass", "ClusterIssuer", "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding", "TektonConfig",
}  # fmt: skip
# Which Application installs the CRDs (or is Argo CD itself, installed before the bootstrap) for each API group.
CRD_PROVIDERS = {
    "argoproj.io": None,  # Argo CD, installed before the bootstrap (README)
    "gateway.networking.k8s.io": "envoy-gateway",
    "cert-manager.io": "cert-manager",
    "autoscaling.k8s.io": "vertical-pod-autoscaler",
    "monitoring.coreos.com": "kube-prometheus-stack",
    # The operator's chart installs operator.tekton.dev; from the TektonConfig the operator installs the rest.
    "operator.tekton.dev": "tekton-operator",
    "tekton.dev": "tekton-operator",
    "triggers.tekton.dev": "tekton-operator",
}
PREEXISTING_NAMESPACES = {"argocd"}  # Argo CD's own, from its installation


def _group(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def _allowed(rules: list[dict[str, str]], group: str, kind: str) -> bool:
    return any(fnmatch.fnmatchcase(group, r["group"]) and fnmatch.fnmatchcase(kind, r["kind"]) for r in rules)


def test_the_bootstrap_is_the_root_and_its_project(argocd: Any) -> None:
    assert sorted((o["kind"], o["metadata"]["name"]) for o in argocd.bootstrap) == [
        ("AppProject", "microservice-demo"),
        ("AppProject", "platform"),
        ("Application", "root"),
    ]
    assert argocd.root_app["spec"]["source"]["path"] == "argocd/root"
    assert "finalizers" not in argocd.root_app["metadata"], "deleting the root must not cascade"


def test_the_root_renders_exactly_the_expected_children(argocd: Any) -> None:
    assert set(argocd.children) == EXPECTED_CHILDREN
    assert set(argocd.projects) == {"platform", "microservice-demo"}


def test_no_application_uses_the_default_project(argocd: Any) -> None:
    for name, app in argocd.all_applications().items():
        assert app["spec"]["project"] in argocd.projects, name


def test_every_child_path_exists_and_renders(argocd: Any) -> None:
    for name, app in argocd.children.items():
        (source,) = argocd.git_sources(app)
        assert (ROOT / source["path"]).is_dir(), name
        assert argocd.rendered[name], f"{name} renders nothing"


def test_one_repository_and_one_revision_everywhere(argocd: Any) -> None:
    sources = [s for app in argocd.all_applications().values() for s in argocd.git_sources(app)]
    assert len(sources) == 1 + len(EXPECTED_CHILDREN)
    assert {(s["repoURL"], s["targetRevision"]) for s in sources} == {
        (argocd.git_sources(argocd.root_app)[0]["repoURL"], "main")
    }


def test_each_project_allows_its_applications_sources_and_destinations(argocd: Any) -> None:
    for name, app in argocd.all_applications().items():
        project = argocd.projects[app["spec"]["project"]]["spec"]
        spec = app["spec"]
        for source in spec.get("sources") or [spec["source"]]:
            assert source["repoURL"] in project["sourceRepos"], f"{name}: {source['repoURL']}"
        destination = spec["destination"]
        assert any(
            d["server"] == destination["server"] and fnmatch.fnmatchcase(destination["namespace"], d["namespace"])
            for d in project["destinations"]
        ), f"{name}: destination {destination['namespace']}"


def test_each_project_allows_every_object_its_children_render(argocd: Any) -> None:
    for name, app in argocd.children.items():
        project = argocd.projects[app["spec"]["project"]]["spec"]
        default_namespace = app["spec"]["destination"]["namespace"]
        for obj in argocd.rendered[name]:
            group, kind = _group(obj["apiVersion"]), obj["kind"]
            where = f"{name}: {kind}/{obj['metadata']['name']}"
            if kind in CLUSTER_SCOPED:
                assert _allowed(project.get("clusterResourceWhitelist") or [], group, kind), where
                continue
            namespace = obj["metadata"].get("namespace", default_namespace)
            assert any(fnmatch.fnmatchcase(namespace, d["namespace"]) for d in project["destinations"]), where
            assert _allowed(project.get("namespaceResourceWhitelist") or [{"group": "*", "kind": "*"}], group, kind), (
                where
            )


def test_the_service_project_allows_no_cluster_scoped_kind(argocd: Any) -> None:
    project = argocd.projects["microservice-demo"]["spec"]
    assert project["clusterResourceWhitelist"] == []
    assert {d["namespace"] for d in project["destinations"]} == {
        f"microservice-demo-{e}" for e in ("dev", "staging", "prod")
    }
    assert project["sourceRepos"] == [argocd.git_sources(argocd.root_app)[0]["repoURL"]]


def test_no_object_is_rendered_by_two_applications(argocd: Any) -> None:
    owner: dict[tuple[str, str, str, str], str] = {}
    for name, objects in argocd.rendered.items():
        default_namespace = "argocd" if name == "root" else argocd.children[name]["spec"]["destination"]["namespace"]
        for obj in objects:
            namespace = "" if obj["kind"] in CLUSTER_SCOPED else obj["metadata"].get("namespace", default_namespace)
            key = (_group(obj["apiVersion"]), obj["kind"], namespace, obj["metadata"]["name"])
            assert key not in owner, f"{key} is rendered by both {owner.get(key)} and {name}"
            owner[key] = name


def test_children_sync_automatically_with_retries_and_the_finalizer(argocd: Any) -> None:
    for name, app in argocd.all_applications().items():
        policy = app["spec"]["syncPolicy"]
        assert policy["automated"] == {"prune": True, "selfHeal": True}, name
        assert policy["retry"]["limit"] >= 3, name
        assert policy["retry"]["backoff"]["factor"] >= 2, name
        if name != "root":
            assert app["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"], name


def test_every_child_refreshes_only_for_its_own_paths(argocd: Any) -> None:
    for name, app in argocd.children.items():
        (source,) = argocd.git_sources(app)
        paths = app["metadata"]["annotations"]["argocd.argoproj.io/manifest-generate-paths"].split(";")
        for path in paths:
            assert (ROOT / source["path"] / path).resolve().is_dir(), f"{name}: {path}"
        kustomization = (ROOT / source["path"] / "kustomization.yaml").read_text()
        for reference in ("../../base/microservice-demo", "../../components"):
            if reference in kustomization:
                assert any(p.rstrip("/") in reference for p in paths), f"{name} misses {reference}"


def test_the_providers_of_every_custom_resource_sync_first(argocd: Any) -> None:
    apps = argocd.all_applications()
    # The wave at which each Application runs, as seen from the root: a chart Application inside a child runs in
    # that child's wave, and before the child's own objects (its own wave inside the child is lower).
    child_of = {
        obj["metadata"]["name"]: child for child, objects in argocd.rendered.items() for obj in objects
        if obj["kind"] == "Application" and child != "root"
    }  # fmt: skip
    for child, objects in argocd.rendered.items():
        if child == "root":
            continue
        for obj in objects:
            group = _group(obj["apiVersion"])
            if "." not in group or (group.endswith(".k8s.io") and group not in CRD_PROVIDERS):
                continue  # built into Kubernetes
            assert group in CRD_PROVIDERS, f"{child}: no known provider for {group}"
            provider = CRD_PROVIDERS[group]
            if provider is None:
                continue
            if child_of.get(provider) == child:  # the provider is a chart inside this same child
                assert argocd.wave(apps[provider]) < argocd.wave(obj), f"{provider} must sync before {obj['kind']}"
            else:
                assert argocd.root_wave(provider) < argocd.wave(argocd.children[child]), f"{provider} before {child}"


def test_every_namespace_a_child_uses_is_created_by_an_earlier_wave(argocd: Any) -> None:
    """By an earlier child, or earlier inside the same child (a chart Application beside its namespace)."""
    created_by = {
        obj["metadata"]["name"]: (child, obj)
        for child, objects in argocd.rendered.items()
        for obj in objects
        if obj["kind"] == "Namespace"
    }
    for name, app in argocd.all_applications().items():
        if name == "root":
            continue
        namespace = app["spec"]["destination"]["namespace"]
        if namespace in PREEXISTING_NAMESPACES:
            continue
        assert namespace in created_by, f"{name} deploys into {namespace}, which nothing creates"
        creator, namespace_object = created_by[namespace]
        if any(o["kind"] == "Application" and o["metadata"]["name"] == name for o in argocd.rendered[creator]):
            assert argocd.wave(namespace_object) < argocd.wave(app), f"{namespace} must exist before {name}"
        else:
            assert argocd.wave(argocd.children[creator]) < argocd.root_wave(name), f"{namespace} before {name}"


def test_argocd_config_comes_first_and_projects_before_everything(argocd: Any) -> None:
    waves = {name: argocd.wave(app) for name, app in argocd.children.items()}
    assert waves["argocd-config"] == min(waves.values())
    assert all(argocd.wave(project) < min(waves.values()) for project in argocd.projects.values())


def test_the_ui_links_and_labels(argocd: Any) -> None:
    for env in ("dev", "staging", "prod"):
        app = argocd.children[f"microservice-demo-{env}"]
        annotations = app["metadata"]["annotations"]
        assert annotations["link.argocd.argoproj.io/service"].startswith("https://")
        assert f"var-namespace=microservice-demo-{env}" in annotations["link.argocd.argoproj.io/dashboard"]
        assert app["metadata"]["labels"] == {"layer": "service", "environment": env}
    notice = [i for i in argocd.children["microservice-demo-prod"]["spec"]["info"] if i["name"] == "Notice"]
    assert notice, "prod carries a notice in the UI"
    assert all(
        app["metadata"]["labels"]["layer"] == "platform"
        for n, app in argocd.children.items()
        if not n.startswith("microservice-demo")
    )


def test_prod_syncs_automatically_only_in_its_window_and_keeps_the_hpa_replicas(argocd: Any) -> None:
    (window,) = argocd.projects["microservice-demo"]["spec"]["syncWindows"]
    assert (window["kind"], window["applications"], window["manualSync"]) == ("allow", ["microservice-demo-prod"], True)
    prod = argocd.children["microservice-demo-prod"]["spec"]
    assert {
        "group": "apps",
        "kind": "Deployment",
        "name": "microservice-demo",
        "jsonPointers": ["/spec/replicas"],
    } in prod["ignoreDifferences"]
    assert "RespectIgnoreDifferences=true" in prod["syncPolicy"]["syncOptions"]


@pytest.fixture(scope="module")
def source_lint_findings(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """argocd-source-lint on a copy of the work tree, committed, whose origin is the repoURL the Applications name."""
    copy = tmp_path_factory.mktemp("source-lint") / "repo"
    shutil.copytree(
        ROOT, copy, ignore=shutil.ignore_patterns(".venv", ".tools", "node_modules", ".cache", "__pycache__")
    )
    # The linter reads the branch, not the work tree: commit the work tree's state (uncommitted changes included).
    git = ["git", "-C", str(copy), "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "--no-verify", "-m", "work tree"], check=True)
    subprocess.run(["git", "-C", str(copy), "remote", "remove", "origin"], capture_output=True, check=False)
    subprocess.run(
        ["git", "-C", str(copy), "remote", "add", "origin", "https://github.com/your-org/microservice-demo.git"],
        check=True,
    )
    linter = ROOT / ".tools" / "scanners" / "bin" / "argocd-source-lint"
    result = subprocess.run([str(linter), "--format", "json", str(copy)], capture_output=True, text=True, check=False)
    assert result.returncode in (0, 1), result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout)["findings"]
    return findings


def test_argocd_source_lint_finds_nothing_to_fix(source_lint_findings: list[dict[str, Any]]) -> None:
    serious = [f for f in source_lint_findings if f["severity"] != "info"]
    assert serious == []
    linted = {f["application"] for f in source_lint_findings if f["application"]}
    assert "envoy-gateway" in linted, "the linter must have read the Applications"
