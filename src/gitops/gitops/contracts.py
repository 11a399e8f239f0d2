"""Chart contracts: what a pinned upstream chart renders and needs with this repository's values.

Each chart Application in a `charts/` folder has a `<application>.contract.yaml` beside it, read from the chart's
templates and values.yaml at the pinned version (docs/syncing.md, "Add a platform component"). Kinds are written as
kubectl names them: `Kind.group`, or `Kind` for the core group.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gitops.layout import CHARTS, CONTRACT_SUFFIX, IGNORED_DIRS, RepositoryError


@dataclass(frozen=True)
class Contract:
    path: Path
    data: dict[str, Any]

    @property
    def renders(self) -> dict[str, Any]:
        renders: dict[str, Any] = self.data["renders"]
        return renders

    def crds(self) -> set[str]:
        return set(self.renders["crds"])

    def secrets(self) -> list[str]:
        """`namespace/name` of each Secret the chart mounts but does not render: someone else must create it."""
        return list(self.renders.get("secretsNotRendered") or [])

    def runtime_crds(self) -> dict[str, set[str]]:
        """Kinds a controller of the chart installs at run time, keyed by the custom resource that asks for them."""
        return {item["when"]: set(item["crds"]) for item in self.data.get("runtimeCrds") or []}

    def scrape_targets(self) -> list[dict[str, Any]]:
        targets: list[dict[str, Any]] = self.data.get("scrapeTargets") or []
        return targets


def load_contracts(root: Path) -> dict[str, Contract]:
    """Every contract in the repository, by the name of the Application it belongs to."""
    contracts = {}
    for path in sorted(root.glob(f"**/{CHARTS}/*{CONTRACT_SUFFIX}")):
        if IGNORED_DIRS.intersection(path.relative_to(root).parts):
            continue
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise RepositoryError(f"{path.relative_to(root)}: not valid YAML: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("renders"), dict):
            raise RepositoryError(f"{path.relative_to(root)}: a contract needs a `renders` mapping")
        contracts[path.name.removesuffix(CONTRACT_SUFFIX)] = Contract(path, data)
    return contracts
