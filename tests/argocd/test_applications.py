"""The app-of-apps: what the root creates, what each child renders, and what its project allows."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops.admission import CLUSTER_SCOPED
from gitops.applicationsets import expand
from gitops.layout import environments
from gitops.render import render
from gitops.repository import repo_root
from gitops.schemas import validate_schemas

ROOT = repo_root(Path(__file__))
# The environments are the folders of overlays/, as the gitops tool knows them.
ENVIRONMENTS = environments(ROOT)
# This repository's folders the root syncs, each Application named after its folder (argocd/root/kustomization.yaml
# says the rule); the upstream charts are the other children, each with a contract.
PLATFORM_FOLDERS = {
    "policies": "policies",
    "security": "base/security",
    "networking": "base/networking",
    "tekton-platform": "tekton/platform",
    "observability": "base/observability",
    "tekton-ci-cd": "tekton/ci-cd",
    "tekton-pull-requests": "tekton/pull-requests",
}
EXPECTED_FOLDERS = PLATFORM_FOLDERS | {f"microservice-demo-{env}": f"overlays/{env}" for env in ENVIRONMENTS}


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
    assert {"dev", "staging", "prod"} <= set(ENVIRONMENTS)
    # The environments' Applications are the ApplicationSet's, not files of the root.
    assert set(argocd.application_sets) == {"microservice-demo"}
    assert set(argocd.generated_by) == {f"microservice-demo-{env}" for env in ENVIRONMENTS}


def test_each_platform_folder_application_is_named_after_its_folder(argocd: Any) -> None:
    """The rule of argocd/root/kustomization.yaml: the path without a leading base/, slashes as dashes."""
    for name, path in PLATFORM_FOLDERS.items():
        assert name == path.removeprefix("base/").replace("/", "-")
        assert (ROOT / "argocd" / "root" / "applications" / f"{name}.application.yaml").is_file(), name
    for name in argocd.generated_by:
        assert argocd.children[name]["spec"]["destination"]["namespace"] == name, "an environment is its namespace"


def test_the_shared_policy_is_patched_by_label_never_by_name(argocd: Any) -> None:
    """The root's patches select the platform folders' Applications by their labels; the charts', which keep
    their own retries, carry layer: platform but not source: folder."""
    kustomization = yaml.safe_load((ROOT / "argocd" / "root" / "kustomization.yaml").read_text())
    targets = [patch["target"] for patch in kustomization["patches"]]
    assert targets and all("name" not in target and "labelSelector" in target for target in targets)
    for name in PLATFORM_FOLDERS:
        labels = argocd.children[name]["metadata"]["labels"]
        assert labels == {"layer": "platform", "source": "folder"}, name
        file = yaml.safe_load((ROOT / "argocd" / "root" / "applications" / f"{name}.application.yaml").read_text())
        assert "finalizers" not in file["metadata"] and "retry" not in (file["spec"].get("syncPolicy") or {}), name
    for name in argocd.charts():
        assert "source" not in argocd.children[name]["metadata"]["labels"], name


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
    expected = {(argocd.git_sources(argocd.root_app)[0]["repoURL"], "main")}
    assert {(s["repoURL"], s["targetRevision"]) for s in sources} == expected
    # The generator lists the folders of the same repository at the same revision.
    generators = [g["git"] for appset in argocd.application_sets.values() for g in appset["spec"]["generators"]]
    assert {(g["repoURL"], g["revision"]) for g in generators} == expected


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
    # Every environment's namespace, present and future: a new overlay needs no edit of the project.
    assert {d["namespace"] for d in project["destinations"]} == {"microservice-demo-*"}
    assert project["sourceRepos"] == [argocd.git_sources(argocd.root_app)[0]["repoURL"]]
    users = {name for name, app in argocd.children.items() if app["spec"]["project"] == "microservice-demo"}
    assert users == set(argocd.generated_by), "the project is the environments' alone"


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
    for env in ENVIRONMENTS:
        app = argocd.children[f"microservice-demo-{env}"]
        annotations = app["metadata"]["annotations"]
        assert f"var-namespace=microservice-demo-{env}" in annotations["link.argocd.argoproj.io/dashboard"]
        assert app["metadata"]["labels"] == {"layer": "service", "environment": env}
        assert {"name": "Image", "value": f"overlays/{env}/release/kustomization.yaml"} in app["spec"]["info"]
        # The service's own link is on its route, where Argo CD's UI shows it (and among the Application's URLs).
        (route,) = [o for o in argocd.rendered[app["metadata"]["name"]] if o["kind"] == "HTTPRoute"]
        (host,) = route["spec"]["hostnames"]
        assert route["metadata"]["annotations"]["link.argocd.argoproj.io/external-link"] == f"https://{host}"
    assert all(
        app["metadata"]["labels"]["layer"] == "platform"
        for n, app in argocd.children.items()
        if not n.startswith("microservice-demo")
    )


def test_the_environments_keep_what_their_applications_had(argocd: Any) -> None:
    """One template for every environment: the refresh paths, the sync options, the history."""
    for env in ENVIRONMENTS:
        app = argocd.children[f"microservice-demo-{env}"]
        annotations = app["metadata"]["annotations"]
        paths = annotations["argocd.argoproj.io/manifest-generate-paths"]
        assert paths == ".;../../base/microservice-demo;../../components;../../settings"
        assert app["spec"]["syncPolicy"]["syncOptions"] == ["PruneLast=true", "PrunePropagationPolicy=foreground"]
        assert app["spec"]["revisionHistoryLimit"] == 10
        assert app["metadata"]["namespace"] == "argocd"


def test_prod_syncs_automatically_only_in_its_window_and_the_hpa_owns_the_replicas(argocd: Any) -> None:
    (window,) = argocd.projects["microservice-demo"]["spec"]["syncWindows"]
    assert (window["kind"], window["applications"], window["manualSync"]) == ("allow", ["microservice-demo-prod"], True)
    assert "microservice-demo-prod" in argocd.children, "the window names an Application that exists"
    # Argo CD's recommendation for an HPA-managed Deployment (docs/user-guide/best_practices.md, "Leaving Room For
    # Imperativeness"): no replicas in the manifest, so there is no difference to ignore.
    prod = argocd.rendered["microservice-demo-prod"]
    (deployment,) = [o for o in prod if o["kind"] == "Deployment"]
    (hpa,) = [o for o in prod if o["kind"] == "HorizontalPodAutoscaler"]
    assert "replicas" not in deployment["spec"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    for name, app in argocd.children.items():
        assert "ignoreDifferences" not in app["spec"], name
        assert "RespectIgnoreDifferences=true" not in app["spec"].get("syncPolicy", {}).get("syncOptions", []), name
    # Wherever a Deployment has no HPA, it says how many replicas it wants.
    for env in ENVIRONMENTS:
        objects = argocd.rendered[f"microservice-demo-{env}"]
        if not any(o["kind"] == "HorizontalPodAutoscaler" for o in objects):
            assert all("replicas" in o["spec"] for o in objects if o["kind"] == "Deployment"), env


def test_the_root_with_its_applicationset_passes_schema_validation(argocd: Any) -> None:
    """The root's real render, the ApplicationSet included, and the Applications it generates, against the Argo CD
    CRD schemas (@kubernetes-models/argo-cd, tools/crd-schemas) and Kubernetes' own."""
    generated = [argocd.children[name] for name in argocd.generated_by]
    report = validate_schemas([("argocd/root", argocd.root_objects), ("generated", generated)], ROOT)
    assert report.findings == []
    assert not {kind for kind in report.not_validated if "argoproj.io" in kind}, report.not_validated


