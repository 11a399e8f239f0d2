"""The admission semantics `gitops policy-check` follows, each shown on a small policy of its own."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops.admission import Cluster, PolicyError, PolicySet, Request, Target, resource_of
from gitops.policy_check import run_policy_check
from gitops.render import render
from gitops.repository import repo_root


def _policy(spec: dict[str, Any], name: str = "p") -> dict[str, Any]:
    base: dict[str, Any] = {
        "failurePolicy": "Fail",
        "matchConstraints": {
            "resourceRules": [
                {
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": ["configmaps"],
                }
            ]
        },
        "validations": [{"expression": "'ok' in object.data", "message": "needs data.ok"}],
    }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {**base, **spec},
    }


def _binding(spec: dict[str, Any] | None = None, policy: str = "p") -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": f"{policy}-binding"},
        "spec": {"policyName": policy, "validationActions": ["Deny"], **(spec or {})},
    }


def _config_map(
    data: dict[str, str] | None = None, namespace: str = "team", labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": namespace, "labels": labels or {}},
        "data": data or {},
    }


def _messages(
    policy: dict[str, Any], binding: dict[str, Any], obj: dict[str, Any], namespaces: Any = None
) -> list[str]:
    decisions = PolicySet.load([policy, binding]).judge(obj, "test", namespaces or {})
    return [d.message for d in decisions]


def test_a_failed_validation_gives_its_message() -> None:
    assert _messages(_policy({}), _binding(), _config_map()) == ["needs data.ok"]
    assert _messages(_policy({}), _binding(), _config_map({"ok": "1"})) == []


def test_message_expression_wins_over_message_and_the_expression_is_the_last_resort() -> None:
    validation = {
        "expression": "'ok' in object.data",
        "message": "static",
        "messageExpression": "'in ' + object.metadata.namespace",
    }
    assert _messages(_policy({"validations": [validation]}), _binding(), _config_map()) == ["in team"]
    bare = {"expression": "'ok' in object.data"}
    assert _messages(_policy({"validations": [bare]}), _binding(), _config_map()) == [
        "failed expression: 'ok' in object.data"
    ]


def test_other_resources_groups_and_excluded_rules_are_not_judged() -> None:
    secret = {**_config_map(), "kind": "Secret"}
    assert _messages(_policy({}), _binding(), secret) == []
    everything = {"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}
    config_maps = {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["*"], "resources": ["configmaps"]}
    excluded = _policy({"matchConstraints": {"resourceRules": [everything], "excludeResourceRules": [config_maps]}})
    assert _messages(excluded, _binding(), _config_map()) == []


def test_an_update_only_rule_does_not_judge_a_manifest_which_is_created() -> None:
    rules = [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["configmaps"]}]
    assert _messages(_policy({"matchConstraints": {"resourceRules": rules}}), _binding(), _config_map()) == []


def test_namespace_and_object_selectors_of_policy_and_binding() -> None:
    namespaces = {"team": {"metadata": {"name": "team", "labels": {"tier": "prod"}}}}
    by_namespace = _binding({"matchResources": {"namespaceSelector": {"matchLabels": {"tier": "prod"}}}})
    assert _messages(_policy({}), by_namespace, _config_map(), namespaces) == ["needs data.ok"]
    assert _messages(_policy({}), by_namespace, _config_map(namespace="other"), namespaces) == []
    by_name = _binding({"matchResources": {"namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["team"]}]}}})  # fmt: skip
    assert _messages(_policy({}), by_name, _config_map()) == []
    assert _messages(_policy({}), by_name, _config_map(namespace="other")) == ["needs data.ok"]
    by_object = _policy({"matchConstraints": {**_policy({})["spec"]["matchConstraints"], "objectSelector": {
        "matchExpressions": [{"key": "checked", "operator": "Exists"}]}}})  # fmt: skip
    assert _messages(by_object, _binding(), _config_map()) == []
    assert _messages(by_object, _binding(), _config_map(labels={"checked": ""})) == ["needs data.ok"]


def test_match_conditions_and_variables() -> None:
    spec = {
        "matchConditions": [{"name": "labelled", "expression": "'strict' in object.metadata.labels"}],
        "variables": [{"name": "keys", "expression": "object.data.map(k, k)"}],
        "validations": [{
            "expression": "variables.keys.all(k, k.startsWith('app_'))",
            "messageExpression": "'bad key ' + variables.keys.filter(k, !k.startsWith('app_'))[0]",
        }],
    }  # fmt: skip
    assert _messages(_policy(spec), _binding(), _config_map({"x": "1"})) == []
    assert _messages(_policy(spec), _binding(), _config_map({"x": "1"}, labels={"strict": ""})) == ["bad key x"]


def test_an_expression_that_fails_on_an_object_denies_under_fail_and_skips_under_ignore() -> None:
    failing = {"validations": [{"expression": "object.spec.replicas > 1", "message": "m"}]}
    (message,) = _messages(_policy(failing), _binding(), _config_map())
    assert message.startswith("policy p could not be evaluated for this object, so it is refused: ")
    assert _messages(_policy({**failing, "failurePolicy": "Ignore"}), _binding(), _config_map()) == []


def test_warn_and_audit_actions_are_kept() -> None:
    decisions = PolicySet.load([_policy({}), _binding({"validationActions": ["Warn", "Audit"]})]).judge(
        _config_map(), "test", {}
    )
    assert [(d.actions, d.denies) for d in decisions] == [(("Warn", "Audit"), False)]


@pytest.mark.parametrize(
    ("spec", "binding", "words"),
    [
        (
            {"validations": [{"expression": "object.metadata.name.split('-').size() > 0"}]},
            {},
            "'split' is not available",
        ),
        ({"validations": [{"expression": "object.?data.orValue({}) != {}"}]}, {}, "cannot parse"),
        ({"validations": [{"expression": "authorizer.requestResource.check('get').allowed()"}]}, {}, "authorizer"),
        ({"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}}, {}, "paramKind"),
        ({}, {"paramRef": {"name": "x"}}, "paramRef"),
        ({}, {"validationActions": ["Block"]}, "validationActions"),
    ],
)
def test_what_cannot_be_evaluated_faithfully_is_an_error_never_a_pass(
    spec: dict[str, Any], binding: dict[str, Any], words: str
) -> None:
    with pytest.raises(PolicyError, match=words):
        PolicySet.load([_policy(spec), _binding(binding)]).judge(_config_map(), "test", {})


def test_a_binding_to_a_missing_policy_is_an_error() -> None:
    with pytest.raises(PolicyError, match="no policy 'q'"):
        PolicySet.load([_policy({}), _binding(policy="q")])


@pytest.mark.parametrize(
    ("kind", "resource"),
    [
        ("Deployment", "deployments"),
        ("Ingress", "ingresses"),
        ("NetworkPolicy", "networkpolicies"),
        ("HTTPRoute", "httproutes"),
    ],
)
def test_resource_names_follow_kubernetes_guess(kind: str, resource: str) -> None:
    assert resource_of(kind) == resource


# What the API server does that the offline check once did not: each case pins one behaviour, with the Kubernetes
# source (k8s.io/apiserver unless said otherwise, kubernetes/kubernetes as of 2026) or documentation it follows.

ROOT = repo_root(Path(__file__))


def _route(api_version: str) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": "team"},
        "spec": {"parentRefs": [{"name": "public"}]},
    }


def _route_policy(match_policy: str | None = None) -> dict[str, Any]:
    rule = {
        "apiGroups": ["gateway.networking.k8s.io"],
        "apiVersions": ["v1"],
        "operations": ["CREATE"],
        "resources": ["httproutes"],
    }
    constraints: dict[str, Any] = {"resourceRules": [rule]}
    if match_policy:
        constraints["matchPolicy"] = match_policy
    seen = "object.apiVersion + ' ' + request.kind.version + ' from ' + request.requestKind.version"
    return _policy(
        {"matchConstraints": constraints, "validations": [{"expression": "false", "messageExpression": seen}]}
    )


def test_match_policy_equivalent_judges_another_version_of_a_resource_as_the_version_the_rule_names() -> None:
    """matchPolicy defaults to Equivalent (pkg/apis/admissionregistration/v1/defaults.go SetDefaults_MatchResources):
    a request for gateway.networking.k8s.io/v1beta1 httproutes matches a rule naming v1 of the same group and resource,
    and the object is converted to v1 before it is judged; under Exact it does not match
    (pkg/admission/plugin/policy/matching/matching.go matchesResourceRules; the API reference of
    ValidatingAdmissionPolicy, matchConstraints.matchPolicy). Gateway API's CRDs convert by apiVersion alone
    (conversion strategy None); a built-in group's conversion cannot be done offline, so it is an error."""
    route = _route("gateway.networking.k8s.io/v1beta1")
    assert _messages(_route_policy(), _binding(), route) == ["gateway.networking.k8s.io/v1 v1 from v1beta1"]
    assert _messages(_route_policy("Equivalent"), _binding(), route) == ["gateway.networking.k8s.io/v1 v1 from v1beta1"]
    assert _messages(_route_policy("Exact"), _binding(), route) == []
    assert _messages(_route_policy("Exact"), _binding(), _route("gateway.networking.k8s.io/v1")) == [
        "gateway.networking.k8s.io/v1 v1 from v1"
    ]
    deployments = [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["*"], "resources": ["deployments"]}]
    old_deployment = {"apiVersion": "apps/v1beta2", "kind": "Deployment", "metadata": {"name": "d", "namespace": "t"}}
    with pytest.raises(PolicyError, match="cannot convert the versions of apps"):
        _messages(_policy({"matchConstraints": {"resourceRules": deployments}}), _binding(), old_deployment)


