"""The admission semantics `gitops policy-check` follows, each shown on a small policy of its own."""

from __future__ import annotations

from typing import Any

import pytest
from gitops.admission import PolicyError, PolicySet, resource_of


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
