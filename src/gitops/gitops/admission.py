"""ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding, evaluated offline as the API server would.

The CEL is evaluated by cel-python (a CEL implementation, not Kubernetes' own). What is followed here:
``matchConstraints`` (resource rules by group, version, operation and resource; ``excludeResourceRules``; the
namespace and object selectors), the binding's ``matchResources``, ``matchConditions``, ``variables``, and each
validation's ``expression``, ``message``, ``messageExpression`` and ``reason``, then the binding's
``validationActions`` and the policy's ``failurePolicy`` for expressions that fail to evaluate.

A manifest is judged as a CREATE by an anonymous request, with no old object. What cannot be evaluated faithfully
raises PolicyError instead of passing: ``paramKind`` and binding ``paramRef`` (no parameter objects offline), the
``authorizer`` variable, and any Kubernetes CEL extension cel-python lacks (``split``, ``url``, ``quantity``,
optional ``?.`` field selection...). Write policies without them, or the check says it cannot judge them.

(No library implements these admission semantics in Python, so they are written here; cel-python does the CEL.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import celpy
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from gitops.findings import object_id

# Kinds without a namespace (those this repository, its charts and its policies use): their namespace selector
# matches unless the object is itself a Namespace, which is matched on its own labels.
CLUSTER_SCOPED = frozenset(
    {
        "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
        "GatewayClass", "ClusterIssuer", "PersistentVolume", "StorageClass", "PriorityClass", "IngressClass",
        "RuntimeClass", "TektonConfig",
    }
)  # fmt: skip
ACTIONS = ("Deny", "Warn", "Audit")
_ENVIRONMENT = celpy.Environment()


class PolicyError(Exception):
    """A policy or binding that this check cannot evaluate faithfully; the message says which and why."""


@dataclass(frozen=True)
class Decision:
    """One validation that failed for one object under one binding."""

    source: str
    object: str
    policy: str
    binding: str
    actions: tuple[str, ...]
    message: str

    @property
    def denies(self) -> bool:
        return "Deny" in self.actions

    def __str__(self) -> str:
        return f"{self.source}: {self.object}: {self.policy}: {self.message} [{', '.join(self.actions)}]"


def resource_of(kind: str) -> str:
    """A kind's resource name, the way Kubernetes guesses it (apimachinery's UnsafeGuessKindToResource): lower
    case, then "es" after an "s", "ies" for a final "y", else "s"."""
    lower = kind.lower()
    if lower.endswith("s"):
        return lower + "es"
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    return lower + "s"


def _group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _listed(value: str, allowed: Iterable[str]) -> bool:
    allowed = list(allowed)
    return "*" in allowed or value in allowed


def _selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector; an absent or empty one selects everything."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise PolicyError(f"unknown label selector operator {operator!r}")
    return True


def _rule_matches(rule: Mapping[str, Any], group: str, version: str, resource: str, namespaced: bool) -> bool:
    resources = [r for r in rule.get("resources") or [] if "/" not in r or r == "*/*"]  # subresources: not manifests
    scope = rule.get("scope", "*")
    return (
        _listed(group, rule.get("apiGroups") or [])
        and _listed(version, rule.get("apiVersions") or [])
        and _listed("CREATE", rule.get("operations") or [])
        and ("*" in resources or "*/*" in resources or resource in resources)
        and (scope == "*" or scope == ("Namespaced" if namespaced else "Cluster"))
    )


@dataclass(frozen=True)
class Target:
    """An object as an admission request would present it: its resource, its namespace and that namespace."""

    obj: Mapping[str, Any]
    namespace: Mapping[str, Any] | None  # the Namespace object, None for cluster-scoped objects

    @property
    def namespaced(self) -> bool:
        return self.obj.get("kind") not in CLUSTER_SCOPED

    def labels(self) -> Mapping[str, str]:
        return (self.obj.get("metadata") or {}).get("labels") or {}

    def namespace_labels(self) -> Mapping[str, str] | None:
        """What a namespaceSelector is matched against; None where it does not apply."""
        if self.obj.get("kind") == "Namespace":
            name = (self.obj.get("metadata") or {}).get("name", "")
            return {**self.labels(), "kubernetes.io/metadata.name": name}
        if self.namespace is None:
            return None
        return (self.namespace.get("metadata") or {}).get("labels") or {}

    @cached_property
    def group_version_resource(self) -> tuple[str, str, str]:
        group, version = _group_version(str(self.obj.get("apiVersion", "")))
        return group, version, resource_of(str(self.obj.get("kind", "")))

    @cached_property
    def activation(self) -> Mapping[str, Any]:
        """The CEL variables of the request, converted once for every policy that judges this object."""
        group, version, resource = self.group_version_resource
        metadata = self.obj.get("metadata") or {}
        request = {
            "operation": "CREATE",
            "kind": {"group": group, "version": version, "kind": str(self.obj.get("kind", ""))},
            "resource": {"group": group, "version": version, "resource": resource},
            "name": metadata.get("name", ""),
            "namespace": metadata.get("namespace", "") if self.namespaced else "",
            "userInfo": {},
            "dryRun": False,
        }
        return {
            "object": json_to_cel(dict(self.obj)),
            "oldObject": None,
            "params": None,
            "request": json_to_cel(request),
            "namespaceObject": json_to_cel(dict(self.namespace)) if self.namespace is not None else None,
        }


def _matches(resources: Mapping[str, Any] | None, target: Target) -> bool:
    """matchConstraints or a binding's matchResources; an absent one matches (a binding then narrows nothing)."""
    if not resources:
        return True
    group, version, resource = target.group_version_resource
    rules = resources.get("resourceRules")
    if rules is not None and not any(_rule_matches(r, group, version, resource, target.namespaced) for r in rules):
        return False
    for rule in resources.get("excludeResourceRules") or []:
        if _rule_matches(rule, group, version, resource, target.namespaced):
            return False
    namespace_labels = target.namespace_labels()
    if namespace_labels is not None and not _selects(resources.get("namespaceSelector"), namespace_labels):
        return False
    return _selects(resources.get("objectSelector"), target.labels())