EVERYTHING = [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}]


@pytest.mark.parametrize(
    ("obj", "judged"),
    [
        ({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}}, True),
        ({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": "d"}}, True),
        ({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}}, True),
        ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "labels": {"tier": "prod"}}}, True),
        ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "labels": {"tier": "dev"}}}, False),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "other"}}, False),
    ],
    ids=["Node", "CSIDriver", "ClusterRole", "Namespace-selected", "Namespace-not-selected", "ConfigMap-elsewhere"],
)
def test_a_namespace_selector_never_excludes_a_cluster_scoped_object_and_judges_a_namespace_by_its_labels(
    obj: dict[str, Any], judged: bool
) -> None:
    """admissionregistration/v1 MatchResources.namespaceSelector: "If the object itself is a namespace, the matching
    is performed on object.metadata.labels. If the object is another cluster scoped resource, it never skips the
    policy." (pkg/admission/plugin/webhook/predicates/namespace/matcher.go MatchNamespaceSelector.)"""
    policy = _policy({"matchConstraints": {"resourceRules": EVERYTHING}, "validations": [{"expression": "false"}]})
    binding = _binding({"matchResources": {"namespaceSelector": {"matchLabels": {"tier": "prod"}}}})
    assert _messages(policy, binding, obj) == (["failed expression: false"] if judged else [])


