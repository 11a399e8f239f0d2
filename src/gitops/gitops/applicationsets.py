"""A model of Argo CD's ApplicationSet controller for exactly what this repository uses, so that `gitops
bootstrap-check` and the tests see the Applications it would generate, not only the ApplicationSet.

What it models (argoproj/argo-cd v3.5.1, the files named):

- The git directory generator (applicationset/generators/git.go): the repository's directories, hidden ones and
  everything under them left out (reposerver/repository/repository.go, `GetGitDirectories`), each kept when it
  matches a `directories[].path` pattern with Go's `path.Match` (a `*` never crosses a `/`: `overlays/*` is not
  `overlays/dev/release`) and no `exclude: true` pattern (`filterApps`). The model reads the repository's work tree
  (the checkout the check runs in) instead of a clone at `revision`, and keeps a directory
  only when it holds a file somewhere below it: git records no empty directory.
- Its parameters with `goTemplate: true` (`generateParamsFromApps`): `.path.path`, `.path.basename`,
  `.path.basenameNormalized` (applicationset/utils/template_functions.go, `SanitizeName`) and `.path.segments`.
- The template (applicationset/utils/utils.go, `RenderTemplateParams`): every string of the template, map keys
  included, rendered with the parameters; the resources finalizer added when the template has no finalizer (and
  the ApplicationSet no `preserveResourcesOnDeletion`); the namespace always the ApplicationSet's own
  (applicationset/controllers/template/template.go, `GenerateApplications`).

Anything else fails loudly with `Unmodelled`: another generator or generator option (`files`, `values`,
`pathParamPrefix`, a matrix...), an ApplicationSet field that changes the output (`templatePatch`, `strategy`...),
`goTemplate` off or without `missingkey=error`, a pattern with `[` or `\\`, and any template action other than
`{{.path.<field>}}` and `{{index .path.segments N}}` (a function, a pipeline, a conditional). Such a change must
teach the model first, with the controller's source open.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"
# The ApplicationSet spec fields the model understands; `syncPolicy` only for preserveResourcesOnDeletion.
KNOWN_SPEC = {"goTemplate", "goTemplateOptions", "generators", "template", "syncPolicy"}
KNOWN_GIT = {"repoURL", "revision", "directories"}
KNOWN_DIRECTORY = {"path", "exclude"}
KNOWN_TEMPLATE_METADATA = {"name", "namespace", "labels", "annotations", "finalizers"}
ACTION = re.compile(r"\{\{(.*?)\}\}")  # whitespace trimming ({{- -}}) is not modelled: it fails
FIELD = re.compile(r"\.path\.(path|basename|basenameNormalized)")
SEGMENT = re.compile(r"index \.path\.segments (\d+)")


class Unmodelled(Exception):
    """The ApplicationSet uses something this model does not know: teach the model before relying on the tests."""


def sanitize_name(name: str) -> str:
    """applicationset/utils/template_functions.go, `SanitizeName`."""
    name = re.sub(r"[^-a-z0-9.]", "-", name.lower())[:253]
    return name.strip("-.")


def _segment_matches(pattern: str, name: str) -> bool:
    """Go's path.Match on one segment, for `*`, `?` and literal characters (the model refuses the rest)."""
    return fnmatch.fnmatchcase(name, pattern)


def _matching_directories(checkout: Path, pattern: str) -> Iterator[str]:
    """Directories of the checkout, relative and with `/`, that path.Match(pattern, directory) accepts."""
    if "[" in pattern or "\\" in pattern:
        raise Unmodelled(f"directory pattern {pattern!r}: the model knows `*`, `?` and literal characters only")
    segments = pattern.strip("/").split("/")

    def walk(directory: Path, depth: int, prefix: str) -> Iterator[str]:
        for child in sorted(directory.iterdir()):
            if not child.is_dir() or child.name.startswith("."):  # hidden: skipped with everything below
                continue
            if not _segment_matches(segments[depth], child.name):
                continue
            relative = f"{prefix}{child.name}"
            if depth + 1 < len(segments):
                yield from walk(child, depth + 1, relative + "/")
            elif any(p.is_file() for p in child.rglob("*")):  # git records no empty directory
                yield relative

    yield from walk(checkout, 0, "")


