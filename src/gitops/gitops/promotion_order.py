"""The promotion order, as the overlays declare it: which environment's image moves on to which.

An overlay whose kustomization names, in its own ``metadata`` (which kustomize reads and does not render), the
annotation ``gitops/promoted-from: <env>`` runs what ``gitops promote <env> <it>`` brings it; an overlay without one
runs what the pipeline sets (``gitops set-image``). An environment is promoted to one other at the most, so the
order is a line from each environment the pipeline sets: dev -> staging -> prod.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from gitops.layout import OVERLAYS, PROMOTED_FROM, RepositoryError, environments, kustomization_file


def _promoted_from(root: Path, environment: str) -> tuple[str, str | None]:
    """(the overlay's kustomization as messages name it, the environment it names as its source, if any)."""
    file = kustomization_file(root / OVERLAYS / environment)
    if file is None:
        raise RepositoryError(f"{OVERLAYS / environment}: no kustomization")
    where = file.relative_to(root).as_posix()
    try:
        content = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RepositoryError(f"{where}: not valid YAML: {' '.join(str(exc).split())}") from None
    source = ((content.get("metadata") or {}).get("annotations") or {}).get(PROMOTED_FROM)
    if source is not None and not isinstance(source, str):
        raise RepositoryError(f"{where}: metadata.annotations {PROMOTED_FROM} must be an environment's name")
    return where, source


@dataclass(frozen=True)
class PromotionOrder:
    sources: Mapping[str, str]  # environment -> the environment it is promoted from

    @classmethod
    def read(cls, root: Path) -> PromotionOrder:
        """The order the overlays declare; RepositoryError, naming the overlay, where it is not one line per start."""
        known = environments(root)
        sources: dict[str, str] = {}
        declared: dict[str, str] = {}  # source -> the kustomization that names it
        for environment in known:
            where, source = _promoted_from(root, environment)
            if source is None:
                continue
            if source not in known or source == environment:
                others = ", ".join(e for e in known if e != environment) or "none"
                raise RepositoryError(
                    f"{where}: metadata.annotations {PROMOTED_FROM}: {source!r} is not another environment ({others})"
                )
            if source in declared:
                raise RepositoryError(
                    f"{declared[source]} and {where} both name {source} in {PROMOTED_FROM}: an environment is promoted "
                    "to one other at the most"
                )
            sources[environment] = source
            declared[source] = where
        order = cls(sources)
        for environment in sources:
            back = order.back(environment)
            if back[-1] in back[:-1]:
                raise RepositoryError(
                    f"{declared[sources[environment]]}: {PROMOTED_FROM} goes round in a circle: {' <- '.join(back)}"
                )
        return order

    def is_step(self, source: str, target: str) -> bool:
        return self.sources.get(target) == source

    def targets(self, source: str) -> list[str]:
        """The environments promoted from ``source``: each overlay that names it in its annotation (one at the most
        as the order stands; none for the end of a line, or an environment promoted nowhere)."""
        return sorted(target for target, named in self.sources.items() if named == source)

    def back(self, environment: str) -> list[str]:
        """The environment, the one it is promoted from, and so on back to where the pipeline sets the image (or
        until one comes round again)."""
        back = [environment]
        while back[-1] in self.sources and (len(back) == 1 or back[-1] != environment):
            back.append(self.sources[back[-1]])
        return back

    def start(self, environment: str) -> str:
        """Where the pipeline sets the images that reach this environment."""
        return self.back(environment)[-1]

    def lines(self) -> list[list[str]]:
        """Each line of promotion, from where the pipeline sets the image; an environment nothing is promoted to or
        from is in none."""
        targets = {source: target for target, source in self.sources.items()}
        lines = []
        for start in sorted(set(targets) - set(self.sources)):
            line = [start]
            while line[-1] in targets:
                line.append(targets[line[-1]])
            lines.append(line)
        return lines

    def __str__(self) -> str:
        return "; ".join(" -> ".join(line) for line in self.lines()) or "nowhere (no overlay names a source)"
