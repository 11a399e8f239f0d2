"""`gitops policy-check`: the admission policies in policies/, judged against manifests before they reach a cluster."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from gitops.admission import ARGO_CD, Cluster, Decision, PolicyError, PolicySet, Request
from gitops.layout import NAMESPACES, POLICIES, kustomization_file
from gitops.render import RenderError, render
from gitops.repository import entry_points, relative_name


@dataclass
class PolicyCheckResult:
    sources: list[str]
    objects: int
    policies: int
    decisions: list[Decision] = field(default_factory=list)

    @property
    def denials(self) -> list[Decision]:
        return [d for d in self.decisions if d.denies]

    @property
    def warnings(self) -> list[Decision]:
        return [d for d in self.decisions if not d.denies and "Warn" in d.actions]

    @property
    def objections(self) -> set[Decision]:
        """What a binding denies or warns about: all but what it only audits."""
        return {*self.denials, *self.warnings}

    @property
    def ok(self) -> bool:
        return not self.denials


def _documents(path: Path, root: Path) -> list[dict[str, Any]]:
    try:
        documents = list(yaml.safe_load_all(path.read_text()))
    except yaml.YAMLError as exc:
        raise RenderError(f"{relative_name(path, root)}: not valid YAML: {' '.join(str(exc).split())}") from None
    except OSError as exc:
        raise RenderError(f"{relative_name(path, root)}: {exc.strerror}") from None
    objects = [d for d in documents if d]
    for document in objects:
        if not isinstance(document, dict) or "kind" not in document or "apiVersion" not in document:
            raise RenderError(
                f"{relative_name(path, root)}: a document that is not a Kubernetes object (no apiVersion/kind)"
            )
    return objects


def _inputs(paths: Sequence[Path], root: Path) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(source, objects): a kustomization folder rendered; a file, or each YAML file of another folder, as written."""
    for path in paths or entry_points(root):
        if path.is_dir() and kustomization_file(path) is not None:
            yield relative_name(path, root), render(path, root)[1]
        elif path.is_dir():
            for file in sorted([*path.rglob("*.yaml"), *path.rglob("*.yml")]):
                yield relative_name(file, root), _documents(file, root)
        elif path.exists():
            yield relative_name(path, root), _documents(path, root)
        else:
            raise RenderError(f"{path}: no such file or folder")


def load_policies(root: Path) -> PolicySet:
    return PolicySet.load(render(root / POLICIES, root)[1])


def run_policy_check(root: Path, paths: Sequence[Path] = (), request: Request = ARGO_CD) -> PolicyCheckResult:
    """Judge the manifests at `paths` (by default, every entry point) as `request` brings them to the API server: by
    default, a CREATE by Argo CD's application controller."""
    policies = load_policies(root)
    inputs = list(_inputs(paths, root))
    # The cluster as it will be: the repository's Namespaces (their labels) and LimitRanges (their defaults for Pods),
    # rendered again only if they are not among the inputs already, and any Namespaces, LimitRanges and
    # CustomResourceDefinitions among the inputs.
    declared = [] if relative_name(root / NAMESPACES, root) in dict(inputs) else render(root / NAMESPACES, root)[1]
    known = [*declared, *(o for _, objects in inputs for o in objects)]
    namespaces = {obj["metadata"]["name"]: obj for obj in known if obj.get("kind") == "Namespace"}
    cluster = Cluster.of(known)
    result = PolicyCheckResult([s for s, _ in inputs], sum(len(o) for _, o in inputs), len(policies.policies))
    for source, objects in inputs:
        for obj in objects:
            result.decisions += policies.judge(obj, source, namespaces, request, cluster)
    return result


def report(result: PolicyCheckResult, out: TextIO | None = None) -> None:
    out = out if out is not None else sys.stdout
    for decision in sorted(result.decisions, key=lambda d: (not d.denies, d.source, d.object, d.policy)):
        print(decision, file=out)
    verdict = "ok" if result.ok else f"{len(result.denials)} denied"
    if result.warnings:
        verdict += f", {len(result.warnings)} warning(s)"
    print(
        f"gitops policy-check: {len(result.sources)} source(s), {result.objects} object(s), "
        f"{result.policies} policies: {verdict}",
        file=out,
    )


__all__ = ["PolicyCheckResult", "PolicyError", "Request", "load_policies", "report", "run_policy_check"]
