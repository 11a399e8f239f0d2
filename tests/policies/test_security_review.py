"""What a security review found getting through the admission policies, each denied now: ephemeral (kubectl debug)
containers, Services with externalIPs, exposure that is not an HTTPRoute (other Gateways, other route kinds,
LoadBalancer Services), bare Pods, ReplicaSets and ReplicationControllers, root through the pod's securityContext or
a container's override of it, and bindings that judged only the service namespaces. Each deny fixture fails on the
policies as they were before, and each guard beside it says what must still be admitted."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops.policy_check import PolicyCheckResult, load_policies
from gitops.render import render
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
DIGEST = "@sha256:" + "ab" * 32
PROD, DEV = "microservice-demo-prod", "microservice-demo-dev"
GATEWAY_NAMESPACE = "envoy-gateway-system"
LABELS = {"app.kubernetes.io/name": "x", "app.kubernetes.io/part-of": "p"}
CONTAINER_POLICIES = [
    "trusted-registries",
    "no-latest-or-untagged-images",
    "images-pinned-by-digest",
    "read-only-root-filesystem",
    "non-root-no-privilege-escalation",
]
Judge = Callable[..., PolicyCheckResult]


def _denials(result: PolicyCheckResult) -> list[tuple[str, tuple[str, ...]]]:
    return [(d.policy, d.actions) for d in result.decisions]


def _owned_by(obj: dict[str, Any], api_version: str, kind: str, controller: bool = True) -> dict[str, Any]:
    obj["metadata"]["ownerReferences"] = [
        {"apiVersion": api_version, "kind": kind, "name": "owner", "uid": "0b1c2d3e", "controller": controller}
    ]
    return obj


def _service(namespace: str, spec: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": namespace, "labels": {**LABELS, **(labels or {})}},
        "spec": {"ports": [{"port": 80}], **spec},
    }


# 1. Ephemeral containers: kubectl debug UPDATEs pods/ephemeralcontainers with the whole Pod as the object.


def _debug_container(**security: Any) -> dict[str, Any]:
    """What `kubectl debug --profile=restricted --custom=...` adds, compliant with every policy."""
    return {
        "name": "debugger",
        "image": "ghcr.io/your-org/debug:1.0.0" + DIGEST,
        "targetContainerName": "microservice-demo",
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            **security,
        },
    }


EPHEMERAL_BREAKERS: dict[str, Callable[[dict[str, Any]], None]] = {
    "trusted-registries": lambda c: c.update(image="docker.io/library/busybox:1.37" + DIGEST),
    "no-latest-or-untagged-images": lambda c: c.update(image="ghcr.io/your-org/debug:latest" + DIGEST),
    "images-pinned-by-digest": lambda c: c.update(image="ghcr.io/your-org/debug:1.0.0"),
    "read-only-root-filesystem": lambda c: c["securityContext"].update(readOnlyRootFilesystem=False),
    # kubectl debug's legacy and general profiles set no allowPrivilegeEscalation.
    "non-root-no-privilege-escalation": lambda c: c["securityContext"].pop("allowPrivilegeEscalation"),
}


def test_every_policy_judging_containers_matches_kubectl_debug() -> None:
    """The offline check reads manifests, never subresources: that the cluster also judges kubectl debug is shown by
    the rule itself."""
    for document in render(ROOT / "policies", ROOT)[1]:
        name = document["metadata"]["name"]
        if document["kind"] != "ValidatingAdmissionPolicy" or name not in CONTAINER_POLICIES:
            continue
        rules = document["spec"]["matchConstraints"]["resourceRules"]
        assert any(
            rule["apiGroups"] == [""]
            and {"pods", "pods/ephemeralcontainers"} <= set(rule["resources"])
            and "UPDATE" in rule["operations"]
            for rule in rules
        ), name


@pytest.mark.parametrize("owned", [False, True], ids=["bare-pod", "pod-of-a-replicaset"])
@pytest.mark.parametrize("policy", CONTAINER_POLICIES)
def test_an_ephemeral_container_breaking_a_policy_is_denied_by_it(
    policy: str, owned: bool, compliant: Any, judge: Judge
) -> None:
    pod = compliant("Pod", PROD)
    if owned:  # kubectl debug is mostly run on a Deployment's pod
        _owned_by(pod, "apps/v1", "ReplicaSet")
    debugger = _debug_container()
    EPHEMERAL_BREAKERS[policy](debugger)
    pod["spec"]["ephemeralContainers"] = [debugger]
    result = judge(pod)
    assert _denials(result) == [(policy, ("Deny", "Audit"))]
    assert 'container "debugger" (ephemeral, added by kubectl debug)' in result.decisions[0].message


def test_a_compliant_debug_container_is_admitted_and_needs_no_probes_nor_resources(
    compliant: Any, judge: Judge
) -> None:
    pod = compliant("Pod", PROD)
    pod["spec"]["ephemeralContainers"] = [_debug_container()]  # the API refuses probes and resources on these
    assert judge(pod).decisions == []


# 2. externalIPs (CVE-2020-8554), in any Service and any namespace.


@pytest.mark.parametrize("namespace", [PROD, DEV, "some-other-team", GATEWAY_NAMESPACE])
def test_a_cluster_ip_service_with_external_ips_is_denied_everywhere(namespace: str, judge: Judge) -> None:
    result = judge(_service(namespace, {"type": "ClusterIP", "externalIPs": ["203.0.113.10", "203.0.113.11"]}))
    assert _denials(result) == [("service-type-cluster-ip", ("Deny", "Audit"))]
    assert 'Service "s" sets spec.externalIPs (203.0.113.10 and 1 more)' in result.decisions[0].message
    assert "CVE-2020-8554" in result.decisions[0].message


# 3. Exposure that is not an HTTPRoute: Gateways, other route kinds, LoadBalancer Services.


def test_the_platform_gateway_and_its_routes_are_admitted(compliant: Any, judge: Judge) -> None:
    networking = render(ROOT / "base" / "networking", ROOT)[1]
    assert [o["metadata"]["name"] for o in networking if o["kind"] == "Gateway"] == ["public"]
    assert judge(compliant("Gateway"), *networking).decisions == []


@pytest.mark.parametrize(
    ("name", "namespace"),
    [("team", PROD), ("public", PROD), ("internal", GATEWAY_NAMESPACE), ("public", "some-other-team")],
)
def test_no_gateway_but_the_platforms_may_exist(name: str, namespace: str, compliant: Any, judge: Judge) -> None:
    gateway = compliant("Gateway", namespace)
    gateway["metadata"]["name"] = name
    result = judge(gateway)
    assert _denials(result) == [("httproute-platform-gateway", ("Deny", "Audit"))]
    assert f'Gateway "{name}" in namespace "{namespace}" is refused' in result.decisions[0].message


def test_a_listener_set_is_denied(judge: Judge) -> None:
    listeners = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "ListenerSet",
        "metadata": {"name": "extra", "namespace": PROD},
        "spec": {
            "parentRef": {"name": "public", "namespace": GATEWAY_NAMESPACE},
            "listeners": [{"name": "raw", "protocol": "TCP", "port": 9000}],
        },
    }
    assert _denials(judge(listeners)) == [("httproute-platform-gateway", ("Deny", "Audit"))]


ROUTE_KINDS = [
    ("gateway.networking.k8s.io/v1", "GRPCRoute"),
    ("gateway.networking.k8s.io/v1alpha2", "TLSRoute"),
    ("gateway.networking.k8s.io/v1alpha2", "TCPRoute"),
    ("gateway.networking.k8s.io/v1alpha2", "UDPRoute"),
]


def _route(api_version: str, kind: str, parent: dict[str, str], namespace: str = PROD) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "r", "namespace": namespace, "labels": LABELS},
        "spec": {"parentRefs": [parent], "rules": [{"backendRefs": [{"name": "microservice-demo", "port": 80}]}]},
    }


@pytest.mark.parametrize(("api_version", "kind"), ROUTE_KINDS, ids=[k for _, k in ROUTE_KINDS])
def test_every_route_kind_attaches_only_to_the_platform_gateway(api_version: str, kind: str, judge: Judge) -> None:
    foreign = judge(_route(api_version, kind, {"name": "private", "namespace": PROD}))
    assert _denials(foreign) == [("httproute-platform-gateway", ("Deny", "Audit"))]
    assert f'{kind} "r" attaches to "private"' in foreign.decisions[0].message
    assert judge(_route(api_version, kind, {"name": "public", "namespace": GATEWAY_NAMESPACE})).decisions == []


def test_a_parent_ref_without_namespace_means_the_routes_own() -> None:
    """As Gateway API defines it: the redirect route in envoy-gateway-system names "public" without a namespace and
    is admitted; the same parentRef from a service namespace names a Gateway there, and is refused."""
    route = _route("gateway.networking.k8s.io/v1", "HTTPRoute", {"name": "public"}, GATEWAY_NAMESPACE)
    policies = load_policies(ROOT)
    assert policies.judge(route, "t", {}) == []
    route["metadata"]["namespace"] = PROD
    assert [d.policy for d in policies.judge(route, "t", {})] == ["httproute-platform-gateway"]


OWNING = {
    "gateway.envoyproxy.io/owning-gateway-name": "public",
    "gateway.envoyproxy.io/owning-gateway-namespace": GATEWAY_NAMESPACE,
}


def test_the_load_balancer_envoy_gateway_makes_for_the_platform_gateway_is_admitted(judge: Judge) -> None:
    assert judge(_service(GATEWAY_NAMESPACE, {"type": "LoadBalancer"}, OWNING)).decisions == []


@pytest.mark.parametrize(
    ("namespace", "labels"),
    [
        (GATEWAY_NAMESPACE, {}),
        (GATEWAY_NAMESPACE, {**OWNING, "gateway.envoyproxy.io/owning-gateway-name": "internal"}),
        ("some-other-team", {}),
        ("some-other-team", OWNING),  # the labels alone, outside Envoy Gateway's namespace
        ("observability", {}),
        (DEV, OWNING),
    ],
)
def test_any_other_load_balancer_is_denied_in_every_namespace(
    namespace: str, labels: dict[str, str], judge: Judge
) -> None:
    result = judge(_service(namespace, {"type": "LoadBalancer"}, labels))
    assert _denials(result) == [("service-type-cluster-ip", ("Deny", "Audit"))]
    assert "has type LoadBalancer, which only the Envoy proxy Service" in result.decisions[0].message


# 4. Bare Pods, ReplicaSets and ReplicationControllers: judged like the workloads that usually make them.


def _as(kind: str, deployment: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(deployment)
    if kind == "Pod":
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": obj["metadata"],
            "spec": obj["spec"]["template"]["spec"],
        }
    obj["kind"] = kind
    if kind == "ReplicationController":
        obj["apiVersion"] = "v1"
        obj["spec"] = {"replicas": 1, "selector": {"app.kubernetes.io/name": "x"}, "template": obj["spec"]["template"]}
    else:
        obj["spec"] = {k: v for k, v in obj["spec"].items() if k not in ("strategy", "revisionHistoryLimit")}
    return obj


def _container_of(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]
    container: dict[str, Any] = spec["containers"][0]
    return container


BARE: list[tuple[str, str, Callable[[dict[str, Any]], None], str]] = [
    ("Pod", "probes-required", lambda o: _container_of(o).pop("livenessProbe"), "needs a readinessProbe"),
    ("Pod", "required-labels", lambda o: o["metadata"]["labels"].pop("app.kubernetes.io/part-of"), "lacks the label"),
    ("ReplicaSet", "probes-required", lambda o: _container_of(o).pop("readinessProbe"), "needs a readinessProbe"),
    ("ReplicaSet", "required-labels", lambda o: o["metadata"]["labels"].pop("app.kubernetes.io/name"), "lacks the"),
    ("ReplicationController", "probes-required", lambda o: _container_of(o).pop("livenessProbe"), "readinessProbe"),
    ("ReplicationController", "required-labels", lambda o: o["metadata"].pop("labels"), "lacks the label"),
    (
        "ReplicationController", "resources-required", lambda o: _container_of(o)["resources"].pop("limits"),
        "resources.requests or",
    ),
    (
        "ReplicationController", "trusted-registries",
        lambda o: _container_of(o).update(image="docker.io/library/nginx:1.27" + DIGEST), "not from a trusted registry",
    ),
    (
        "ReplicationController", "read-only-root-filesystem",
        lambda o: _container_of(o)["securityContext"].pop("readOnlyRootFilesystem"), "readOnlyRootFilesystem: true",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "policy", "mutate", "words"), BARE, ids=[f"{kind}-{policy}" for kind, policy, _, _ in BARE]
)
def test_a_bare_pod_replicaset_or_replicationcontroller_is_judged(
    kind: str, policy: str, mutate: Callable[[dict[str, Any]], None], words: str, compliant: Any, judge: Judge
) -> None:
    obj = _as(kind, compliant("Deployment", PROD))
    assert judge(obj).decisions == [], "the unbroken object passes"
    mutate(obj)
    result = judge(obj)
    assert _denials(result) == [(policy, ("Deny", "Audit"))]
    assert words in result.decisions[0].message


OWNERS = [
    ("Pod", "apps/v1", "ReplicaSet"),
    ("Pod", "apps/v1", "StatefulSet"),
    ("Pod", "apps/v1", "DaemonSet"),
    ("Pod", "batch/v1", "Job"),
    ("Pod", "v1", "ReplicationController"),
    ("ReplicaSet", "apps/v1", "Deployment"),
]


@pytest.mark.parametrize(("kind", "api_version", "owner"), OWNERS, ids=[f"{k}-of-{o}" for k, _, o in OWNERS])
def test_what_a_judged_controller_made_is_not_judged_again_for_probes_labels_or_resources(
    kind: str, api_version: str, owner: str, compliant: Any, judge: Judge
) -> None:
    """Its owner's template was judged; a ReplicaSet's Pods need not carry the Deployment's labels."""
    obj = _owned_by(_as(kind, compliant("Deployment", PROD)), api_version, owner)
    obj["metadata"]["labels"] = {"app.kubernetes.io/instance": "x"}
    _container_of(obj).pop("livenessProbe")
    _container_of(obj)["resources"].pop("limits")
    assert judge(obj).decisions == []