def test_a_kind_whose_scope_is_unknown_is_an_error_where_a_namespace_selector_applies_unless_its_crd_tells() -> None:
    """The same rule, for a custom kind: its CustomResourceDefinition's spec.scope says whether it has a namespace;
    without one among the manifests, the check cannot tell whether the selector may exclude it."""
    policy = _policy({"matchConstraints": {"resourceRules": EVERYTHING}, "validations": [{"expression": "false"}]})
    binding = _binding({"matchResources": {"namespaceSelector": {"matchLabels": {"tier": "prod"}}}})
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(PolicyError, match="cannot tell whether Widget"):
        _messages(policy, binding, widget)
    crd = {"group": "example.com", "names": {"kind": "Widget"}, "scope": "Cluster"}
    cluster = Cluster(definitions={("example.com", "Widget"): crd})
    decisions = PolicySet.load([policy, binding]).judge(widget, "test", {}, cluster=cluster)
    assert [d.message for d in decisions] == ["failed expression: false"]


def test_a_false_match_condition_skips_the_policy_even_when_another_match_condition_errors() -> None:
    """KEP-3716 and "Matching requests: matchConditions" (docs, ValidatingAdmissionPolicy): if any match condition is
    false, the policy is skipped; only if none is false and one errors does failurePolicy decide: Fail refuses the
    request, Ignore skips the policy (pkg/admission/plugin/webhook/matchconditions/matcher.go Match)."""
    failing, false, true = "object.spec.replicas > 1", "false", "true"

    def conditions(*expressions: str, failure_policy: str = "Fail") -> list[str]:
        spec = {
            "failurePolicy": failure_policy,
            "matchConditions": [{"name": f"c{i}", "expression": e} for i, e in enumerate(expressions)],
        }
        return _messages(_policy(spec), _binding(), _config_map())

    assert conditions(failing, false) == []
    assert conditions(false, failing) == []
    (refusal,) = conditions(failing, true)
    assert refusal.startswith("policy p could not be evaluated for this object, so it is refused: ")
    assert conditions(failing, true, failure_policy="Ignore") == []
    assert conditions(true, true) == ["needs data.ok"]


