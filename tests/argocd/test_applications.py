"""The app-of-apps: what the root creates, what each child renders, and what its project allows."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from gitops.admission import CLUSTER_SCOPED
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
# This repository's folders the root syncs; the upstream charts are the other children, each with a contract.
EXPECTED_FOLDERS = {
    "platform-policies": "policies",
    "platform-security": "base/security",
    "platform-networking": "base/networking",
    "platform-tekton": "tekton/platform",
    "platform-observability": "base/observability",
    "platform-ci-cd": "tekton/ci-cd",
    "platform-pull-requests": "tekton/pull-requests",
    "microservice-demo-dev": "overlays/dev",
    "microservice-demo-staging": "overlays/staging",
    "microservice-demo-prod": "overlays/prod",
}


def _group(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def test_the_bootstrap_is_the_root_its_projects_and_argo_cds_configuration(argocd: Any) -> None:
    assert sorted((o["kind"], o["metadata"]["name"]) for o in argocd.bootstrap) == [
        ("AppProject", "microservice-demo"),
        ("AppProject", "platform"),
        ("Application", "root"),
        ("ConfigMap", "argocd-cm"),
        ("ConfigMap", "argocd-notifications-cm"),
    ]
    assert argocd.root_app["spec"]["source"]["path"] == "argocd/root"
    assert "finalizers" not in argocd.root_app["metadata"], "deleting the root must not cascade"


def test_the_root_renders_the_folders_and_the_charts(argocd: Any) -> None:
    charts = argocd.charts()
    folders = {name: argocd.git_sources(app)[0]["path"] for name, app in argocd.children.items() if name not in charts}
    assert folders == EXPECTED_FOLDERS
    assert set(argocd.projects) == {"platform", "microservice-demo"}


def test_no_application_uses_the_default_project(argocd: Any) -> None:
    for name, app in argocd.all_applications().items():
        assert app["spec"]["project"] in argocd.projects, name


def test_every_child_path_exists_and_renders(argocd: Any) -> None:
    for name, app in argocd.children.items():
        for source in argocd.git_sources(app):
            assert (ROOT / source["path"]).is_dir(), name
            assert argocd.rendered[name], f"{name} renders nothing"


def test_one_repository_and_one_revision_everywhere(argocd: Any) -> None:
    sources = [s for app in argocd.all_applications().values() for s in argocd.git_sources(app)]
    assert len(sources) == 1 + len(EXPECTED_FOLDERS)
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
            namespace = (
                ""
                if (_group(obj["apiVersion"]), obj["kind"]) in CLUSTER_SCOPED
                else obj["metadata"].get("namespace", default_namespace)
            )
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
        if name in argocd.charts():
            continue
        (source,) = argocd.git_sources(app)
        paths = app["metadata"]["annotations"]["argocd.argoproj.io/manifest-generate-paths"].split(";")
        for path in paths:
            assert (ROOT / source["path"] / path).resolve().is_dir(), f"{name}: {path}"
        kustomization = (ROOT / source["path"] / "kustomization.yaml").read_text()
        for reference in ("../../base/microservice-demo", "../../components"):
            if reference in kustomization:
                assert any(p.rstrip("/") in reference for p in paths), f"{name} misses {reference}"


def test_projects_and_argo_cds_configuration_come_before_every_application(argocd: Any) -> None:
    first = min(argocd.wave(app) for app in argocd.children.values())
    assert all(argocd.wave(project) < first for project in argocd.projects.values())
    config = [o for o in argocd.root_objects if o["kind"] == "ConfigMap"]
    assert {o["metadata"]["name"] for o in config} == {"argocd-cm", "argocd-notifications-cm"}
    assert all(argocd.wave(o) < first for o in config)


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