def directory_params(generator: dict[str, Any], checkout: Path) -> list[dict[str, Any]]:
    """The git directory generator's parameter sets, one per directory, in the controller's order (sorted)."""
    unknown = set(generator) - KNOWN_GIT
    if unknown or "directories" not in generator:
        raise Unmodelled(f"git generator: {sorted(unknown) or 'no directories (the files generator?)'}")
    included: set[str] = set()
    excluded: set[str] = set()
    for item in generator["directories"]:
        if set(item) - KNOWN_DIRECTORY:
            raise Unmodelled(f"git directories item: {sorted(set(item) - KNOWN_DIRECTORY)}")
        found = set(_matching_directories(checkout, item["path"]))
        (excluded if item.get("exclude") else included).update(found)
    return [
        {
            "path": {
                "path": directory,
                "basename": directory.rsplit("/", 1)[-1],
                "basenameNormalized": sanitize_name(directory.rsplit("/", 1)[-1]),
                "segments": directory.split("/"),
            }
        }
        for directory in sorted(included - excluded)
    ]


def render_string(text: str, params: dict[str, Any]) -> str:
    """One string of the template, as text/template with missingkey=error would render it, for the actions the
    model knows; anything else raises."""

    def action(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        if field := FIELD.fullmatch(expression):
            return str(params["path"][field.group(1)])
        if segment := SEGMENT.fullmatch(expression):
            segments: list[str] = params["path"]["segments"]
            index = int(segment.group(1))
            if index >= len(segments):
                raise Unmodelled(f"{{{{{expression}}}}}: index out of range for {segments}")
            return segments[index]
        raise Unmodelled(f"template action {{{{{expression}}}}} in {text!r}: not a parameter the model knows")

    rendered = ACTION.sub(action, text)
    if "{{" in rendered or "}}" in rendered:
        raise Unmodelled(f"unbalanced template delimiters in {text!r}")
    return rendered


def render_value(value: Any, params: dict[str, Any]) -> Any:
    """Every string of a template value, map keys included (utils.go, `deeplyReplaceWithFilter`)."""
    if isinstance(value, str):
        return render_string(value, params)
    if isinstance(value, dict):
        return {render_string(str(k), params): render_value(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, params) for v in value]
    return copy.deepcopy(value)


def generate(appset: dict[str, Any], checkout: Path, repo_url: str) -> list[dict[str, Any]]:
    """The Applications the controller would create for `appset`, whose git generators read `repo_url`, which the
    tests take to be the `checkout` on disk."""
    name = appset["metadata"]["name"]
    spec = appset["spec"]
    if set(spec) - KNOWN_SPEC:
        raise Unmodelled(f"ApplicationSet {name}: spec fields {sorted(set(spec) - KNOWN_SPEC)}")
    if spec.get("goTemplate") is not True or spec.get("goTemplateOptions") != ["missingkey=error"]:
        raise Unmodelled(f"ApplicationSet {name}: the model renders goTemplate with missingkey=error only")
    sync_policy = spec.get("syncPolicy") or {}
    if set(sync_policy) - {"preserveResourcesOnDeletion"}:
        raise Unmodelled(f"ApplicationSet {name}: syncPolicy {sorted(sync_policy)}")
    template = spec["template"]
    if set(template["metadata"]) - KNOWN_TEMPLATE_METADATA:
        raise Unmodelled(f"ApplicationSet {name}: template metadata {sorted(template['metadata'])}")
    applications = []
    for generator in spec["generators"]:
        if set(generator) != {"git"}:
            raise Unmodelled(f"ApplicationSet {name}: generator {sorted(generator)}; the model knows git directories")
        if generator["git"]["repoURL"] != repo_url:
            raise Unmodelled(f"ApplicationSet {name}: the git generator reads {generator['git']['repoURL']}")
        for params in directory_params(generator["git"], checkout):
            metadata = render_value(template["metadata"], params)
            metadata["namespace"] = appset["metadata"]["namespace"]
            if not metadata.get("finalizers") and not sync_policy.get("preserveResourcesOnDeletion"):
                metadata["finalizers"] = [RESOURCES_FINALIZER]
            applications.append(
                {
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "Application",
                    "metadata": metadata,
                    "spec": render_value(template["spec"], params),
                }
            )
    return applications


def expand(objects: list[dict[str, Any]], checkout: Path, repo_url: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(ApplicationSet, Application) for every Application the ApplicationSets among `objects` generate."""
    return [
        (appset, application)
        for appset in objects
        if appset["kind"] == "ApplicationSet"
        for application in generate(appset, checkout, repo_url)
    ]
