"""ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding, evaluated offline as the API server would.

The CEL is evaluated by cel-python (a CEL implementation, not Kubernetes' own); the admission semantics around it are
written here after the API server's own code (k8s.io/apiserver/pkg/admission/plugin/policy/..., cited where each is
followed):

- matching (policy/matching/matching.go, webhook/predicates/rules/rules.go): resource rules by group, version,
  operation, resource (subresource ``/*`` included), scope and ``resourceNames``; ``excludeResourceRules``;
  ``matchPolicy`` (default Equivalent: a rule naming another version of the same group and resource matches, and the
  object is judged as that version); the namespace selector (never excludes a cluster-scoped object, and judges a
  Namespace by its own labels) and the object selector; admission policies and bindings themselves are never judged;
- ``matchConditions`` (webhook/matchconditions/matcher.go): a false condition skips the policy whatever the others do;
  otherwise an error is the failurePolicy's;
- ``variables``, evaluated lazily and once (cel/composition.go): one that no expression reads has no effect;
- each validation on its own, an error in one being the failurePolicy's (validating/validator.go), and its message:
  ``messageExpression`` trimmed, dropped if over 5 KiB or multi-line, then ``message``, then the expression;
- the object as validating admission receives it: for a Pod, requests defaulted to limits (API defaulting) and, on
  CREATE, the LimitRanger's defaults from the namespace's LimitRanges (mutating admission runs first).

A manifest is judged as Argo CD's application controller would send it (a CREATE, by its service account); see
Request. What cannot be evaluated faithfully raises PolicyError instead of passing: ``paramKind`` and binding
``paramRef`` (no parameter objects offline), ``auditAnnotations``, the ``authorizer`` variable, anything of the request
that cannot be known offline (``request.userInfo.uid`` and ``extra``, ``request.options``, ``oldObject`` of an UPDATE
without one), a kind whose scope the check cannot tell where it matters, a version conversion it cannot do, and any
Kubernetes CEL extension cel-python lacks (``split``, ``url``, ``quantity``, optional ``?.`` field selection...).

(No library implements these admission semantics in Python, so they are written here; cel-python does the CEL.)
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from gitops.findings import object_id


def _kinds(table: Mapping[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset((group, kind) for group, kinds in table.items() for kind in kinds.split())


# (group, kind) of the kinds without a namespace: the API server's own (`kubectl api-resources --namespaced=false`)
# and those of the CRDs the platform installs. CustomResourceDefinitions among the manifests add theirs.
CLUSTER_SCOPED = _kinds(
    {
        "": "Namespace Node PersistentVolume ComponentStatus",
        "admissionregistration.k8s.io": "ValidatingAdmissionPolicy ValidatingAdmissionPolicyBinding "
        "MutatingAdmissionPolicy MutatingAdmissionPolicyBinding ValidatingWebhookConfiguration "
        "MutatingWebhookConfiguration",
        "apiextensions.k8s.io": "CustomResourceDefinition",
        "apiregistration.k8s.io": "APIService",
        "authentication.k8s.io": "TokenReview SelfSubjectReview",
        "authorization.k8s.io": "SubjectAccessReview SelfSubjectAccessReview SelfSubjectRulesReview",
        "certificates.k8s.io": "CertificateSigningRequest ClusterTrustBundle",
        "flowcontrol.apiserver.k8s.io": "FlowSchema PriorityLevelConfiguration",
        "networking.k8s.io": "IngressClass IPAddress ServiceCIDR",
        "node.k8s.io": "RuntimeClass",
        "rbac.authorization.k8s.io": "ClusterRole ClusterRoleBinding",
        "resource.k8s.io": "DeviceClass ResourceSlice DeviceTaintRule",
        "scheduling.k8s.io": "PriorityClass",
        "storage.k8s.io": "CSIDriver CSINode StorageClass VolumeAttachment VolumeAttributesClass",
        "storagemigration.k8s.io": "StorageVersionMigration",
        "gateway.networking.k8s.io": "GatewayClass",
        "cert-manager.io": "ClusterIssuer",
        "operator.tekton.dev": "TektonConfig",
        "triggers.tekton.dev": "ClusterTriggerBinding ClusterInterceptor",
    }
)
# The namespaced ones, likewise. A kind in neither table nor among the manifests' CRDs has a scope the check cannot
# tell: where that matters (a namespace selector, a scoped rule, request.namespace, namespaceObject), PolicyError.
NAMESPACED = _kinds(
    {
        "": "Pod Service ConfigMap Secret ServiceAccount Endpoints Event LimitRange ResourceQuota "
        "PersistentVolumeClaim PodTemplate ReplicationController Binding",
        "apps": "Deployment StatefulSet DaemonSet ReplicaSet ControllerRevision",
        "batch": "Job CronJob",
        "autoscaling": "HorizontalPodAutoscaler",
        "policy": "PodDisruptionBudget",
        "networking.k8s.io": "Ingress NetworkPolicy",
        "rbac.authorization.k8s.io": "Role RoleBinding",
        "coordination.k8s.io": "Lease",
        "discovery.k8s.io": "EndpointSlice",
        "events.k8s.io": "Event",
        "storage.k8s.io": "CSIStorageCapacity",
        "authorization.k8s.io": "LocalSubjectAccessReview",
        "resource.k8s.io": "ResourceClaim ResourceClaimTemplate",
        "gateway.networking.k8s.io": "Gateway HTTPRoute GRPCRoute TLSRoute TCPRoute UDPRoute ReferenceGrant "
        "BackendTLSPolicy ListenerSet",
        "gateway.networking.x-k8s.io": "XListenerSet XBackendTrafficPolicy",
        "argoproj.io": "Application ApplicationSet AppProject",
        "tekton.dev": "Task Pipeline TaskRun PipelineRun StepAction CustomRun",
        "triggers.tekton.dev": "EventListener TriggerBinding TriggerTemplate Trigger Interceptor",
        "cert-manager.io": "Certificate CertificateRequest Issuer",
        "monitoring.coreos.com": "ServiceMonitor PodMonitor PrometheusRule",
        "autoscaling.k8s.io": "VerticalPodAutoscaler",
    }
)
# Groups whose versions differ by apiVersion alone: CRDs whose conversion strategy is None ("the converter only
# changes the apiVersion and would not touch any other field", apiextensions.k8s.io/v1 CustomResourceConversion), as
# Gateway API's are. CRDs among the manifests add theirs. Built-in groups convert through internal types: not here.
CONVERTED_BY_API_VERSION = frozenset({"gateway.networking.k8s.io", "gateway.networking.x-k8s.io"})
# What the API server never judges by an admission policy, lest a policy lock itself in (policy/generic/plugin.go,
# admissionResources).
EXEMPT = _kinds(
    {
        "admissionregistration.k8s.io": "ValidatingAdmissionPolicy ValidatingAdmissionPolicyBinding "
        "MutatingAdmissionPolicy MutatingAdmissionPolicyBinding"
    }
)
ACTIONS = ("Deny", "Warn", "Audit")
ARGO_CD_CONTROLLER = "system:serviceaccount:argocd:argocd-application-controller"
# A service account's groups (the API server adds system:authenticated to every authenticated user).
ARGO_CD_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:argocd", "system:authenticated")
MAX_MESSAGE_BYTES = 5 * 1024  # celconfig.MaxEvaluatedMessageExpressionSizeBytes
# What Go's strings.TrimSpace trims (unicode.IsSpace); Python's str.strip() would also trim \x1c-\x1f.
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
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


def _go_trim(text: str) -> str:
    return text.strip(_GO_SPACE)


# What cannot be known offline. ---------------------------------------------------------------------------------------


class _Unknowable(Exception):
    """Raised through cel-python where an expression reads what cannot be known offline; the words say what."""


class _PartlyKnown(celtypes.MapType):
    """A map of the request some of whose entries (or all, with `every`) cannot be known offline. Reading one of
    them, or the map as a whole (its size, its keys, a comparison), raises _Unknowable instead of guessing."""

    def __init__(self, known: Mapping[str, Any], unknown: Mapping[str, str], every: str = "") -> None:
        super().__init__({celtypes.StringType(key): value for key, value in known.items()})
        self._unknown = dict(unknown)
        self._every = every

    def _entry(self, key: object) -> None:
        if self._every or str(key) in self._unknown:
            raise _Unknowable(self._every or self._unknown[str(key)])

    def _whole(self) -> None:
        if self._every or self._unknown:
            raise _Unknowable(self._every or " and ".join(self._unknown.values()))

    def __getitem__(self, key: Any) -> Any:
        self._entry(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._entry(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self._entry(key)
        return super().__contains__(key)

    def __iter__(self) -> Iterator[Any]:
        self._whole()
        return super().__iter__()

    def __len__(self) -> int:
        self._whole()
        return super().__len__()

    def __eq__(self, other: Any) -> bool:
        self._whole()
        return super().__eq__(other)

    def __ne__(self, other: Any) -> bool:
        self._whole()
        return super().__ne__(other)

    __hash__ = None  # type: ignore[assignment]


def _opaque(what: str) -> _PartlyKnown:
    return _PartlyKnown({}, {}, every=what)


@dataclass(frozen=True)
class Request:
    """The admission request a manifest arrives in, as `request` (and `oldObject`) show it to the policies. By
    default: a CREATE by Argo CD's application controller, with its service account's token. What the caller leaves
    as None cannot be known offline, and a policy that reads it cannot be judged (PolicyError)."""

    operation: str = "CREATE"
    username: str = ARGO_CD_CONTROLLER
    groups: tuple[str, ...] = ARGO_CD_GROUPS
    uid: str | None = None  # the service account's uid, the cluster's
    extra: Mapping[str, Sequence[str]] | None = None  # the token's pod, node and credential id
    dry_run: bool = False
    old_object: Mapping[str, Any] | None = None  # an UPDATE's stored object

    def __post_init__(self) -> None:
        if self.operation not in ("CREATE", "UPDATE"):
            raise PolicyError(f"operation {self.operation!r}: manifests are judged as a CREATE or an UPDATE")

    def user_info(self) -> _PartlyKnown:
        known: dict[str, Any] = {"username": json_to_cel(self.username), "groups": json_to_cel(list(self.groups))}
        unknown = {}
        for key, value in (("uid", self.uid), ("extra", self.extra)):
            if value is None:
                unknown[key] = f"request.userInfo.{key} (the requester's token's, the cluster's)"
            else:
                known[key] = json_to_cel(value if isinstance(value, str) else {k: list(v) for k, v in value.items()})
        return _PartlyKnown(known, unknown)

    def old(self) -> Any:
        if self.operation == "CREATE":
            return None
        if self.old_object is None:
            return _opaque("oldObject (the stored object an UPDATE replaces)")
        return json_to_cel(dict(self.old_object))


ARGO_CD = Request()


# The cluster, as far as the manifests tell it. ----------------------------------------------------------------------


def _group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _kind_of(obj: Mapping[str, Any]) -> tuple[str, str]:
    return _group_version(str(obj.get("apiVersion", "")))[0], str(obj.get("kind", ""))


@dataclass(frozen=True)
class Cluster:
    """What the check knows of the cluster besides Namespaces, from the manifests it is given: each namespace's
    LimitRanges, and the CustomResourceDefinitions (a custom kind's scope and conversion)."""

    limit_ranges: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    definitions: Mapping[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, objects: Iterable[Mapping[str, Any]]) -> Cluster:
        limit_ranges: dict[str, dict[str, Mapping[str, Any]]] = {}  # namespace -> name -> the last one given
        definitions = {}
        for obj in objects:
            if _kind_of(obj) == ("", "LimitRange"):
                metadata = obj.get("metadata") or {}
                limit_ranges.setdefault(metadata.get("namespace") or "default", {})[str(metadata.get("name"))] = obj
            elif _kind_of(obj) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
                spec = obj.get("spec") or {}
                definitions[(str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", "")))] = spec
        return cls({namespace: tuple(named.values()) for namespace, named in limit_ranges.items()}, definitions)

    def cluster_scoped(self, group: str, kind: str) -> bool | None:
        """Whether a kind has no namespace; None if the check cannot tell."""
        definition = self.definitions.get((group, kind))
        if definition is not None:
            return definition.get("scope") == "Cluster"
        if (group, kind) in CLUSTER_SCOPED:
            return True
        return False if (group, kind) in NAMESPACED else None

    def converts_by_api_version(self, group: str, kind: str) -> bool:
        """Whether the API server converts this kind between versions by changing apiVersion alone."""
        definition = self.definitions.get((group, kind))
        if definition is not None:
            return str((definition.get("conversion") or {}).get("strategy", "None")) == "None"
        return group in CONVERTED_BY_API_VERSION


# The object as validating admission receives it: API defaulting on decode, then mutating admission. ----------------
# Applied here: a Pod's resources (SetDefaults_Pod, then the LimitRanger) and a Namespace's name label
# (SetDefaults_Namespace). Not applied: the rest of API defaulting (imagePullPolicy, restartPolicy, probe periods,
# `resources: {}`...) and quantity canonicalisation ("1000m" is stored as "1"), which no policy here reads.
# The LimitRanger acts on Pods alone, when they are created (plugin/pkg/admission/limitranger, SupportsAttributes: kind
# Pod, no subresource, not on UPDATE): a Deployment's, a Job's or any other pod template is judged as written, with no
# LimitRange defaults, because the LimitRanger fills in the Pods a controller later makes from it, not the template.


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers API defaulting and the LimitRanger touch: not ephemeral ones."""
    spec = pod.get("spec") or {}
    return [c for key in ("containers", "initContainers") for c in spec.get(key) or [] if isinstance(c, dict)]


def _default_requests_to_limits(pod: dict[str, Any]) -> None:
    """SetDefaults_Pod (pkg/apis/core/v1/defaults.go), on decode: a limit with no request is also the request."""
    for container in _containers(pod):
        resources = container.get("resources") or {}
        limits = resources.get("limits") or {}
        if limits:
            requests = resources.setdefault("requests", {})
            for name, quantity in limits.items():
                requests.setdefault(name, quantity)


def _limit_range_defaults(limit_range: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(requests, limits) the LimitRanger fills in (defaultContainerResourceRequirements), of the LimitRange as the API
    server stores it (SetDefaults_LimitRangeItem: default from max, defaultRequest from default, then from min)."""
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        if item.get("type") == "Container":
            default = {**(item.get("max") or {}), **(item.get("default") or {})}
            limits.update(default)
            requests.update({**(item.get("min") or {}), **default, **(item.get("defaultRequest") or {})})
    return requests, limits


def _fill(container: dict[str, Any], defaults: Mapping[str, Any], key: str) -> list[str]:
    """mergeContainerResources for requests or limits: the resource names it set."""
    present = (container.get("resources") or {}).get(key) or {}
    missing = {name: quantity for name, quantity in defaults.items() if name not in present}
    if missing:
        container.setdefault("resources", {}).setdefault(key, {}).update(missing)
    return sorted(missing)


def _apply_limit_range(pod: dict[str, Any], limit_range: Mapping[str, Any]) -> bool:
    """PodMutateLimitFunc: fill in what the containers lack and annotate the Pod as the LimitRanger does; whether
    anything was set."""
    requests, limits = _limit_range_defaults(limit_range)
    spec = pod.get("spec") or {}
    notes = []
    for key, what in (("containers", "container"), ("initContainers", "init container")):
        for container in spec.get(key) or []:
            for defaults, kind in ((requests, "requests"), (limits, "limits")):
                names = _fill(container, defaults, kind)
                if names:
                    notes.append(f"{', '.join(names)} {kind[:-1]} for {what} {container.get('name', '')}")
    if notes:
        annotations = pod.setdefault("metadata", {}).setdefault("annotations", {})
        annotations["kubernetes.io/limit-ranger"] = "LimitRanger plugin set: " + "; ".join(notes)
    return bool(notes)


def _admitted_pod(
    pod: Mapping[str, Any], limit_ranges: Sequence[Mapping[str, Any]], request: Request
) -> dict[str, Any]:
    admitted = copy.deepcopy(dict(pod))
    _default_requests_to_limits(admitted)
    if request.operation != "CREATE":
        return admitted
    applied = [lr for lr in limit_ranges if _apply_limit_range(admitted, lr)]
    if len(applied) > 1:
        names = ", ".join(str((lr.get("metadata") or {}).get("name")) for lr in applied)
        raise PolicyError(
            f"{object_id(dict(pod))}: LimitRanges {names} each set defaults; the LimitRanger applies them in an order "
            "this check cannot know"
        )
    return admitted


def _admitted(obj: Mapping[str, Any], namespace: str, cluster: Cluster, request: Request) -> Mapping[str, Any]:
    """The object as validating admission receives it."""
    kind = _kind_of(obj)
    if kind == ("", "Pod"):
        return _admitted_pod(obj, cluster.limit_ranges.get(namespace, ()), request)
    name = (obj.get("metadata") or {}).get("name")
    if kind == ("", "Namespace") and name:
        metadata = dict(obj.get("metadata") or {})
        metadata["labels"] = {**(metadata.get("labels") or {}), "kubernetes.io/metadata.name": name}
        return {**obj, "metadata": metadata}
    return obj


def _namespace_of(name: str, namespaces: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any]:
    """A Namespace as the API server has it: the one the repository declares, or a bare one (which the API server
    still labels with kubernetes.io/metadata.name)."""
    declared = namespaces.get(name) or {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    metadata = dict(declared.get("metadata") or {})
    metadata["labels"] = {**(metadata.get("labels") or {}), "kubernetes.io/metadata.name": name}
    return {**declared, "metadata": metadata}


# Matching. ------------------------------------------------------------------------------------------------------------


# Kinds whose resource name no spelling rule gives (discovery: `kubectl api-resources`).
IRREGULAR_RESOURCES = {"endpoints": "endpoints"}


def resource_of(kind: str) -> str:
    """A kind's resource name, as the API server serves it: lower case, then "es" after an "s", "ies" for a "y"
    after a consonant, else "s" (Gateway is "gateways", NetworkPolicy "networkpolicies"). apimachinery's
    UnsafeGuessKindToResource turns every final "y" into "ies", but what matters here is the name the resource
    is served under, which the CRDs and the built-in API define ("gateways": gateway.networking.k8s.io's CRD)."""
    lower = kind.lower()
    if lower in IRREGULAR_RESOURCES:
        return IRREGULAR_RESOURCES[lower]
    if lower.endswith("s"):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):
        return lower[:-1] + "ies"
    return lower + "s"


def _listed(value: str, allowed: Iterable[str]) -> bool:
    allowed = list(allowed)
    return "*" in allowed or value in allowed


def _empty(selector: Mapping[str, Any] | None) -> bool:
    return not selector or not (selector.get("matchLabels") or selector.get("matchExpressions"))


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector; an absent or empty one selects everything."""
    if selector is None or _empty(selector):
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


@dataclass
class Target:
    """An object as an admission request presents it: its kind and resource, its scope and its namespace."""

    obj: Mapping[str, Any]  # as validating admission receives it
    request: Request
    cluster_scoped: bool | None  # None: the check cannot tell
    namespace: Mapping[str, Any] | None  # the Namespace object of a namespaced object
    _activations: dict[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)

    @classmethod
    def of(
        cls, obj: Mapping[str, Any], namespaces: Mapping[str, Mapping[str, Any]], request: Request, cluster: Cluster
    ) -> Target:
        scoped = cluster.cluster_scoped(*_kind_of(obj))
        name = (obj.get("metadata") or {}).get("namespace") or "default"
        namespace = _namespace_of(name, namespaces) if scoped is False else None
        return cls(_admitted(obj, name, cluster, request), request, scoped, namespace)

    @property
    def group(self) -> str:
        return _kind_of(self.obj)[0]

    @property
    def version(self) -> str:
        return _group_version(str(self.obj.get("apiVersion", "")))[1]

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def resource(self) -> str:
        return resource_of(self.kind)

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name") or "")

    @property
    def is_namespace(self) -> bool:
        return (self.group, self.kind) == ("", "Namespace")

    def labels(self) -> Mapping[str, str]:
        return (self.obj.get("metadata") or {}).get("labels") or {}

    def request_namespace(self) -> str:
        """The request's namespace: a namespaced object's, a Namespace's own name (rules.go), else none."""
        if self.is_namespace:
            return self.name
        return str((self.namespace.get("metadata") or {}).get("name")) if self.namespace is not None else ""

    def in_selected_namespace(self, selector: Mapping[str, Any] | None) -> bool:
        """MatchNamespaceSelector (webhook/predicates/namespace/matcher.go): a Namespace by its own labels; a
        cluster-scoped object is never excluded."""
        if _empty(selector):
            return True
        if self.is_namespace:
            return selects(selector, self.labels())
        if self.cluster_scoped is None:
            raise PolicyError(
                f"{object_id(dict(self.obj))}: a namespaceSelector applies to it, and this check cannot tell whether "
                f"{self.kind} ({self.group or 'core'}) has a namespace (the API server never excludes a cluster-scoped "
                "object by one); add its CustomResourceDefinition to the manifests"
            )
        if self.namespace is None:
            return True
        return selects(selector, (self.namespace.get("metadata") or {}).get("labels") or {})

    def in_scope(self, scope: str) -> bool:
        """A rule's scope (rules.go): a Namespace object is cluster-scoped."""
        if scope == "*":
            return True
        if self.cluster_scoped is None and not self.is_namespace:
            raise PolicyError(
                f"{object_id(dict(self.obj))}: a rule of scope {scope} names it, and this check cannot tell whether "
                f"{self.kind} ({self.group or 'core'}) has a namespace; add its CustomResourceDefinition"
            )
        return scope == ("Cluster" if self.cluster_scoped or self.is_namespace else "Namespaced")

    def activation(self, version: str) -> Mapping[str, Any]:
        """The CEL variables of the request with the object as `version` (its own, or the one matchPolicy Equivalent
        converted it to), converted once for every policy that judges it so."""
        if version not in self._activations:
            obj = self.obj
            if version != self.version:  # conversion by apiVersion alone, checked by the caller
                obj = {**obj, "apiVersion": f"{self.group}/{version}" if self.group else version}
            self._activations[version] = {
                "object": json_to_cel(dict(obj)),
                "oldObject": self.request.old(),
                "params": None,
                "request": self._request(version),
                "namespaceObject": self._namespace_object(),
            }
        return self._activations[version]

    def _namespace_object(self) -> Any:
        if self.cluster_scoped is None and not self.is_namespace:
            return _opaque(f"namespaceObject (whether {self.kind} has a namespace is not known here)")
        return json_to_cel(dict(self.namespace)) if self.namespace is not None else None

    def _request(self, version: str) -> _PartlyKnown:
        """request, as cel.CreateAdmissionRequest makes it and as it is converted to a map: empty fields (name,
        namespace, subResource) omitted, so that reading one is an error, as in the API server."""
        kind = {"group": self.group, "version": self.version, "kind": self.kind}
        resource = {"group": self.group, "version": self.version, "resource": self.resource}
        fields: dict[str, Any] = {
            "kind": {**kind, "version": version},
            "resource": {**resource, "version": version},
            "requestKind": kind,
            "requestResource": resource,
            "operation": self.request.operation,
            "dryRun": self.request.dry_run,
        }
        namespace = self.request_namespace()
        for key, value in (("name", self.name), ("namespace", namespace)):
            if value:
                fields[key] = value
        known: dict[str, Any] = {key: json_to_cel(value) for key, value in fields.items()}
        known["userInfo"] = self.request.user_info()
        unknown = {"options": "request.options (the options of Argo CD's request)"}
        if self.cluster_scoped is None and not self.is_namespace:
            unknown["namespace"] = f"request.namespace (whether {self.kind} has a namespace is not known here)"
        return _PartlyKnown(known, unknown)


def _names_resource(entry: str, resource: str) -> bool:
    """A rule's resource entry, "resource[/subresource]", naming the resource itself (a manifest is no subresource):
    "*", the resource, or either with "/*" (rules.go resource())."""
    name, _, subresource = entry.partition("/")
    return name in ("*", resource) and subresource in ("*", "")


def _rule_matches(rule: Mapping[str, Any], target: Target, version: str) -> bool:
    """rules.Matcher.Matches, with the object's resource at `version`."""
    return (
        _listed(target.group, rule.get("apiGroups") or [])
        and _listed(version, rule.get("apiVersions") or [])
        and _listed(target.request.operation, rule.get("operations") or [])
        and any(_names_resource(entry, target.resource) for entry in rule.get("resources") or [])
        and target.in_scope(rule.get("scope", "*"))
    )


def _named(rule: Mapping[str, Any], target: Target) -> bool:
    """resourceNames: an empty list matches every name."""
    names = rule.get("resourceNames") or []
    return not names or target.name in names


def _rules_version(rules: Sequence[Mapping[str, Any]], match_policy: str, target: Target) -> str | None:
    """matchesResourceRules (policy/matching/matching.go): the version the object is judged as, or None. Under
    matchPolicy Equivalent, a rule naming another version of the object's group and resource also matches, and the
    object is converted to that version (offline, the versions of the same group and resource are the equivalents)."""
    for rule in rules:
        if _rule_matches(rule, target, target.version) and _named(rule, target):
            return target.version
    if match_policy == "Exact":
        return None
    for rule in rules:
        others = [v for v in rule.get("apiVersions") or [] if v not in ("*", target.version)]
        versions = [v for v in others if _rule_matches(rule, target, v)]
        if versions and _named(rule, target):
            if len(versions) > 1:
                raise PolicyError(
                    f"{object_id(dict(target.obj))}: matchPolicy Equivalent: the API server would judge it as the "
                    f"first of {versions} it serves, which this check cannot know"
                )
            return str(versions[0])
    return None


def _match_version(resources: Mapping[str, Any] | None, target: Target) -> str | None:
    """matchConstraints or a binding's matchResources (matching.go Matches): the version the object is judged as, or
    None if they do not match it. An absent one matches (a binding then narrows nothing)."""
    if not resources:
        return target.version
    match_policy = resources.get("matchPolicy", "Equivalent")  # SetDefaults_MatchResources
    if _rules_version(resources.get("excludeResourceRules") or [], match_policy, target) is not None:
        return None
    rules = resources.get("resourceRules") or []
    version = _rules_version(rules, match_policy, target) if rules else target.version
    if version is None:
        return None
    if not target.in_selected_namespace(resources.get("namespaceSelector")):
        return None
    return version if selects(resources.get("objectSelector"), target.labels()) else None


# Expressions. ---------------------------------------------------------------------------------------------------------


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
        except _Unknowable as exc:
            raise PolicyError(f"{self.where}: reads {exc}, which cannot be known offline") from None
        except CELEvalError as exc:
            if "undeclared reference" in str(exc):
                missing = exc.args[2][0] if len(exc.args) > 2 and exc.args[2] else "?"
                raise PolicyError(
                    f"{self.where}: {missing!r} is not available in cel-python (a Kubernetes CEL extension?): "
                    "this policy cannot be judged here"
                ) from None
            raise

    def value(self, activation: Mapping[str, Any]) -> Any:
        """The result, or the evaluation error as a CEL error value (which `&&`, `||` and `?:` may absorb)."""
        try:
            return self.evaluate(activation)
        except CELEvalError as exc:
            return exc


class _Variables(celtypes.MapType):
    """`variables`: each evaluated when first read and kept (cel/composition.go, a lazy map), so a variable no
    expression reads never runs, and one that fails is an error only where it is read."""

    def __init__(self, expressions: Mapping[str, _Expression], activation: Mapping[str, Any]) -> None:
        super().__init__({celtypes.StringType(name): None for name in expressions})
        self._expressions = expressions
        self._activation = activation
        self._values: dict[str, Any] = {}

    def __getitem__(self, key: Any) -> Any:
        name = str(key)
        expression = self._expressions.get(name)
        if expression is None:
            return super().__getitem__(key)
        if name not in self._values:
            self._values[name] = CELEvalError(f"variable {name!r} reads itself")
            self._values[name] = expression.value(self._activation)
        return self._values[name]


def _short(exc: Exception) -> str:
    """An evaluation error's own words, without the values cel-python appends (whole objects, at times)."""
    text = str(exc.args[0]) if exc.args else str(exc)
    return text if len(text) <= 200 else text[:200] + "..."


class _EvaluationFailed(Exception):
    """An expression failed for this object: the failurePolicy decides."""


def _boolean(expression: _Expression, activation: Mapping[str, Any]) -> bool:
    value = expression.evaluate(activation)
    if not isinstance(value, celtypes.BoolType):
        raise _EvaluationFailed(f"{expression.where} returned {type(value).__name__}, not a bool")
    return bool(value)


@dataclass
class _Validation:
    expression: _Expression
    message: str  # trimmed, as the API server uses it; "" if none
    message_expression: _Expression | None

    @classmethod
    def load(cls, where: str, spec: Mapping[str, Any]) -> _Validation:
        """A validation, refused as the API server refuses it (admissionregistration validation.go): a blank message
        or messageExpression, or a message with a line break (a messageExpression may span lines: it is CEL)."""
        message = str(spec.get("message") or "")
        message_expression = str(spec.get("messageExpression") or "")
        if message and not _go_trim(message):
            raise PolicyError(f"{where}: message must be non-empty if specified (the API server refuses it)")
        if "\n" in _go_trim(message) or "\r" in _go_trim(message):
            raise PolicyError(f"{where}: message must not contain line breaks (the API server refuses it)")
        if message_expression and not _go_trim(message_expression):
            raise PolicyError(f"{where}: messageExpression must be non-empty if specified (the API server refuses it)")
        return cls(
            _Expression.compile(where, spec["expression"]),
            _go_trim(message),
            _Expression.compile(f"{where}.messageExpression", message_expression) if message_expression else None,
        )

    def message_for(self, activation: Mapping[str, Any]) -> str:
        """The denial's message, as validator.go chooses it: messageExpression's, else message, else the expression."""
        return (
            self._evaluated_message(activation)
            or self.message
            or f"failed expression: {_go_trim(self.expression.text)}"
        )

    def _evaluated_message(self, activation: Mapping[str, Any]) -> str:
        """messageExpression's string, trimmed; "" (so the next is used) if it fails, is no string, is longer than
        5 KiB or has a line break."""
        if self.message_expression is None:
            return ""
        try:
            value = self.message_expression.evaluate(activation)
        except CELEvalError:
            return ""
        message = _go_trim(value) if isinstance(value, str) else ""
        if len(message.encode()) > MAX_MESSAGE_BYTES or "\n" in message:
            return ""
        return message


@dataclass
class Policy:
    name: str
    failure_policy: str
    match_constraints: Mapping[str, Any]
    match_conditions: list[_Expression]
    variables: dict[str, _Expression]
    validations: list[_Validation]

    @classmethod
    def load(cls, obj: Mapping[str, Any]) -> Policy:
        name = obj["metadata"]["name"]
        spec = obj.get("spec") or {}
        where = f"ValidatingAdmissionPolicy {name}"
        if spec.get("paramKind"):
            raise PolicyError(f"{where}: paramKind needs parameter objects, which this check does not read")
        if spec.get("auditAnnotations"):
            raise PolicyError(f"{where}: auditAnnotations are not evaluated by this check")
        validations = [
            _Validation.load(f"{where} validations[{index}]", validation)
            for index, validation in enumerate(spec.get("validations") or [])
        ]
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
            variables={
                v["name"]: _Expression.compile(f"{where} variables.{v['name']}", v["expression"])
                for v in spec.get("variables") or []
            },
            validations=validations,
        )

    def failures(self, target: Target, version: str) -> list[str] | None:
        """The messages of the validations the object fails; None if the policy does not apply to it."""
        activation = dict(target.activation(version))  # this policy's variables are added to its own copy
        activation["variables"] = _Variables(self.variables, activation)
        try:
            if not self._conditions_hold(activation):
                return None
        except _EvaluationFailed as exc:
            return None if self.failure_policy == "Ignore" else [self._refusal(exc)]
        messages = (self._failure(validation, activation) for validation in self.validations)
        return [message for message in messages if message is not None]

    def _conditions_hold(self, activation: Mapping[str, Any]) -> bool:
        """matchConditions as matchconditions/matcher.go has them: any that is false skips the policy, whatever errors
        the others had; if none is false, an error raises _EvaluationFailed, for the failurePolicy."""
        errors = []
        for condition in self.match_conditions:
            try:
                if not _boolean(condition, activation):
                    return False
            except (CELEvalError, _EvaluationFailed) as exc:
                errors.append(f"{condition.where}: {_short(exc)}")
        if errors:
            raise _EvaluationFailed("; ".join(errors))
        return True

    def _failure(self, validation: _Validation, activation: Mapping[str, Any]) -> str | None:
        """One validation's message if the object fails it; an evaluation error is its failurePolicy's."""
        try:
            passed = _boolean(validation.expression, activation)
        except (CELEvalError, _EvaluationFailed) as exc:
            return None if self.failure_policy == "Ignore" else self._refusal(exc)
        return None if passed else validation.message_for(activation)

    def _refusal(self, exc: Exception) -> str:
        return f"policy {self.name} could not be evaluated for this object, so it is refused: {_short(exc)}"


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

    def judge(
        self,
        obj: Mapping[str, Any],
        source: str,
        namespaces: Mapping[str, Mapping[str, Any]],
        request: Request = ARGO_CD,
        cluster: Cluster | None = None,
    ) -> list[Decision]:
        """The decisions of every binding on the object, sent as `request` to a cluster with `namespaces`."""
        if _kind_of(obj) in EXEMPT:
            return []
        cluster = cluster or Cluster()
        target = Target.of(obj, namespaces, request, cluster)
        decisions = []
        for binding in self.bindings:
            policy = self.policies[binding.policy]
            version = _match_version(policy.match_constraints, target)
            if version is None or _match_version(binding.match_resources, target) is None:
                continue
            if version != target.version and not cluster.converts_by_api_version(target.group, target.kind):
                raise PolicyError(
                    f"{object_id(dict(obj))}: policy {policy.name} names {target.group}/{version}, so the API server "
                    f"(matchPolicy Equivalent) converts it from {target.version} before judging it; this check "
                    f"cannot convert the versions of {target.group or 'the core group'}"
                )
            for message in policy.failures(target, version) or []:
                decisions.append(
                    Decision(source, object_id(dict(obj)), policy.name, binding.name, binding.actions, message)
                )
        return decisions
