"""One file makes the repository yours (settings/site.yaml): every site-specific value a Kustomize entry point renders
comes from there. A copy of the repository with only that file changed renders the new values where they belong and
none of the shipped ones anywhere, and the repository as shipped renders every value the file holds."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops.render import render
from gitops.repository import entry_points, repo_root

ROOT = repo_root(Path(__file__))
SITE = Path("settings") / "site.yaml"
GITOPS = str(Path(sys.executable).with_name("gitops"))

# A second site: every key of settings/site.yaml with a value that shares nothing with the shipped one. The registry
# has a port and a deeper path, the groups another prefix, the repository another host and layout.
SECOND_SITE = {
    "gitRepoURL": "https://git.acme.test/platform/shop-api.git",
    "repositoryBrowseURL": "https://git.acme.test/platform/shop-api/src/branch/main",
    "imageRegistry": "registry.acme.test:5443/platform/images",
    "devHost": "dev.shop.acme.test",
    "stagingHost": "staging.shop.acme.test",
    "prodHost": "shop.acme.test",
    "grafanaHost": "metrics.acme.test",
    "argocdHost": "cd.acme.test",
    "ciWebhooksHost": "hooks.acme.test",
    "acmeEmail": "certificates@acme.test",
    "oncallEmail": "pager@acme.test",
    "smtpHost": "mail.acme.test",
    "argocdMailFrom": "cd-bot@acme.test",
    "pipelineGitEmail": "ci-bot@acme.test",
    "slackDeploymentsChannel": "shop-releases",
    "slackPlatformChannel": "infra-alarms",
    "groupReadOnly": "sso:everyone-read",
    "groupPlatformAdmins": "sso:infra-admins",
    "groupPlatformDevops": "sso:infra-ops",
    "groupPlatformSre": "sso:infra-sre",
    "groupSecurityAuditors": "sso:sec-audit",
    "groupDevelopers": "sso:shop-devs",
    "groupQaTesters": "sso:shop-qa",
    "groupServiceOwners": "sso:shop-owners",
}

# What no replacement can reach, with the reason (settings/site.yaml says the same to whoever adopts the repository):
# the Secret is made by a secretGenerator, so kustomize holds its alertmanager.yaml as base64 before any replacement
# runs. Its copies of these values (and smtp_from/smtp_auth_username, alertmanager@example.com) are edited in
# base/observability/alertmanager/alertmanager.yaml. When this changes, this table must shrink with it.
UNREACHABLE = {("Secret", "observability", "alertmanager-config"): {"smtpHost", "oncallEmail"}}
# Strings that mark a placeholder wherever they are, whether or not a key of site.yaml holds them whole.
PLACEHOLDER_MARKS = ("example.com", "your-org")


def _site(root: Path) -> dict[str, str]:
    config = yaml.safe_load((root / SITE).read_text())
    assert config["metadata"]["annotations"]["config.kubernetes.io/local-config"] == "true", "never rendered"
    data: dict[str, str] = config["data"]
    return data


class Rendered:
    """Every entry point of one checkout, rendered with real kustomize."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.entry_points = [p.relative_to(root).as_posix() for p in entry_points(root)]
        self.objects: dict[str, list[dict[str, Any]]] = {e: render(root / e, root)[1] for e in self.entry_points}

    def all(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for entry, objects in self.objects.items():
            for obj in objects:
                yield entry, obj

    def one(self, kind: str, name: str, namespace: str | None = None, entry: str | None = None) -> dict[str, Any]:
        found = [
            obj
            for e, obj in self.all()
            if obj["kind"] == kind
            and obj["metadata"]["name"] == name
            and (namespace is None or obj["metadata"].get("namespace") == namespace)
            and (entry is None or e == entry)
        ]
        assert found, f"{kind} {name} is not rendered"
        return found[0]


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def _texts(obj: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, text) for every string in the object; a Secret's data decoded, as the workload reads it."""

    def walk(node: Any, where: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from walk(value, f"{where}[{i}]")
        elif isinstance(node, str):
            yield where, node

    for where, text in walk(obj, ""):
        if obj["kind"] == "Secret" and where.startswith(".data."):
            text = base64.b64decode(text).decode()
        yield where, text


def _found(rendered: Rendered, values: dict[str, str]) -> dict[tuple[str, str, str], dict[str, set[str]]]:
    """Where each value is rendered: object -> key -> the fields holding it. A value that is a plain word (a Slack
    channel) counts only as a whole annotation value, where notification subscriptions are (on an Application, or
    on the template of an ApplicationSet's): as a part of any text it would be found in every RBAC rule on
    deployments."""
    found: dict[tuple[str, str, str], dict[str, set[str]]] = {}
    for _, obj in rendered.all():
        for where, text in _texts(obj):
            for key, value in values.items():
                word = re.fullmatch(r"[a-z0-9-]+", value) is not None
                annotation = where.startswith((".metadata.annotations.", ".spec.template.metadata.annotations."))
                hit = (text == value and annotation) if word else value in text
                if hit:
                    found.setdefault(_key(obj), {}).setdefault(key, set()).add(where)
    return found


@pytest.fixture(scope="module")
def shipped() -> Rendered:
    return Rendered(ROOT)


@pytest.fixture(scope="module")
def adopted(tmp_path_factory: pytest.TempPathFactory, copy_repository: Callable[[Path], Path]) -> Rendered:
    """A copy of the repository whose settings/site.yaml alone holds the second site's values."""
    copy = copy_repository(tmp_path_factory.mktemp("adopted"))
    site = yaml.safe_load((copy / SITE).read_text())
    assert set(site["data"]) == set(SECOND_SITE), "SECOND_SITE must have a value for every key of settings/site.yaml"
    site["data"] = SECOND_SITE
    (copy / SITE).write_text(yaml.safe_dump(site, sort_keys=False))
    return Rendered(copy)


def test_every_entry_point_reads_the_settings(shipped: Rendered) -> None:
    for entry in shipped.entry_points:
        file = ROOT / entry / "kustomization.yaml"
        components = yaml.safe_load(file.read_text()).get("components") or []
        assert any((ROOT / entry / c).resolve() == (ROOT / "settings").resolve() for c in components), (
            f"{entry} does not list the settings component"
        )


def test_the_settings_are_read_never_rendered(shipped: Rendered) -> None:
    assert not [o for _, o in shipped.all() if o["metadata"]["name"].startswith("site-settings")]


def test_argo_cd_refreshes_an_application_when_the_settings_change(shipped: Rendered) -> None:
    """An Application that lists refresh paths (manifest-generate-paths) must list settings/ if its folder reads it:
    otherwise a commit that changes only settings/site.yaml would not reach it."""
    applications = [o for o in shipped.objects["argocd/root"] if o["kind"] == "Application"]
    checked = 0
    for app in applications:
        source = app["spec"].get("source", {})
        paths = (app["metadata"].get("annotations") or {}).get("argocd.argoproj.io/manifest-generate-paths")
        if paths is None or "path" not in source or source["path"] not in shipped.entry_points:
            continue
        folder = ROOT / source["path"]
        refreshed = {(folder / p).resolve() for p in paths.split(";")}
        assert (ROOT / "settings").resolve() in refreshed, app["metadata"]["name"]
        checked += 1
    # The environments' Applications: the ApplicationSet's template, for each folder its generator lists.
    for appset in (o for o in shipped.objects["argocd/root"] if o["kind"] == "ApplicationSet"):
        paths = appset["spec"]["template"]["metadata"]["annotations"]["argocd.argoproj.io/manifest-generate-paths"]
        for generator in appset["spec"]["generators"]:
            for item in generator["git"]["directories"]:
                for folder in filter(Path.is_dir, ROOT.glob(item["path"])):
                    refreshed = {(folder / p).resolve() for p in paths.split(";")}
                    assert (ROOT / "settings").resolve() in refreshed, f"{appset['metadata']['name']}: {folder}"
                    checked += 1
    assert checked >= 10


def test_the_second_site_shares_no_value_with_the_shipped_one() -> None:
    shipped = _site(ROOT)
    for key, value in SECOND_SITE.items():
        assert not any(old in value or value in old for old in shipped.values()), key


def test_as_shipped_every_value_of_the_settings_is_rendered(shipped: Rendered) -> None:
    values = _site(ROOT)
    found = _found(shipped, values)
    rendered = {key for obj, keys in found.items() if obj not in UNREACHABLE for key in keys}
    assert rendered == set(values), f"keys of settings/site.yaml nothing renders: {sorted(set(values) - rendered)}"


def test_no_shipped_value_is_left_in_the_adopted_render(adopted: Rendered) -> None:
    left = _found(adopted, _site(ROOT))
    assert {obj: set(keys) for obj, keys in left.items()} == UNREACHABLE, left
    marks = {
        _key(obj): where
        for _, obj in adopted.all()
        for where, text in _texts(obj)
        if any(mark in text for mark in PLACEHOLDER_MARKS)
    }
    assert set(marks) <= set(UNREACHABLE), f"placeholders no key of settings/site.yaml reaches: {marks}"


def test_every_value_of_the_adopted_site_is_rendered(adopted: Rendered) -> None:
    found = _found(adopted, SECOND_SITE)
    rendered = {key for keys in found.values() for key in keys}
    assert rendered == set(SECOND_SITE), f"not rendered: {sorted(set(SECOND_SITE) - rendered)}"


def test_the_adopted_values_land_where_they_belong(adopted: Rendered) -> None:
    site = SECOND_SITE
    hosts = {"https-dev": "devHost", "https-staging": "stagingHost", "https-prod": "prodHost"}
    hosts |= {"https-grafana": "grafanaHost", "https-webhooks": "ciWebhooksHost"}

    # Git: every Application whose source is this repository, both projects, the promotion's checkout.
    applications = [obj for _, obj in adopted.all() if obj["kind"] == "Application"]
    # This repository's own Applications (the charts' have upstream sources): the root and its children that sync a
    # folder of it.
    platform_folders = {"policies", "security", "networking", "observability"} | {
        f"tekton-{folder}" for folder in ("platform", "ci-cd", "pull-requests")
    }
    ours = [a for a in applications if a["metadata"]["name"] in {"root", *platform_folders}]
    assert len(ours) == 8, sorted(a["metadata"]["name"] for a in ours)
    assert {a["spec"]["source"]["repoURL"] for a in ours} == {site["gitRepoURL"]}
    # The environments' ApplicationSet: the repository its generator lists, and each environment's source.
    environments = adopted.one("ApplicationSet", "microservice-demo")["spec"]
    assert environments["generators"][0]["git"]["repoURL"] == site["gitRepoURL"]
    assert environments["template"]["spec"]["source"]["repoURL"] == site["gitRepoURL"]
    for project in ("platform", "microservice-demo"):
        assert adopted.one("AppProject", project)["spec"]["sourceRepos"][0] == site["gitRepoURL"]
    binding = adopted.one("TriggerBinding", "argocd-deployed")["spec"]["params"]
    assert {p["name"]: p["value"] for p in binding}["repo-url"] == site["gitRepoURL"]

    # Runbooks: every alert's link, and the dashboard's.
    runbooks = f"{site['repositoryBrowseURL']}/docs/runbooks"
    links = [
        rule["annotations"]["runbook_url"]
        for _, obj in adopted.all()
        if obj["kind"] == "PrometheusRule"
        for group in obj["spec"]["groups"]
        for rule in group["rules"]
        if "runbook_url" in rule.get("annotations", {})
    ]
    assert links
    assert all(re.fullmatch(re.escape(runbooks) + r"/[a-z-]+\.md", link) for link in links), links
    dashboard = adopted.one("ConfigMap", "microservice-demo-dashboard")["data"]["microservice-demo.json"]
    assert yaml.safe_load(dashboard)["links"][0]["url"] == runbooks

    # Images: each environment runs <registry>/microservice-demo with its release's tag and digest, reports it and
    # checks it; the pipeline builds it there; the admission policy trusts the registry.
    for env in ("dev", "staging", "prod"):
        entry = f"overlays/{env}"
        container = adopted.one("Deployment", "microservice-demo", entry=entry)["spec"]["template"]["spec"]
        (image,) = [c["image"] for c in container["containers"]]
        assert re.fullmatch(re.escape(site["imageRegistry"]) + r"/microservice-demo:[\w.-]+@sha256:[0-9a-f]{64}", image)
        assert {e["name"]: e.get("value") for e in container["containers"][0]["env"]}["APP_IMAGE"] == image
        check = adopted.one("Job", "microservice-demo-deploy-check", entry=entry)["spec"]["template"]["spec"]
        (checker,) = check["containers"]
        assert checker["image"] == image
        assert {e["name"]: e.get("value") for e in checker["env"]}["EXPECTED_IMAGE"] == image
        route = adopted.one("HTTPRoute", "microservice-demo", entry=entry)["spec"]
        assert route["hostnames"] == [site[f"{env}Host"]]
        assert route["parentRefs"][0]["sectionName"] == f"https-{env}"
    build = adopted.one("Pipeline", "build")["spec"]["params"]
    assert {p["name"]: p.get("default") for p in build}["image"] == f"{site['imageRegistry']}/microservice-demo"
    policy = adopted.one("ValidatingAdmissionPolicy", "trusted-registries")["spec"]["variables"]
    assert {v["name"]: v["expression"] for v in policy}["trusted"] == f"['{site['imageRegistry']}/']"

    # Host names: the Gateway's listeners, the routes, the links in Argo CD and its notifications.
    listeners = adopted.one("Gateway", "public")["spec"]["listeners"]
    assert {item["name"]: item.get("hostname") for item in listeners if item["name"] in hosts} == {
        name: site[key] for name, key in hosts.items()
    }
    assert adopted.one("HTTPRoute", "grafana")["spec"]["hostnames"] == [site["grafanaHost"]]
    assert adopted.one("HTTPRoute", "github-webhooks")["spec"]["hostnames"] == [site["ciWebhooksHost"]]
    for env in ("dev", "staging", "prod"):
        route = adopted.one("HTTPRoute", "microservice-demo", entry=f"overlays/{env}")["metadata"]["annotations"]
        assert route["link.argocd.argoproj.io/external-link"] == f"https://{site[f'{env}Host']}"
    # Every environment's Application, from the ApplicationSet's template.
    annotations = environments["template"]["metadata"]["annotations"]
    assert annotations["link.argocd.argoproj.io/dashboard"].startswith(f"https://{site['grafanaHost']}/d/")
    for subscription in ("on-sync-failed", "on-health-degraded"):
        assert annotations[f"notifications.argoproj.io/subscribe.{subscription}.email"] == site["oncallEmail"]
    for subscription in ("on-sync-failed", "on-health-degraded", "on-deployed"):
        slack = annotations[f"notifications.argoproj.io/subscribe.{subscription}.slack"]
        assert slack == site["slackDeploymentsChannel"]
    platform = [a for a in applications if a["metadata"]["name"] in platform_folders]
    assert len(platform) == len(platform_folders)
    for app in platform:
        annotations = app["metadata"]["annotations"]
        assert annotations["notifications.argoproj.io/subscribe.on-sync-failed.slack"] == site["slackPlatformChannel"]
    grafana_link = adopted.one("Application", "observability")["metadata"]["annotations"]
    assert grafana_link["link.argocd.argoproj.io/grafana"] == f"https://{site['grafanaHost']}"
    notifications = adopted.one("ConfigMap", "argocd-notifications-cm", entry="argocd/root")["data"]
    assert yaml.safe_load(notifications["context"]) == {"argocdUrl": f"https://{site['argocdHost']}"}
    email = yaml.safe_load(notifications["service.email"])
    assert (email["host"], email["port"], email["from"]) == (site["smtpHost"], 587, site["argocdMailFrom"])

    # Mail: the ACME account, the pipeline's commits.
    assert adopted.one("ClusterIssuer", "letsencrypt")["spec"]["acme"]["email"] == site["acmeEmail"]
    for task, step in (("set-dev-image", "set-image"), ("promote", "promote")):
        (found,) = [s for s in adopted.one("Task", task)["spec"]["steps"] if s["name"] == step]
        variables = {e["name"]: e.get("value") for e in found["env"]}
        assert variables["GIT_AUTHOR_EMAIL"] == variables["GIT_COMMITTER_EMAIL"] == site["pipelineGitEmail"], task

    # Groups: every binding names only the second site's groups, and each of them somewhere.
    groups = {
        subject["name"]
        for _, obj in adopted.all()
        if obj["kind"] in {"RoleBinding", "ClusterRoleBinding"}
        for subject in obj.get("subjects") or []
        if subject["kind"] == "Group"
    }
    assert groups == {value for key, value in site.items() if key.startswith("group")}


@pytest.mark.process
@pytest.mark.parametrize("command", [["check", "--no-scan"], ["policy-check"]], ids=" ".join)
def test_the_adopted_repository_passes_the_repositorys_checks(adopted: Rendered, command: list[str]) -> None:
    """Valid manifests with the second site's values, and admitted by the admission policies they render: the
    environments' images come from the registry the policy trusted-registries now names."""
    result = subprocess.run([GITOPS, *command], cwd=adopted.root, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
