"""Who can do what where: derived from the RBAC objects the repository deploys, and compared with the table in
docs/security.md. Kubernetes' RBAC rules are additive and simple (a verb on a resource of an API group, granted by a
role bound cluster-wide or in one namespace), so they are evaluated here; the table is the contract."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
COLUMNS = ["microservice-demo-dev", "microservice-demo-staging", "microservice-demo-prod", "observability", "ci-cd",
           "elsewhere", "cluster-scoped", "Secrets"]  # fmt: skip
ELSEWHERE = "kube-system"  # any namespace none of the bindings names
# (label, verb, API group, resource): what a cell's words mean.
CAPABILITIES = [
    ("read", "list", "", "pods"),
    ("change", "patch", "apps", "deployments"),
    ("exec", "create", "", "pods/exec"),
    ("port-forward", "create", "", "pods/portforward"),
    ("run pipelines", "create", "tekton.dev", "pipelineruns"),
]
# Tekton Triggers' own roles for EventListeners: the cluster-wide one reads every Secret, the namespaced one
# impersonates every ServiceAccount of its namespace (config/200-clusterrole.yaml@tektoncd/triggers v0.37.0).
UPSTREAM_ROLES = {"tekton-triggers-eventlistener-roles", "tekton-triggers-eventlistener-clusterroles"}
EVENTLISTENER = ("ServiceAccount", "tekton-triggers")


class Rbac:
    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.roles = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objects
                      if o["kind"] in ("ClusterRole", "Role")}  # fmt: skip
        self.bindings = [o for o in objects if o["kind"] in ("ClusterRoleBinding", "RoleBinding")]

    def rules(self, binding: dict[str, Any]) -> list[dict[str, Any]]:
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace", "") if ref["kind"] == "Role" else ""
        role = self.roles.get((ref["kind"], namespace, ref["name"]))
        return role["rules"] if role else []

    def can(self, subject: tuple[str, str], verb: str, group: str, resource: str, namespace: str | None) -> bool:
        """namespace None: a cluster-scoped resource."""
        for binding in self.bindings:
            if not any((s["kind"], s["name"]) == subject for s in binding.get("subjects", [])):
                continue
            if binding["kind"] == "RoleBinding" and binding["metadata"]["namespace"] != namespace:
                continue
            for rule in self.rules(binding):
                if (
                    group in rule.get("apiGroups", [])
                    and resource in rule.get("resources", [])
                    and verb in rule["verbs"]
                ):
                    return True
        return False

    def cell(self, subject: tuple[str, str], column: str) -> str:
        if column == "Secrets":
            readable = any(
                self.can(subject, verb, "", "secrets", namespace)
                for verb in ("get", "list", "watch")
                for namespace in [*COLUMNS[:5], ELSEWHERE]
            )
            return "read" if readable else "no"
        if column == "cluster-scoped":
            return "read" if self.can(subject, "list", "", "nodes", None) else "—"
        namespace = ELSEWHERE if column == "elsewhere" else column
        words = [
            label
            for label, verb, group, resource in CAPABILITIES
            if self.can(subject, verb, group, resource, namespace)
        ]
        return ", ".join(words) or "—"


def _documented_table() -> dict[tuple[str, str], list[str]]:
    text = (ROOT / "docs" / "security.md").read_text()
    lines = [line for line in text.split("<!-- rbac-table -->")[1].splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[1:] == COLUMNS, header
    table = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        subject = re.search(r"`(Group|ServiceAccount) ([^`]+)`", cells[0])
        assert subject, cells[0]
        table[(subject[1], subject[2])] = cells[1:]
    return table


@pytest.fixture(scope="module")
def rbac(everything: list[dict[str, Any]]) -> Rbac:
    return Rbac(everything)


def test_the_documented_table_is_what_the_manifests_grant(rbac: Rbac) -> None:
    for (kind, name), cells in _documented_table().items():
        subject = (kind, name.rsplit("/", 1)[-1]) if kind == "ServiceAccount" else (kind, name)
        derived = [rbac.cell(subject, column) for column in COLUMNS]
        assert derived == cells, f"{kind} {name}: the manifests grant {derived}"


def test_every_bound_group_is_in_the_table(rbac: Rbac) -> None:
    documented = {name for kind, name in _documented_table() if kind == "Group"}
    bound = {s["name"] for b in rbac.bindings for s in b.get("subjects", []) if s["kind"] == "Group"}
    assert bound == documented


def test_people_are_bound_as_groups_never_as_users(rbac: Rbac) -> None:
    for binding in rbac.bindings:
        for subject in binding.get("subjects", []):
            assert subject["kind"] in ("Group", "ServiceAccount"), binding["metadata"]["name"]
            if subject["kind"] == "Group":
                assert subject["name"].startswith("oidc:"), "groups come from the identity provider"


def test_no_standing_cluster_admin_and_no_wildcards(rbac: Rbac) -> None:
    for binding in rbac.bindings:
        assert binding["roleRef"]["name"] not in ("cluster-admin", "admin", "edit"), binding["metadata"]["name"]
    for role in rbac.roles.values():
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(key, []), f"{role['metadata']['name']}: wildcard {key}"


def test_no_role_grants_reading_secrets(rbac: Rbac) -> None:
    for role in rbac.roles.values():
        for rule in role["rules"]:
            if "" in rule.get("apiGroups", []) and "secrets" in rule.get("resources", []):
                assert not {"get", "list", "watch"} & set(rule["verbs"]), role["metadata"]["name"]


def _environments(namespaces: dict[str, dict[str, str]], development: bool) -> list[str]:
    """The environments' namespaces, the development ones (gitops/admission: warn) or the others."""
    return [name for name, labels in namespaces.items() if (labels.get("gitops/admission") == "warn") == development]


