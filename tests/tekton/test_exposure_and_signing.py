"""How GitHub reaches the EventListener (through the platform Gateway, HTTPS, one path), and how Tekton Chains gets
the registry credentials it stores signatures and attestations with (the pushing TaskRun's ServiceAccount)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops.render import render
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))


@pytest.fixture(scope="module")
def ci_cd() -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in render(ROOT / "tekton" / "ci-cd", ROOT)[1]}


@pytest.fixture(scope="module")
def gateway() -> dict[str, Any]:
    objects = render(ROOT / "base" / "networking", ROOT)[1]
    (public,) = [o for o in objects if o["kind"] == "Gateway"]
    return public


def test_githubs_webhooks_reach_el_github_through_the_gateway_over_https_on_one_path(
    ci_cd: dict[tuple[str, str], dict[str, Any]], gateway: dict[str, Any]
) -> None:
    listener = ci_cd[("EventListener", "github")]
    routes = [o for (kind, _), o in ci_cd.items() if kind == "HTTPRoute"]
    backends = [
        (route, rule, ref)
        for route in routes
        for rule in route["spec"]["rules"]
        for ref in rule.get("backendRefs", [])
        if ref["name"] == f"el-{listener['metadata']['name']}"  # the Service Triggers creates: el-<name>
    ]
    assert len(backends) == 1, "exactly one route to the EventListener"
    route, rule, ref = backends[0]
    assert ref["port"] == 8080
    (match,) = rule["matches"]
    assert match["path"]["type"] == "Exact" and match["method"] == "POST", "only the webhook path, only POST"
    (parent,) = route["spec"]["parentRefs"]
    assert (parent["namespace"], parent["name"]) == (gateway["metadata"]["namespace"], gateway["metadata"]["name"])
    (section,) = [lst for lst in gateway["spec"]["listeners"] if lst["name"] == parent["sectionName"]]
    assert section["protocol"] == "HTTPS" and section["tls"]["mode"] == "Terminate"
    assert route["spec"]["hostnames"] == [section["hostname"]]
    selector = section["allowedRoutes"]["namespaces"]["selector"]["matchLabels"]
    assert selector == {"kubernetes.io/metadata.name": route["metadata"]["namespace"]}, "routes from ci-cd alone"
    assert gateway["metadata"]["annotations"]["cert-manager.io/cluster-issuer"], "its certificate from cert-manager"


def test_the_hmac_check_still_guards_every_github_trigger(ci_cd: dict[tuple[str, str], dict[str, Any]]) -> None:
    for trigger in ci_cd[("EventListener", "github")]["spec"]["triggers"]:
        first = trigger["interceptors"][0]
        assert first["ref"]["name"] == "github", trigger["name"]
        assert {p["name"] for p in first["params"]} >= {"secretRef"}, trigger["name"]


def test_chains_can_authenticate_to_the_registry_for_the_image_it_signs(
    ci_cd: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """Chains signs the TaskRun whose results are IMAGE_URL and IMAGE_DIGEST and stores the signature with that
    TaskRun's ServiceAccount's imagePullSecrets (tektoncd/chains docs/authentication.md): that ServiceAccount must
    list the Secret the push step pushes with."""
    pipeline = ci_cd[("Pipeline", "build")]["spec"]
    (push,) = [
        task for task in pipeline["tasks"]
        if {r["name"] for r in ci_cd[("Task", task["taskRef"]["name"])]["spec"].get("results", [])}
        >= {"IMAGE_URL", "IMAGE_DIGEST"}
    ]  # fmt: skip
    template = ci_cd[("TriggerTemplate", "build")]["spec"]["resourcetemplates"][0]["spec"]
    (spec,) = [s for s in template.get("taskRunSpecs", []) if s["pipelineTaskName"] == push["name"]]
    account = ci_cd[("ServiceAccount", spec["serviceAccountName"])]
    (credentials,) = [w for w in template["workspaces"] if w["name"] == "registry-credentials"]
    assert {"name": credentials["secret"]["secretName"]} in account.get("imagePullSecrets", [])
    chain = yaml.safe_load((ROOT / "tekton" / "platform" / "tektonconfig.yaml").read_text())["spec"]["chain"]
    assert chain["artifacts.oci.storage"] == "oci" and chain["artifacts.taskrun.storage"] == "oci"


def test_only_the_push_runs_with_the_registry_credentials(ci_cd: dict[tuple[str, str], dict[str, Any]]) -> None:
    holders = {name for (kind, name), o in ci_cd.items() if kind == "ServiceAccount" and o.get("imagePullSecrets")}
    assert holders == {"image-pusher"}
    pull_request = ci_cd[("TriggerTemplate", "pull-request")]["spec"]["resourcetemplates"][0]["spec"]
    assert not pull_request.get("taskRunSpecs"), "pull-request runs never run as image-pusher"