@dataclass
class _Expression:
    where: str
    text: str
    program: Any = field(repr=False)

    @classmethod
    def compile(cls, where: str, text: str) -> _Expression:
        if "authorizer" in text:
            raise PolicyError(f"{where}: uses `authorizer`, which has no meaning offline")
        try:
            return cls(where, text, _ENVIRONMENT.program(_ENVIRONMENT.compile(text)))
        except CELParseError as exc:
            raise PolicyError(
                f"{where}: cel-python cannot parse {text!r} ({exc}); Kubernetes' CEL extensions such as `?.` "
                "optional fields are not available here"
            ) from None

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        try:
            return self.program.evaluate(activation)
        except CELEvalError as exc:
            if "undeclared reference" in str(exc):
                missing = exc.args[2][0] if len(exc.args) > 2 and exc.args[2] else "?"
                raise PolicyError(
                    f"{self.where}: {missing!r} is not available in cel-python (a Kubernetes CEL extension?): "
                    "this policy cannot be judged here"
                ) from None
            raise


def _short(exc: Exception) -> str:
    """An evaluation error's own words, without the values cel-python appends (whole objects, at times)."""
    text = str(exc.args[0]) if exc.args else str(exc)
    return text if len(text) <= 200 else text[:200] + "..."


class _EvaluationFailed(Exception):
    """An expression failed for this object: under failurePolicy Fail, the request is refused."""