def test_variables_are_lazy_so_a_failing_variable_that_nothing_reads_has_no_effect() -> None:
    """Variables are evaluated lazily, when an expression first reads one (pkg/admission/plugin/cel/composition.go:
    a lazy.MapValue of callbacks; the API reference: "variables ... lazily evaluated"): one that would fail but that no
    validation or messageExpression reads changes nothing; one that is read fails that validation, for failurePolicy."""
    variables = [{"name": "broken", "expression": "object.spec.replicas > 1"}]
    unread = {"variables": variables}
    assert _messages(_policy(unread), _binding(), _config_map({"ok": "1"})) == []
    assert _messages(_policy(unread), _binding(), _config_map()) == ["needs data.ok"]
    absorbed = {"variables": variables, "validations": [{"expression": "true || variables.broken", "message": "m"}]}
    assert _messages(_policy(absorbed), _binding(), _config_map()) == []
    read = {"variables": variables, "validations": [{"expression": "variables.broken", "message": "m"}]}
    (refusal,) = _messages(_policy(read), _binding(), _config_map())
    assert refusal.startswith("policy p could not be evaluated for this object, so it is refused: ")


def test_each_validation_is_decided_alone_so_an_error_under_ignore_leaves_the_others_to_deny() -> None:
    """Each validation gets its own decision (pkg/admission/plugin/policy/validating/validator.go Validate): under
    failurePolicy Ignore, one that fails to evaluate is admitted, and another that is false still denies."""
    validations = [
        {"expression": "object.spec.replicas > 1", "message": "never evaluated to a bool"},
        {"expression": "'ok' in object.data", "message": "needs data.ok"},
    ]
    spec = {"failurePolicy": "Ignore", "validations": validations}
    assert _messages(_policy(spec), _binding(), _config_map()) == ["needs data.ok"]
    fail = _messages(_policy({**spec, "failurePolicy": "Fail"}), _binding(), _config_map())
    assert [m.split(":")[0] for m in fail] == [
        "policy p could not be evaluated for this object, so it is refused",
        "needs data.ok",
    ]


def _request_policy(expression: str) -> dict[str, Any]:
    return _policy({"validations": [{"expression": expression, "message": "refused"}]})


@pytest.mark.parametrize(
    "expression",
    [
        "request.userInfo.username == 'system:serviceaccount:argocd:argocd-application-controller'",
        "'system:serviceaccounts:argocd' in request.userInfo.groups",
        "'system:authenticated' in request.userInfo.groups",
        "request.operation == 'CREATE' && !request.dryRun && oldObject == null",
        "request.namespace == 'team' && request.name == 'c'",
        "request.kind.kind == 'ConfigMap' && request.kind.version == 'v1' && request.resource.resource == 'configmaps'",
    ],
)
def test_request_is_argo_cd_s_application_controller_creating_the_object_unless_told_otherwise(
    expression: str,
) -> None:
    """`request` is the admission request (AdmissionRequest, made by cel.CreateAdmissionRequest in
    pkg/admission/plugin/cel): a manifest is applied by Argo CD's application controller, with its service account's
    token: username system:serviceaccount:argocd:argocd-application-controller, in the groups system:serviceaccounts,
    system:serviceaccounts:argocd and system:authenticated (docs: "Authenticating", service account tokens)."""
    assert _messages(_request_policy(expression), _binding(), _config_map({"ok": "1"})) == []


def test_request_is_what_the_caller_says_and_what_cannot_be_known_offline_is_an_error_naming_it() -> None:
    """A caller may judge the manifests as someone else's request; the uid and extra of a token, the request's options
    and an UPDATE's stored object are the cluster's: a policy that reads them cannot be judged offline."""
    policies = PolicySet.load([_request_policy("request.userInfo.username == 'alice'"), _binding()])
    assert [d.message for d in policies.judge(_config_map(), "test", {})] == ["refused"]
    assert policies.judge(_config_map(), "test", {}, Request(username="alice", groups=("devs",))) == []
    for expression, words in [
        ("request.userInfo.uid != ''", "request.userInfo.uid"),
        ("has(request.userInfo.extra)", "request.userInfo.extra"),
        ("size(request.userInfo) > 0", "request.userInfo.uid"),
        ("request.options.fieldManager == 'argocd-controller'", "request.options"),
    ]:
        with pytest.raises(PolicyError, match=words):
            _messages(_request_policy(expression), _binding(), _config_map())
    old = PolicySet.load([_request_policy("'ok' in oldObject.data"), _binding()])
    with pytest.raises(PolicyError, match="oldObject"):
        old.judge(_config_map(), "test", {}, Request(operation="UPDATE"))
    update = Request(operation="UPDATE", old_object=_config_map({"ok": "1"}))
    assert old.judge(_config_map(), "test", {}, update) == []