@pytest.mark.process
def test_a_new_overlay_folder_is_a_new_environment_application(
    tmp_path: Path, argocd: Any, copy_repository: Callable[[Path], Path]
) -> None:
    """overlays/qa, copied from staging in a scratch copy of the repository, is Application microservice-demo-qa
    syncing overlays/qa into microservice-demo-qa, with no edit anywhere in argocd/."""
    scratch = copy_repository(tmp_path)
    shutil.copytree(scratch / "overlays" / "staging", scratch / "overlays" / "qa")
    root_objects = render(scratch / "argocd" / "root", scratch)[1]
    generated = {app["metadata"]["name"]: app for _, app in expand(root_objects, scratch, argocd.repo_url)}
    assert set(generated) == {f"microservice-demo-{env}" for env in [*ENVIRONMENTS, "qa"]}
    qa = generated["microservice-demo-qa"]
    assert qa["spec"]["source"]["path"] == "overlays/qa"
    assert qa["spec"]["destination"]["namespace"] == "microservice-demo-qa"
    assert qa["metadata"]["labels"] == {"layer": "service", "environment": "qa"}
    assert "var-namespace=microservice-demo-qa" in qa["metadata"]["annotations"]["link.argocd.argoproj.io/dashboard"]
    assert "notifications.argoproj.io/subscribe.on-deployed-promote.promotion" in qa["metadata"]["annotations"]
    # Its project takes it as it is.
    (project,) = [o for o in root_objects if o["kind"] == "AppProject" and o["metadata"]["name"] == "microservice-demo"]
    assert any(fnmatch.fnmatchcase("microservice-demo-qa", d["namespace"]) for d in project["spec"]["destinations"])
    # The environments' Applications are the same but for the environment's name.
    staging = json.dumps(generated["microservice-demo-staging"]).replace("staging", "qa")
    assert json.loads(staging) == qa


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