def test_a_job_a_cronjob_made_is_not_judged_again_for_labels(compliant: Any, judge: Judge) -> None:
    job = next(o for o in render(ROOT / "overlays" / "prod", ROOT)[1] if o["kind"] == "Job")
    job["metadata"]["labels"] = {}
    assert [d.policy for d in judge(copy.deepcopy(job)).decisions] == ["required-labels"]
    assert judge(_owned_by(job, "batch/v1", "CronJob")).decisions == []


@pytest.mark.parametrize(
    ("api_version", "kind", "controller"),
    [("example.com/v1", "ReplicaSet", True), ("apps/v1", "ReplicaSet", False), ("v1", "ConfigMap", True)],
    ids=["another-groups-replicaset", "not-the-controller", "not-a-workload"],
)
def test_an_owner_that_is_not_a_judged_controller_exempts_nothing(
    api_version: str, kind: str, controller: bool, compliant: Any, judge: Judge
) -> None:
    pod = _owned_by(compliant("Pod", PROD), api_version, kind, controller)
    _container_of(pod).pop("livenessProbe")
    assert [d.policy for d in judge(pod).decisions] == ["probes-required"]


def test_a_pod_that_runs_to_completion_needs_no_probes(compliant: Any, judge: Judge) -> None:
    pod = compliant("Pod", PROD)
    pod["spec"]["restartPolicy"] = "Never"
    _container_of(pod).pop("livenessProbe")
    _container_of(pod).pop("readinessProbe")
    assert judge(pod).decisions == []


