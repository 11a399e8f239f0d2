"""Schema validation: Kubernetes kinds with kubernetes-validate (strict), custom resources with the schemas of the
@kubernetes-models npm packages (tools/crd-schemas), and a plain list of the kinds neither knows."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes_validate.utils import SchemaNotFoundError, ValidationError, validate

from gitops.findings import Finding, object_id
from gitops.layout import CRD_SCHEMAS, RepositoryError
from gitops.repository import tool_roots

# The Kubernetes minor versions the README says this repository supports; every object must validate against each.
SUPPORTED_KUBERNETES = ("1.35", "1.36", "1.37")


@dataclass
class SchemaReport:
    findings: list[Finding] = field(default_factory=list)
    not_validated: set[str] = field(default_factory=set)  # "apiVersion Kind" with no schema available offline


def _kubernetes_errors(obj: dict[str, Any], versions: Sequence[str]) -> list[str] | None:
    """Errors against each version, or None when kubernetes-validate has no schema for the kind."""
    errors = []
    for version in versions:
        try:
            validate(obj, f"{version}.0", strict=True)
        except SchemaNotFoundError:
            return None
        except ValidationError as exc:
            where = "/".join(str(part) for part in exc.absolute_path) or "(top level)"
            errors.append(f"Kubernetes {version}: {where}: {exc.message}")
    return errors


def _custom_resource_results(objects: list[dict[str, Any]], root: Path) -> list[dict[str, Any]]:
    installed = [r / CRD_SCHEMAS for r in tool_roots(root) if (r / CRD_SCHEMAS / "node_modules").is_dir()]
    validator = (installed[0] if installed else root / CRD_SCHEMAS) / "validate.mjs"
    node = shutil.which("node")
    if node is None or not installed:
        raise RepositoryError(
            f"custom resources can't be validated: Node.js and {CRD_SCHEMAS}/node_modules are needed "
            "(./scripts/test installs them)"
        )
    payload = json.dumps([{"id": str(i), "object": obj} for i, obj in enumerate(objects)])
    result = subprocess.run([node, str(validator)], input=payload, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RepositoryError(f"{CRD_SCHEMAS}/validate.mjs failed: {result.stderr.strip()}")
    results: list[dict[str, Any]] = json.loads(result.stdout)
    return results


def validate_schemas(
    rendered: Iterable[tuple[str, list[dict[str, Any]]]], root: Path, versions: Sequence[str] = SUPPORTED_KUBERNETES
) -> SchemaReport:
    """Validate every object of every entry point; ``rendered`` pairs an entry point's name with its objects."""
    report = SchemaReport()
    custom: list[tuple[str, dict[str, Any]]] = []
    for entry, objects in rendered:
        for obj in objects:
            errors = _kubernetes_errors(obj, versions)
            if errors is None:
                custom.append((entry, obj))
            report.findings += [Finding(entry, object_id(obj), error, "kubernetes-validate") for error in errors or []]
    if custom:
        results = _custom_resource_results([obj for _, obj in custom], root)
        for (entry, obj), outcome in zip(custom, results, strict=True):
            if outcome["result"] == "unknown":
                report.not_validated.add(f"{obj.get('apiVersion')} {obj.get('kind')}")
            for error in outcome["errors"]:
                report.findings.append(Finding(entry, object_id(obj), error, "@kubernetes-models"))
    return report
