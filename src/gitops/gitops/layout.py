"""The repository's layout as this tool knows it: every folder and file it reads by name, and its environments.

An environment is a folder ``overlays/<env>/`` with a release file, ``overlays/<env>/release/kustomization.yaml``:
the list of environments is read from there, never written down. The order in which they are promoted is in
gitops.promotion_order.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

PYPROJECT = "pyproject.toml"
# What marks the repository's root.
ROOT_MARKERS = (".git", PYPROJECT)
# The names kustomize looks for, in its order.
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# Folders that hold no deployable configuration of this repository (tests/ holds deliberately broken fixtures,
# which the tests pass to `gitops check` explicitly).
IGNORED_DIRS = frozenset({".git", ".venv", ".tools", "node_modules", "tests", "__pycache__", ".cache"})

OVERLAYS = PurePosixPath("overlays")
# An overlay's component that pins its image: `overlays/<env>/release/kustomization.yaml`.
RELEASE = PurePosixPath("release") / KUSTOMIZATION_FILES[0]
# The annotation in an overlay's own `metadata` (overlays/<env>/kustomization.yaml) naming the environment whose image
# it is promoted from (gitops.promotion_order).
PROMOTED_FROM = "gitops/promoted-from"
# The admission policies and their bindings (ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding).
POLICIES = PurePosixPath("policies")
# Where the cluster-wide objects the admission policies need are declared: Namespaces (their labels), LimitRanges.
NAMESPACES = PurePosixPath("base") / "security"
# `kubectl apply -k` starts the cluster here (docs/syncing.md); beside it, the Secrets that never come from git
# (docs/syncing.md, step 3): name, namespace, keys, who reads them.
BOOTSTRAP = PurePosixPath("argocd") / "bootstrap"
SECRETS_BY_HAND = BOOTSTRAP / "secrets-created-by-hand.yaml"
# A chart Application's contract: `charts/<application>.contract.yaml` beside it (gitops.contracts).
CHARTS = "charts"
CONTRACT_SUFFIX = ".contract.yaml"
# Tools ./scripts/test installs: the custom-resource schemas (Node.js) and the scanners' environment.
CRD_SCHEMAS = PurePosixPath("tools") / "crd-schemas"
SCANNERS = PurePosixPath(".tools") / "scanners"
TRIVY_IGNORE = ".trivyignore.yaml"
# Every site-specific value, in one ConfigMap the entry points read through the settings component.
SITE_SETTINGS = PurePosixPath("settings") / "site.yaml"


class RepositoryError(Exception):
    """The repository is not laid out as this tool expects; the message says where."""


def kustomization_file(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def environments(root: Path) -> list[str]:
    """Every folder of overlays/ with a release file, by name."""
    return sorted(path.parents[1].name for path in (root / OVERLAYS).glob(f"*/{RELEASE}"))


def overlay(root: Path, environment: str) -> Path:
    """An environment's overlay, once it is known to be one."""
    known = environments(root)
    if environment not in known:
        raise RepositoryError(
            f"unknown environment {environment!r}: expected one of {', '.join(known) or 'none'} "
            f"(a folder {OVERLAYS}/<env>/ with {RELEASE})"
        )
    return root / OVERLAYS / environment


def release_path(environment: str) -> str:
    """An environment's release file, relative to the root, as git and messages name it."""
    return str(OVERLAYS / environment / RELEASE)


def release_file(root: Path, environment: str) -> Path:
    return overlay(root, environment) / RELEASE