def test_nobody_changes_an_environment_but_a_development_one_by_hand(
    rbac: Rbac, environment_namespaces: dict[str, dict[str, str]]
) -> None:
    """Argo CD deploys there: no person and no pipeline holds a write verb in those namespaces."""
    subjects = {(s["kind"], s["name"]) for b in rbac.bindings for s in b.get("subjects", [])}
    protected = _environments(environment_namespaces, development=False)
    assert {"microservice-demo-staging", "microservice-demo-prod"} <= set(protected)
    for namespace in protected:
        for subject in subjects:
            for verb in ("create", "update", "patch", "delete"):
                for group, resource in (("apps", "deployments"), ("", "pods"), ("", "configmaps"), ("", "services"),
                                        ("", "secrets"), ("", "pods/exec")):  # fmt: skip
                    assert not rbac.can(subject, verb, group, resource, namespace), (subject, verb, resource, namespace)


def test_the_pipelines_have_no_api_access(rbac: Rbac) -> None:
    """The PipelineRuns' ServiceAccounts need nothing from the API: their tasks get Secrets as workspaces or
    environment variables, and Chains reads the pushing run's imagePullSecrets itself."""
    bound = {(s["kind"], s["name"]) for b in rbac.bindings for s in b.get("subjects", [])}
    for account in ("pipeline", "image-pusher", "pull-request"):
        assert ("ServiceAccount", account) not in bound, account


def test_the_eventlisteners_read_no_secret_and_impersonate_nobody(rbac: Rbac) -> None:
    """Not Tekton Triggers' own roles: only what an EventListener does (read its Triggers objects, the cluster
    interceptors and bindings; create PipelineRuns; record events)."""
    bound = [b for b in rbac.bindings if EVENTLISTENER[1] in {s["name"] for s in b.get("subjects", [])}]
    assert bound, "the EventListeners' ServiceAccount is bound to something"
    assert not {b["roleRef"]["name"] for b in bound} & UPSTREAM_ROLES
    for namespace in [*COLUMNS[:5], ELSEWHERE, "ci-pull-requests", None]:
        for verb in ("get", "list", "watch"):
            assert not rbac.can(EVENTLISTENER, verb, "", "secrets", namespace), (verb, namespace)
        assert not rbac.can(EVENTLISTENER, "impersonate", "", "serviceaccounts", namespace), namespace
    assert rbac.can(EVENTLISTENER, "create", "tekton.dev", "pipelineruns", "ci-cd")
    assert rbac.can(EVENTLISTENER, "create", "tekton.dev", "pipelineruns", "ci-pull-requests")
    assert not rbac.can(EVENTLISTENER, "create", "tekton.dev", "pipelineruns", ELSEWHERE)
    assert rbac.can(EVENTLISTENER, "list", "triggers.tekton.dev", "clusterinterceptors", None)