def test_a_pod_a_controller_owns_is_still_judged_for_its_images_and_root(compliant: Any, judge: Judge) -> None:
    """A Pod's image can be changed by an UPDATE, and ownerReferences are the requester's to write."""
    pod = _owned_by(compliant("Pod", PROD), "apps/v1", "ReplicaSet")
    _container_of(pod)["image"] = "docker.io/library/nginx:1.27" + DIGEST
    _container_of(pod)["securityContext"]["runAsUser"] = 0
    assert sorted(d.policy for d in judge(pod).decisions) == ["non-root-no-privilege-escalation", "trusted-registries"]


# 5. Root: the pod's runAsUser 0, and a container's runAsNonRoot: false under the pod's true.


def test_root_in_the_pods_security_context_is_denied(compliant: Any, judge: Judge) -> None:
    deployment = compliant("Deployment", PROD)
    deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = 0  # the container sets 10001
    result = judge(deployment)
    assert _denials(result) == [("non-root-no-privilege-escalation", ("Deny", "Audit"))]
    assert "the pod's securityContext.runAsUser is 0 (root)" in result.decisions[0].message


def test_a_containers_run_as_non_root_false_overrides_the_pods_true(compliant: Any, judge: Judge) -> None:
    deployment = compliant("Deployment", PROD)
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    _container_of(deployment)["securityContext"]["runAsNonRoot"] = False
    result = judge(deployment)
    assert _denials(result) == [("non-root-no-privilege-escalation", ("Deny", "Audit"))]
    assert "runAsNonRoot is false in its own securityContext, which overrides the pod's" in result.decisions[0].message