def test_resource_names_limit_a_rule_to_the_objects_of_those_names() -> None:
    """NamedRuleWithOperations.resourceNames: "an optional white list of names that the rule applies to. An empty set
    means that everything is allowed" (admissionregistration/v1; matching.go matchesResourceRules); in the policy's
    resourceRules and excludeResourceRules and in the binding's matchResources alike."""
    rule = {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["*"], "resources": ["configmaps"]}
    named = _policy({"matchConstraints": {"resourceRules": [{**rule, "resourceNames": ["settings"]}]}})
    settings = {**_config_map(), "metadata": {"name": "settings", "namespace": "team"}}
    assert _messages(named, _binding(), _config_map()) == []
    assert _messages(named, _binding(), settings) == ["needs data.ok"]
    excluded = _policy({"matchConstraints": {"resourceRules": [rule], "excludeResourceRules": [
        {**rule, "resourceNames": ["settings"]}]}})  # fmt: skip
    assert _messages(excluded, _binding(), settings) == []
    assert _messages(excluded, _binding(), _config_map()) == ["needs data.ok"]
    binding = _binding({"matchResources": {"resourceRules": [{**rule, "resourceNames": ["settings"]}]}})
    assert _messages(_policy({}), binding, _config_map()) == []
    assert _messages(_policy({}), binding, settings) == ["needs data.ok"]


@pytest.fixture(scope="module")
def security() -> list[dict[str, Any]]:
    """base/security as rendered: the Namespaces and LimitRanges of the service namespaces."""
    return render(ROOT / "base" / "security", ROOT)[1]


def _bare_pod(resources: dict[str, Any] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "ghcr.io/your-org/app:1"}
    if resources is not None:
        container["resources"] = resources
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "microservice-demo-prod"},
        "spec": {"containers": [container], "initContainers": [{**copy.deepcopy(container), "name": "init"}]},
    }