def test_no_person_creates_pipeline_or_task_runs_or_pods_where_the_credentials_are(rbac: Rbac) -> None:
    """A PipelineRun names its ServiceAccount and may carry its own steps: whoever creates one in ci-cd runs any
    code as the ServiceAccounts that hold the git and registry credentials. Re-runs go through the webhook."""
    groups = {(s["kind"], s["name"]) for b in rbac.bindings for s in b.get("subjects", []) if s["kind"] == "Group"}
    for group in groups:
        for resource, api in (("pipelineruns", "tekton.dev"), ("taskruns", "tekton.dev"), ("pods", "")):
            assert not rbac.can(group, "create", api, resource, "ci-cd"), (group, resource)


def test_the_write_role_is_bound_in_development_environments_only(
    rbac: Rbac, environment_namespaces: dict[str, dict[str, str]]
) -> None:
    operators = [b for b in rbac.bindings if b["roleRef"]["name"] == "platform:namespace-operator"]
    development = _environments(environment_namespaces, development=True)
    assert development == ["microservice-demo-dev"]
    assert [(b["kind"], b["metadata"]["namespace"]) for b in operators] == [("RoleBinding", n) for n in development]


def test_nobody_writes_namespaces_so_nobody_relabels_an_environment(rbac: Rbac) -> None:
    """The admission policies and NetworkPolicies select environments by the Namespaces' gitops/ labels: whoever
    could patch a Namespace could take one out of every policy. Only Argo CD (the platform project) and cluster
    admins write Namespaces; no group or ServiceAccount this repository binds may."""
    subjects = {(s["kind"], s["name"]) for b in rbac.bindings for s in b.get("subjects", [])}
    for subject in subjects:
        for verb in ("create", "update", "patch", "delete"):
            assert not rbac.can(subject, verb, "", "namespaces", None), (subject, verb)


def test_the_security_auditor_reads_everything_read_only_people_read_and_more(rbac: Rbac) -> None:
    auditor, reader = ("Group", "oidc:security-auditors"), ("Group", "oidc:read-only")
    read_only = rbac.roles[("ClusterRole", "", "platform:read-only")]["rules"]
    for rule in read_only:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert rbac.can(auditor, "list", group, resource, ELSEWHERE), (group, resource)
    for group, resource in (("rbac.authorization.k8s.io", "clusterrolebindings"),
                            ("admissionregistration.k8s.io", "validatingadmissionpolicies"),
                            ("aquasecurity.github.io", "clustervulnerabilityreports"),
                            ("aquasecurity.github.io", "sbomreports")):  # fmt: skip
        assert rbac.can(auditor, "list", group, resource, ELSEWHERE), resource
        assert not rbac.can(reader, "list", group, resource, ELSEWHERE), resource


def test_the_role_model_is_complete(rbac: Rbac) -> None:
    """Eight roles: read-only, developer, QA tester, DevOps engineer, SRE, security auditor, platform admin, and
    the service's owners."""
    groups = {s["name"] for b in rbac.bindings for s in b.get("subjects", []) if s["kind"] == "Group"}
    assert groups == {
        "oidc:read-only", "oidc:developers", "oidc:qa-testers", "oidc:platform-devops", "oidc:platform-sre",
        "oidc:security-auditors", "oidc:platform-admins", "oidc:microservice-demo-owners",
    }  # fmt: skip
    admin = ("Group", "oidc:platform-admins")
    assert rbac.can(admin, "patch", "", "nodes", None) and rbac.can(admin, "create", "", "pods/eviction", ELSEWHERE)
    for namespace in ("observability", "ci-cd", "argocd", "tekton-pipelines"):
        assert rbac.can(admin, "delete", "", "pods", namespace), namespace
    for verb in ("create", "update", "patch", "delete"):
        assert not rbac.can(admin, verb, "rbac.authorization.k8s.io", "clusterrolebindings", None), verb
        assert not rbac.can(admin, verb, "", "pods", "microservice-demo-prod"), verb