@pytest.mark.parametrize(("pod", "container"), [(True, None), (None, True), (False, True)])
def test_the_effective_run_as_non_root_true_is_admitted(
    pod: bool | None, container: bool | None, compliant: Any, judge: Judge
) -> None:
    deployment = compliant("Deployment", PROD)
    for context, value in (
        (deployment["spec"]["template"]["spec"]["securityContext"], pod),
        (_container_of(deployment)["securityContext"], container),
    ):
        context.pop("runAsNonRoot")
        if value is not None:
            context["runAsNonRoot"] = value
    assert judge(deployment).decisions == []


@pytest.mark.parametrize("pod", [None, False])
def test_run_as_non_root_set_nowhere_or_false_in_the_pod_alone_is_denied(
    pod: bool | None, compliant: Any, judge: Judge
) -> None:
    deployment = compliant("Deployment", PROD)
    deployment["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot")
    if pod is not None:
        deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = pod
    _container_of(deployment)["securityContext"].pop("runAsNonRoot")
    result = judge(deployment)
    assert _denials(result) == [("non-root-no-privilege-escalation", ("Deny", "Audit"))]
    assert "its runAsNonRoot is set neither in it nor in the pod" in result.decisions[0].message


# 6. Which namespaces each binding judges.


@pytest.mark.parametrize("namespace", ["some-other-team", "default", "ci-cd", "observability"])
def test_exposure_is_judged_in_every_namespace(namespace: str, compliant: Any, judge: Judge) -> None:
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": namespace, "labels": LABELS},
        "spec": {"defaultBackend": {"service": {"name": "s", "port": {"number": 80}}}},
    }
    gateway = compliant("Gateway", namespace)
    route = compliant("HTTPRoute", namespace)
    route["spec"]["parentRefs"][0]["name"] = "private"
    objects = [
        ingress,
        _service(namespace, {"type": "NodePort"}),
        _service(namespace, {"type": "LoadBalancer"}),
        _service(namespace, {"externalIPs": ["203.0.113.10"]}),
        gateway,
        route,
    ]
    assert sorted(d.policy for d in judge(*objects).decisions) == sorted(
        ["no-ingress"] + ["service-type-cluster-ip"] * 3 + ["httproute-platform-gateway"] * 2
    )