@dataclass
class Policy:
    name: str
    failure_policy: str
    match_constraints: Mapping[str, Any]
    match_conditions: list[_Expression]
    variables: list[tuple[str, _Expression]]
    validations: list[tuple[_Expression, str | None, _Expression | None]]

    @classmethod
    def load(cls, obj: Mapping[str, Any]) -> Policy:
        name = obj["metadata"]["name"]
        spec = obj.get("spec") or {}
        where = f"ValidatingAdmissionPolicy {name}"
        if spec.get("paramKind"):
            raise PolicyError(f"{where}: paramKind needs parameter objects, which this check does not read")
        if spec.get("auditAnnotations"):
            raise PolicyError(f"{where}: auditAnnotations are not evaluated by this check")
        validations = []
        for index, validation in enumerate(spec.get("validations") or []):
            at = f"{where} validations[{index}]"
            message_expression = validation.get("messageExpression")
            validations.append(
                (
                    _Expression.compile(at, validation["expression"]),
                    validation.get("message"),
                    _Expression.compile(f"{at}.messageExpression", message_expression) if message_expression else None,
                )
            )
        if not validations:
            raise PolicyError(f"{where}: no validations")
        return cls(
            name=name,
            failure_policy=spec.get("failurePolicy", "Fail"),
            match_constraints=spec.get("matchConstraints") or {},
            match_conditions=[
                _Expression.compile(f"{where} matchConditions {c['name']}", c["expression"])
                for c in spec.get("matchConditions") or []
            ],
            variables=[
                (v["name"], _Expression.compile(f"{where} variables.{v['name']}", v["expression"]))
                for v in spec.get("variables") or []
            ],
            validations=validations,
        )

    def failures(self, target: Target) -> list[str] | None:
        """The messages of the validations the object fails; None if the policy does not apply to it."""
        activation = dict(target.activation)  # this policy's variables are added to its own copy
        try:
            for condition in self.match_conditions:
                if not self._boolean(condition, activation):
                    return None
            variables = celpy.celtypes.MapType()
            activation["variables"] = variables
            for name, expression in self.variables:
                variables[celpy.celtypes.StringType(name)] = expression.evaluate(activation)
            messages = []
            for expression, message, message_expression in self.validations:
                if not self._boolean(expression, activation):
                    messages.append(self._message(expression, message, message_expression, activation))
            return messages
        except (CELEvalError, _EvaluationFailed) as exc:
            if self.failure_policy == "Ignore":
                return None
            return [f"policy {self.name} could not be evaluated for this object, so it is refused: {_short(exc)}"]

    @staticmethod
    def _boolean(expression: _Expression, activation: Mapping[str, Any]) -> bool:
        value = expression.evaluate(activation)
        if not isinstance(value, celpy.celtypes.BoolType):
            raise _EvaluationFailed(f"{expression.where} returned {type(value).__name__}, not a bool")
        return bool(value)

    @staticmethod
    def _message(
        expression: _Expression, message: str | None, message_expression: _Expression | None, activation: Any
    ) -> str:
        # As the API server does: messageExpression if it yields a non-empty string, else message, else the
        # expression itself.
        if message_expression is not None:
            try:
                value = message_expression.evaluate(activation)
            except CELEvalError:
                value = None
            if isinstance(value, str) and value.strip():  # celtypes.StringType is a str too
                return str(value)
        return message or f"failed expression: {expression.text}"


@dataclass(frozen=True)
class Binding:
    name: str
    policy: str
    actions: tuple[str, ...]
    match_resources: Mapping[str, Any]

    @classmethod
    def load(cls, obj: Mapping[str, Any]) -> Binding:
        name = obj["metadata"]["name"]
        spec = obj.get("spec") or {}
        if spec.get("paramRef"):
            raise PolicyError(f"ValidatingAdmissionPolicyBinding {name}: paramRef is not read by this check")
        actions = tuple(spec.get("validationActions") or [])
        unknown = [a for a in actions if a not in ACTIONS]
        if not actions or unknown:
            raise PolicyError(f"ValidatingAdmissionPolicyBinding {name}: validationActions {list(actions)}")
        return cls(name, spec["policyName"], actions, spec.get("matchResources") or {})


@dataclass
class PolicySet:
    policies: dict[str, Policy]
    bindings: list[Binding]

    @classmethod
    def load(cls, objects: Iterable[Mapping[str, Any]]) -> PolicySet:
        objects = list(objects)
        policies = {
            p.name: p for p in (Policy.load(o) for o in objects if o.get("kind") == "ValidatingAdmissionPolicy")
        }
        bindings = [Binding.load(o) for o in objects if o.get("kind") == "ValidatingAdmissionPolicyBinding"]
        for binding in bindings:
            if binding.policy not in policies:
                raise PolicyError(f"ValidatingAdmissionPolicyBinding {binding.name}: no policy {binding.policy!r}")
        return cls(policies, bindings)

    def judge(self, obj: Mapping[str, Any], source: str, namespaces: Mapping[str, Mapping[str, Any]]) -> list[Decision]:
        target = Target(obj, _namespace_of(obj, namespaces))
        decisions = []
        for binding in self.bindings:
            policy = self.policies[binding.policy]
            if not (_matches(policy.match_constraints, target) and _matches(binding.match_resources, target)):
                continue
            for message in policy.failures(target) or []:
                decisions.append(
                    Decision(source, object_id(dict(obj)), policy.name, binding.name, binding.actions, message)
                )
        return decisions


def _namespace_of(obj: Mapping[str, Any], namespaces: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The object's Namespace as the API server has it: the one the repository declares, or a bare one (which the
    API server still labels with kubernetes.io/metadata.name)."""
    if obj.get("kind") in CLUSTER_SCOPED:
        return None
    name = (obj.get("metadata") or {}).get("namespace") or "default"
    declared = namespaces.get(name) or {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    metadata = dict(declared.get("metadata") or {})
    metadata["labels"] = {**(metadata.get("labels") or {}), "kubernetes.io/metadata.name": name}
    return {**declared, "metadata": metadata}
