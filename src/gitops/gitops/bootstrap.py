"""A model of what Argo CD does with this repository on an empty cluster, wave by wave.

It starts where docs/syncing.md starts: a cluster with only Argo CD installed, then `kubectl apply -k
argocd/bootstrap`. From there it walks the root's sync as Argo CD would and reports every step that would fail
on a real cluster, naming the wave, the Application, the object and why: the objects of this repository come from
real kustomize renders, and what an upstream chart renders comes from its contract (gitops.contracts), derived
from the chart's templates at the pinned version. `gitops bootstrap-check` runs it.

The Argo CD behaviour each rule models (argoproj/argo-cd, v3.2 and later; the sync engine is gitops-engine, vendored
under gitops-engine/ in the argo-cd repository since v3.1):

- Dry run first (gitops-engine pkg/sync/sync_context.go, `Sync`): every task of an operation is dry-run before any is
  applied. A kind the API server does not serve fails the dry run ("the server could not find the requested
  resource") and with it the whole operation, unless the kind's CRD is part of the same operation
  (`hasCRDOfGroupKind`) or the object opts out with `SkipDryRunOnMissingResource=true` (which only moves the
  failure to apply time when nothing has installed the CRD by then).
- Project (controller/sync.go, the permission check before the sync starts, `isPermitted`): one object whose group
  and kind or whose namespace the AppProject does not permit fails the whole operation before anything is applied.
- Namespaces (a namespaced object's namespace must exist when it is applied; `CreateNamespace=true` creates only
  the destination namespace): a namespace created by a Namespace object of the same operation is applied first
  (Namespaces sort before other kinds within a wave: pkg/sync/sync_tasks.go, kind order).
- Waves (pkg/sync/sync_context.go): the root applies its Applications wave by wave and starts the next wave only
  when the previous one is healthy. An Application has no built-in health (removed in Argo CD 1.8, docs
  operator-manual/health.md, "Argo CD App"): the check in argocd-cm is what makes a wave wait, so it must be in
  place before the root's first sync, that is, applied by the bootstrap.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gitops.admission import CLUSTER_SCOPED
from gitops.applicationsets import expand
from gitops.contracts import Contract, load_contracts
from gitops.layout import BOOTSTRAP, SECRETS_BY_HAND, RepositoryError
from gitops.render import render

# Groups the Kubernetes API server serves by itself (not from a CRD).
BUILT_IN_GROUPS = {
    "", "apps", "batch", "autoscaling", "policy", "networking.k8s.io", "rbac.authorization.k8s.io",
    "admissionregistration.k8s.io", "apiextensions.k8s.io", "storage.k8s.io", "scheduling.k8s.io",
    "coordination.k8s.io", "discovery.k8s.io", "certificates.k8s.io", "node.k8s.io", "events.k8s.io",
    "flowcontrol.apiserver.k8s.io", "resource.k8s.io", "apiregistration.k8s.io",
}  # fmt: skip
# Argo CD's own CRDs, from its installation.
ARGO_CD_KINDS = {"Application.argoproj.io", "AppProject.argoproj.io", "ApplicationSet.argoproj.io"}
# The namespaces a new cluster has, and Argo CD's own.
INITIAL_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease", "argocd"}
HEALTH_PREFIX = "resource.customizations.health."


def kind_of(obj: dict[str, Any]) -> str:
    """kubectl's name for an object's kind: `Kind.group`, or `Kind` for the core group."""
    api_version: str = obj["apiVersion"]
    group = api_version.split("/")[0] if "/" in api_version else ""
    return f"{obj['kind']}.{group}" if group else str(obj["kind"])


def group_of(kind: str) -> str:
    return kind.split(".", 1)[1] if "." in kind else ""


@dataclass(frozen=True)
class Problem:
    """One thing that would stop the bootstrap: in which wave, which Application (and the file that says what it
    applies: its folder or its chart's contract), which object, and why."""

    wave: int
    application: str
    source: str
    target: str
    reason: str

    def __str__(self) -> str:
        return f"wave {self.wave}, {self.application} ({self.source}): {self.target}: {self.reason}"


@dataclass(frozen=True)
class Entry:
    """One object an Application applies: its kind, its namespace ('' when cluster-scoped) and its name."""

    kind: str
    namespace: str
    name: str
    skip_dry_run: bool = False


@dataclass
class Application:
    """A root child as the model sees it: what it applies, from our render or from its chart's contract."""

    obj: dict[str, Any]
    source: str
    entries: list[Entry]
    objects: list[dict[str, Any]] = field(default_factory=list)
    contract: Contract | None = None

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def wave(self) -> int:
        return wave_of(self.obj)

    @property
    def project(self) -> str:
        return str(self.obj["spec"]["project"])

    @property
    def destination(self) -> str:
        return str(self.obj["spec"]["destination"].get("namespace", ""))

    @property
    def sync_options(self) -> set[str]:
        return set((self.obj["spec"].get("syncPolicy") or {}).get("syncOptions") or [])

    def renders_crds(self) -> set[str]:
        crds = {
            f"{o['spec']['names']['kind']}.{o['spec']['group']}"
            for o in self.objects
            if o["kind"] == "CustomResourceDefinition"
        }
        return crds | (self.contract.crds() if self.contract else set())


WAVE = "argocd.argoproj.io/sync-wave"


def wave_of(obj: dict[str, Any]) -> int:
    return int((obj["metadata"].get("annotations") or {}).get(WAVE, "0"))


def _skips_dry_run(obj: dict[str, Any]) -> bool:
    options = (obj["metadata"].get("annotations") or {}).get("argocd.argoproj.io/sync-options", "")
    return "SkipDryRunOnMissingResource=true" in options


def entries_of(objects: Iterable[dict[str, Any]], destination: str, cluster_scoped: set[str]) -> list[Entry]:
    entries = []
    for obj in objects:
        kind = kind_of(obj)
        namespace = "" if kind in cluster_scoped else obj["metadata"].get("namespace") or destination
        entries.append(Entry(kind, namespace, obj["metadata"]["name"], _skips_dry_run(obj)))
    return entries


def chart_entries(contract: Contract) -> list[Entry]:
    """A chart's objects as its contract describes them: each kind in each namespace it renders into."""
    namespaces = contract.renders["namespaces"]
    entries = [Entry(kind, "", "(chart)") for kind in contract.renders["clusterScoped"]]
    entries += [Entry(kind, ns, "(chart)") for kind in contract.renders["namespaced"] for ns in namespaces]
    return entries


@dataclass
class Cluster:
    served: set[str]
    namespaces: set[str]
    health_checks: set[str]
    secrets: set[tuple[str, str]] = field(default_factory=set)


class Bootstrap:
    """The root and its children, rendered from the repository at `root`, and the walk over them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.secrets_by_hand = set(secrets_by_hand(root))
        self.contracts = load_contracts(root)
        self.bootstrap_objects = render(root / BOOTSTRAP, root)[1]
        roots = [o for o in self.bootstrap_objects if o["kind"] == "Application"]
        if len(roots) != 1:
            raise RepositoryError(f"{BOOTSTRAP}: the bootstrap must apply exactly one Application, the root")
        root_app = roots[0]
        self.repo_url: str = root_app["spec"]["source"]["repoURL"]
        self.root_objects = render(root / root_app["spec"]["source"]["path"], root)[1]
        self.projects = {o["metadata"]["name"]: o["spec"] for o in self.root_objects if o["kind"] == "AppProject"}
        # Kinds without a namespace: the API server's and the platform's CRDs' (gitops.admission's table), and
        # those the charts' contracts list.
        self.cluster_scoped = {f"{kind}.{group}" if group else kind for group, kind in CLUSTER_SCOPED} | {
            kind for c in self.contracts.values() for kind in c.renders["clusterScoped"]
        }
        root_entries = entries_of(self.root_objects, "argocd", self.cluster_scoped)
        self.root_app = Application(root_app, root_app["spec"]["source"]["path"], root_entries, self.root_objects)
        self.children = [self._child(o) for o in self.root_objects if o["kind"] == "Application"]
        # The Applications the root's ApplicationSets generate (gitops.applicationsets models the controller), each
        # in its ApplicationSet's wave: the controller creates them as soon as the root applies the ApplicationSet.
        # The wave annotation is this walk's, on a copy, not something the controller writes.
        for appset, generated in expand(self.root_objects, root, self.repo_url):
            placed = copy.deepcopy(generated)
            placed["metadata"].setdefault("annotations", {})[WAVE] = str(wave_of(appset))
            self.children.append(self._child(placed))

    def _child(self, obj: dict[str, Any]) -> Application:
        sources = obj["spec"].get("sources") or [obj["spec"]["source"]]
        ours = [s for s in sources if s["repoURL"] == self.repo_url]
        destination = obj["spec"]["destination"].get("namespace", "")
        if ours:
            objects = [o for s in ours for o in render(self.root / s["path"], self.root)[1]]
            source = ", ".join(s["path"] for s in ours)
            return Application(obj, source, entries_of(objects, destination, self.cluster_scoped), objects)
        contract = self.contracts.get(obj["metadata"]["name"])
        if contract is None:
            return Application(obj, "no contract", [])
        source = str(contract.path.relative_to(self.root))
        return Application(obj, source, chart_entries(contract), contract=contract)

    # The walk.

    def walk(self) -> list[Problem]:
        problems: list[Problem] = []
        health_checks = self._bootstrap_health_checks()
        cluster = Cluster(
            served=set(ARGO_CD_KINDS), namespaces=set(INITIAL_NAMESPACES), health_checks=health_checks,
        )  # fmt: skip
        problems += self._sync(self.root_app, cluster, wave=-100)
        if "argoproj.io_Application" not in health_checks:
            problems.append(Problem(-100, "root", str(BOOTSTRAP), "argocd-cm",
                "the bootstrap does not apply the Application health check: the root's waves would not wait "
                "for one wave's Applications to be healthy before starting the next"))  # fmt: skip
        for wave in sorted({child.wave for child in self.children}):
            # The root applies a wave's Applications together, and each syncs on its own from then on: none of
            # them can count on what another of the same wave installs. What they install is there for the next.
            healthy = []
            for child in (c for c in self.children if c.wave == wave):
                found = self._sync(child, cluster, wave) + self._health(child, cluster, wave)
                problems += found
                if not found:
                    healthy.append(child)
            for child in healthy:
                self._apply(child, cluster)
        return problems

    def _bootstrap_health_checks(self) -> set[str]:
        checks: set[str] = set()
        for obj in self.bootstrap_objects:
            if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "argocd-cm":
                checks |= {k.removeprefix(HEALTH_PREFIX) for k in obj.get("data") or {} if k.startswith(HEALTH_PREFIX)}
        return checks

    def _sync(self, app: Application, cluster: Cluster, wave: int) -> list[Problem]:
        """The operation's checks, in Argo CD's order: the project's permissions, then the dry run."""
        problems: list[Problem] = []

        def problem(target: str, reason: str) -> None:
            problems.append(Problem(wave, app.name, app.source, target, reason))

        if app.contract is None and not app.objects:
            problem("source", "a chart Application without a contract: nothing says what it renders")
        project = self.projects.get(app.project)
        if project is None:
            problem("spec.project", f"the project {app.project!r} does not exist")
            return problems
        destination_created = "CreateNamespace=true" in app.sync_options
        creates = {e.name for e in app.entries if e.kind == "Namespace"}
        crds_here = app.renders_crds()
        for entry in app.entries:
            target = f"{entry.kind} {entry.namespace + '/' if entry.namespace else ''}{entry.name}"
            for reason in self._refused(project, entry):
                problem(target, f"the project {app.project!r} refuses it: {reason}")
            created = destination_created and entry.namespace == app.destination
            if entry.namespace and entry.namespace not in cluster.namespaces | creates and not created:
                problem(target, f"the namespace {entry.namespace!r} does not exist yet")
            served = group_of(entry.kind) in BUILT_IN_GROUPS or entry.kind in cluster.served
            if not served and entry.kind not in crds_here:
                note = " (SkipDryRunOnMissingResource only moves the failure to apply time)" * entry.skip_dry_run
                problem(target, f"{entry.kind} is not served yet and no earlier wave installs its CRD{note}")
        return problems

    def _refused(self, project: dict[str, Any], entry: Entry) -> Iterator[str]:
        group, kind = group_of(entry.kind), entry.kind.split(".")[0]

        def listed(rules: list[dict[str, str]]) -> bool:
            return any(fnmatch.fnmatchcase(group, r["group"]) and fnmatch.fnmatchcase(kind, r["kind"]) for r in rules)

        if not entry.namespace:
            if not listed(project.get("clusterResourceWhitelist") or []):
                yield f"cluster-scoped {entry.kind} is not in clusterResourceWhitelist"
            return
        if not any(fnmatch.fnmatchcase(entry.namespace, d["namespace"]) for d in project["destinations"]):
            yield f"namespace {entry.namespace!r} is not a destination"
        whitelist = project.get("namespaceResourceWhitelist")
        if whitelist is not None and not listed(whitelist):
            yield f"{entry.kind} is not in namespaceResourceWhitelist"
        if listed(project.get("namespaceResourceBlacklist") or []):
            yield f"{entry.kind} is in namespaceResourceBlacklist"

    def _health(self, app: Application, cluster: Cluster, wave: int) -> list[Problem]:
        """What keeps an Application from becoming healthy, so that its wave never ends."""
        problems = []
        kinds = {e.kind for e in app.entries}
        if "Application.argoproj.io" in kinds and "argoproj.io_Application" not in cluster.health_checks:
            problems.append(
                Problem(wave, app.name, app.source, "Application", "no health check for Applications is configured")
            )
        for trigger in self._runtime_triggers():
            if trigger in kinds:
                check = "_".join(reversed(trigger.split(".", 1)))
                if check not in cluster.health_checks:
                    problems.append(Problem(wave, app.name, app.source, trigger,
                        f"no health check for {trigger} in the bootstrap's argocd-cm: the next wave would not "
                        "wait for the kinds its controller installs"))  # fmt: skip
        needed = app.contract.secrets() if app.contract else []
        rendered = {(e.namespace, e.name) for e in app.entries if e.kind == "Secret"}
        for reference in needed:
            namespace, _, name = reference.partition("/")
            key = (namespace, name)
            if key in rendered or key in cluster.secrets:
                continue
            if key in self.secrets_by_hand and namespace in cluster.namespaces:
                continue
            reason = "the chart mounts it, nothing earlier renders it, and it is not among the Secrets created by hand"
            problems.append(Problem(wave, app.name, app.source, f"Secret {reference}", reason))
        return problems

    def _runtime_triggers(self) -> set[str]:
        return {trigger for c in self.contracts.values() for trigger in c.runtime_crds()}

    def _apply(self, app: Application, cluster: Cluster) -> None:
        cluster.served |= app.renders_crds()
        cluster.namespaces |= {e.name for e in app.entries if e.kind == "Namespace"}
        if "CreateNamespace=true" in app.sync_options:
            cluster.namespaces.add(app.destination)
        cluster.secrets |= {(e.namespace, e.name) for e in app.entries if e.kind == "Secret"}
        kinds = {e.kind for e in app.entries}
        for contract in self.contracts.values():
            for trigger, crds in contract.runtime_crds().items():
                if trigger in kinds:
                    cluster.served |= crds


def secrets_by_hand(root: Path) -> list[tuple[str, str]]:
    """(namespace, name) of each Secret created by hand, from argocd/bootstrap/secrets-created-by-hand.yaml."""
    path = root / SECRETS_BY_HAND
    if not path.is_file():
        return []
    return [(s["namespace"], s["name"]) for s in yaml.safe_load(path.read_text()) or []]


def run_bootstrap_check(root: Path) -> tuple[Bootstrap, list[Problem]]:
    bootstrap = Bootstrap(root)
    return bootstrap, bootstrap.walk()