@pytest.mark.parametrize("namespace", ["ci-cd", "ci-pull-requests", "observability", "kube-system"])
def test_workloads_are_judged_in_the_service_namespaces_alone(namespace: str, compliant: Any, judge: Judge) -> None:
    """The platform's pods run upstream images from upstream registries, some as root (their Pod Security levels
    say why): the workload policies are bound to the three service namespaces."""
    deployment = compliant("Deployment", namespace)
    _container_of(deployment).update(image="quay.io/buildah/stable:v1.35.4", securityContext={"privileged": True})
    deployment["metadata"]["labels"] = {}
    assert judge(deployment).decisions == []


def test_exposure_in_kube_system_is_the_providers(compliant: Any, judge: Judge) -> None:
    """The provider's add-ons manage their Services in kube-system; the exposure policies leave it alone."""
    assert judge(_service("kube-system", {"type": "LoadBalancer"})).decisions == []


def test_every_binding_selects_by_the_namespace_name_or_the_environment_labels() -> None:
    """kubernetes.io/metadata.name is set by the API server and cannot be changed; gitops/environment and
    gitops/admission only by whoever writes Namespaces, which nobody this repository binds may
    (tests/security/test_environments.py, test_rbac.py). No other label is trusted to pick what is judged."""
    for binding in load_policies(ROOT).bindings:
        selector = binding.match_resources.get("namespaceSelector")
        if selector is None:
            continue
        assert set(selector) == {"matchExpressions"}, binding.name
        keys = [e["key"] for e in selector["matchExpressions"]]
        assert keys in (["kubernetes.io/metadata.name"], ["gitops/environment", "gitops/admission"],
                        ["gitops/environment"]), binding.name  # fmt: skip


def test_every_binding_says_why_it_judges_its_namespaces() -> None:
    for path in sorted((ROOT / "policies").glob("*.yaml")):
        for document in path.read_text().split("\n---\n"):
            obj = yaml.safe_load(document)
            if obj and obj.get("kind") == "ValidatingAdmissionPolicyBinding":
                assert document.lstrip("-\n").startswith("#"), f"{path.name}: {obj['metadata']['name']}"


def test_cert_managers_http01_solver_service_is_cluster_ip() -> None:
    """cert-manager makes each HTTP-01 solver's Service a NodePort unless the solver says otherwise, and
    service-type-cluster-ip refuses NodePorts in every namespace, envoy-gateway-system included."""
    (issuer,) = [o for o in render(ROOT / "base" / "networking", ROOT)[1] if o["kind"] == "ClusterIssuer"]
    solvers = [s["http01"]["gatewayHTTPRoute"] for s in issuer["spec"]["acme"]["solvers"] if "http01" in s]
    assert solvers and all(s.get("serviceType") == "ClusterIP" for s in solvers)
