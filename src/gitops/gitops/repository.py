"""Finding things in this repository (laid out as gitops.layout says): its root, its Kustomize entry points, the tools
it installs."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import yaml

from gitops.layout import IGNORED_DIRS, PYPROJECT, ROOT_MARKERS, SCANNERS, RepositoryError, kustomization_file


def repo_root(start: Path | None = None) -> Path:
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if all((candidate / marker).exists() for marker in ROOT_MARKERS):
            return candidate
    raise RepositoryError(f"{here} is not inside this repository (no {' and '.join(ROOT_MARKERS)} above it)")


def _kustomizations(root: Path) -> dict[Path, dict[str, object]]:
    found: dict[Path, dict[str, object]] = {}
    for directory, subdirs, _ in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in IGNORED_DIRS)
        path = Path(directory)
        file = kustomization_file(path)
        if file is None:
            continue
        try:
            content = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise RepositoryError(f"{file.relative_to(root)}: not valid YAML: {exc}") from None
        found[path] = content
    return found


def relative_name(path: Path, root: Path) -> str:
    """How findings name a file or folder: relative to the repository when inside it, as given otherwise."""
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def entry_points(root: Path) -> list[Path]:
    """Kustomizations nothing else in the repository builds on: what Argo CD syncs, and what gets checked.

    Components are applied by the kustomizations that list them, and bases through their overlays, so both are
    rendered (and checked) as part of those.
    """
    kustomizations = _kustomizations(root)
    referenced: set[Path] = set()
    for directory, content in kustomizations.items():
        for key in ("resources", "bases", "components"):
            for item in content.get(key) or []:  # type: ignore[attr-defined]
                target = (directory / str(item)).resolve()
                if target.is_dir():
                    referenced.add(target)
    return sorted(
        directory
        for directory, content in kustomizations.items()
        if content.get("kind") != "Component" and directory.resolve() not in referenced
    )


def _installation() -> Path | None:
    """The repository this package is installed from (editable, as ./scripts/test installs it), if any: its tools
    serve checks of other checkouts too, such as the temporary clones `gitops promote` is tested in."""
    candidate = Path(__file__).resolve().parents[3]
    return candidate if (candidate / PYPROJECT).is_file() else None


def tool_roots(root: Path) -> list[Path]:
    """Where to look for the repository's installed tools: the checked repository, then the installation."""
    installation = _installation()
    return [root] + ([installation] if installation is not None and installation != root.resolve() else [])


def tool(name: str, root: Path) -> str:
    """A command from this environment, or from a repository's scanner environment (.tools/scanners)."""
    candidates = [Path(sys.prefix) / "bin" / name] + [r / SCANNERS / "bin" / name for r in tool_roots(root)]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RepositoryError(f"`{name}` is not installed: ./scripts/test installs every tool this check runs")
    return found