def test_the_limit_ranger_fills_in_a_pods_resources_before_validation_but_not_a_pod_templates(
    security: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The LimitRanger mutating admission plugin runs before validating admission and, when a Pod is created, gives
    its containers and init containers the `default` limits and `defaultRequest` requests of their namespace's
    Container LimitRanges (plugin/pkg/admission/limitranger/admission.go: SupportsAttributes, PodMutateLimitFunc).
    It acts on Pods alone: a Deployment's pod template is judged as written (docs: "Limit Ranges"). So
    resources-required refuses the Deployment and admits the bare Pod of microservice-demo-prod
    (base/security/environments/prod/limits.yaml)."""
    pod = _bare_pod()
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "microservice-demo-prod"},
        "spec": {"template": {"spec": pod["spec"]}},
    }
    path = tmp_path / "manifests.yaml"
    path.write_text(yaml.safe_dump_all([pod, deployment]))
    refused = {(d.object, d.policy) for d in run_policy_check(ROOT, [path]).denials}
    assert ("Deployment/microservice-demo-prod/d", "resources-required") in refused
    assert ("Pod/microservice-demo-prod/p", "resources-required") not in refused


def test_a_pod_is_validated_with_requests_defaulted_to_limits_then_the_limit_range_defaults(
    security: list[dict[str, Any]],
) -> None:
    """API defaulting runs when the Pod is decoded, before admission: a limit with no request is also the request
    (pkg/apis/core/v1/defaults.go SetDefaults_Pod); then the LimitRanger sets only what is still missing, and
    annotates the Pod (kubernetes.io/limit-ranger); on an UPDATE it sets nothing (SupportsAttributes)."""
    namespaces = {o["metadata"]["name"]: o for o in security if o["kind"] == "Namespace"}
    cluster = Cluster.of(security)
    pod = _bare_pod({"limits": {"cpu": "1"}})
    admitted = Target.of(pod, namespaces, Request(), cluster).obj
    assert admitted["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "1", "memory": "2Gi"},
        "requests": {"cpu": "1", "memory": "512Mi"},
    }
    assert admitted["spec"]["initContainers"][0]["resources"] == admitted["spec"]["containers"][0]["resources"]
    assert admitted["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: memory request for container app; memory limit for container app; "
        "memory request for init container init; memory limit for init container init"
    )
    bare = Target.of(_bare_pod(), namespaces, Request(), cluster).obj["spec"]["containers"][0]["resources"]
    assert bare == {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "2000m", "memory": "2Gi"}}
    updated = Target.of(pod, namespaces, Request(operation="UPDATE"), cluster).obj
    assert updated["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}
    assert "metadata" not in pod["spec"] and "requests" not in pod["spec"]["containers"][0]["resources"]


MULTI_LINE = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: p}
spec:
  matchConstraints:
    resourceRules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}
  validations:
    - expression: "'ok' in object.data"
      message: |
        needs data.ok
      messageExpression: |
        'ConfigMap "' +
          object.metadata.name +
          '" needs data.ok'
    - expression: "'ok' in object.data"
      message: static
      messageExpression: |
        'two\\nlines'
    - expression: "'ok' in object.data"
      message: static too
      messageExpression: "'x'.repeat(1)"
    - expression: "'ok' in object.data"
      messageExpression: "'  padded  '"
"""


def test_a_multi_line_message_expression_is_cel_and_a_message_with_a_line_break_falls_back_to_message() -> None:
    """messageExpression is CEL, where line breaks are whitespace; its string is trimmed and dropped if longer than
    5 KiB or if it "contains newlines" ("multi-line message denied"), and then message (trimmed), else "failed
    expression: ..." is used (pkg/admission/plugin/policy/validating/validator.go Validate; celconfig
    MaxEvaluatedMessageExpressionSizeBytes). A message with a line break is refused by the API server
    (pkg/apis/admissionregistration/validation/validation.go: "message must not contain line breaks")."""
    policy = yaml.safe_load(MULTI_LINE)
    policy["spec"]["validations"][2]["messageExpression"] = "'x' + '" + "y" * (5 * 1024) + "'"
    assert _messages(policy, _binding(), _config_map()) == [
        'ConfigMap "c" needs data.ok',
        "static",
        "static too",
        "padded",
    ]
    policy["spec"]["validations"][0]["messageExpression"] = "1"
    assert _messages(policy, _binding(), _config_map())[0] == "needs data.ok"
    policy["spec"]["validations"][0]["message"] = "needs\ndata.ok"
    with pytest.raises(PolicyError, match="message must not contain line breaks"):
        PolicySet.load([policy])


def test_admission_policies_and_their_bindings_are_never_judged_by_an_admission_policy() -> None:
    """So that a policy cannot lock itself in, the API server skips ValidatingAdmissionPolicies, their bindings and
    the mutating ones (pkg/admission/plugin/policy/generic/plugin.go, admissionResources)."""
    policy = _policy({"matchConstraints": {"resourceRules": EVERYTHING}, "validations": [{"expression": "false"}]})
    assert _messages(policy, _binding(), _binding()) == []
    assert _messages(policy, _binding(), policy) == []


@pytest.mark.parametrize(
    ("kind", "resource"),
    [("Gateway", "gateways"), ("GatewayClass", "gatewayclasses"), ("NetworkPolicy", "networkpolicies"),
     ("EnvoyProxy", "envoyproxies"), ("Ingress", "ingresses"), ("Endpoints", "endpoints"), ("Pod", "pods")],
)  # fmt: skip
def test_a_kind_is_matched_under_the_resource_name_the_api_server_serves_it_as(kind: str, resource: str) -> None:
    """A rule naming "gateways" matches a Gateway: the CRD's plural, not apimachinery's "gatewaies" guess."""
    assert resource_of(kind) == resource


@pytest.mark.parametrize("name", ["kustomization.yaml", "kustomization.yml", "Kustomization"])
def test_a_folder_with_a_kustomization_under_any_of_its_names_is_judged_rendered(tmp_path: Path, name: str) -> None:
    """As kustomize finds it: the folder is one source, its render; not each YAML file as written."""
    pod = _bare_pod()
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(pod))
    (tmp_path / name).write_text("resources: [pod.yaml]\nnamePrefix: rendered-\n")
    result = run_policy_check(ROOT, [tmp_path])
    assert result.sources == [str(tmp_path)]
    objects = {d.object for d in result.decisions}
    assert objects and all(o.startswith("Pod/microservice-demo-prod/rendered-") for o in objects)
    assert result.objections == {d for d in result.decisions if d.denies or "Warn" in d.actions}
