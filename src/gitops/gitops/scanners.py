"""Security scanners on the rendered output: checkov (offline) and trivy config.

Suppressions live next to what they excuse, each with its reason: a checkov skip is an annotation on the object
(``checkov.io/skip1: CKV_K8S_xx=reason``); a trivy exception is an entry with a ``statement`` in
``.trivyignore.yaml`` at the repository's root.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from gitops.findings import Finding, object_id
from gitops.layout import TRIVY_IGNORE, RepositoryError
from gitops.repository import tool


def _file_name(entry: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "__", entry) + ".yaml"


def _object_from_checkov(resource: str) -> str:
    # checkov names a Kubernetes resource "Kind.namespace.name" (or "Kind.name" for cluster-scoped ones).
    parts = resource.split(".", 2)
    if len(parts) == 3:
        return f"{parts[0]}/{parts[1]}/{parts[2]}"
    return f"{parts[0]}/-/{parts[-1]}"


def _checkov(directory: Path, entries: dict[str, str], root: Path) -> list[Finding]:
    result = subprocess.run(
        [tool("checkov", root), "--skip-download", "--quiet", "--compact", "--framework", "kubernetes",
         "--output", "json", "--directory", str(directory)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode not in (0, 1):
        raise RepositoryError(f"checkov failed: {result.stderr.strip() or result.stdout.strip()}")
    reports = json.loads(result.stdout or "[]")
    findings = []
    for report in reports if isinstance(reports, list) else [reports]:
        for failed in (report.get("results") or {}).get("failed_checks", []):
            entry = entries.get(Path(failed["file_path"]).name, failed["file_path"])
            reason = f"{failed['check_id']} {failed['check_name']}"
            findings.append(Finding(entry, _object_from_checkov(failed["resource"]), reason, "checkov"))
    return findings


def _trivy(
    directory: Path, entries: dict[str, str], objects: dict[str, list[dict[str, Any]]], root: Path
) -> list[Finding]:
    command = [tool("trivy", root), "config", "--skip-check-update", "--quiet", "--format", "json",
               "--cache-dir", str(directory / ".trivy-cache")]  # fmt: skip
    ignore = root / TRIVY_IGNORE
    if ignore.exists():
        command += ["--ignorefile", str(ignore)]
    result = subprocess.run([*command, str(directory)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RepositoryError(f"trivy failed: {result.stderr.strip()}")
    findings = []
    for target in json.loads(result.stdout).get("Results") or []:
        file = Path(target["Target"]).name
        entry = entries.get(file, target["Target"])
        for misconfig in target.get("Misconfigurations") or []:
            if misconfig.get("Status") != "FAIL":
                continue
            where = _object_from_trivy(misconfig, objects.get(file, []))
            reason = f"{misconfig['ID']} ({misconfig['Severity']}) {misconfig['Title']}: {misconfig['Message']}"
            findings.append(Finding(entry, where, reason, "trivy"))
    return findings


def _object_from_trivy(misconfig: dict[str, Any], objects: list[dict[str, Any]]) -> str:
    """trivy reports the line range; the object is the rendered document that holds it."""
    start = (misconfig.get("CauseMetadata") or {}).get("StartLine")
    if start:
        for obj in objects:
            first, last = obj["__lines__"]
            if first <= start <= last:
                return object_id(obj)
    # Some checks give no lines; their message names the object ("ConfigMap 'x' in 'ns' namespace").
    message = misconfig.get("Message", "").lower()
    for obj in objects:
        name = (obj.get("metadata") or {}).get("name", "")
        if str(obj.get("kind", "")).lower() in message and f"'{name}'".lower() in message:
            return object_id(obj)
    return "(see message)"


def _with_line_ranges(text: str) -> list[dict[str, Any]]:
    """Each document of a multi-document YAML text, with the 1-based line range it occupies."""
    objects = []
    line = 1
    for chunk in re.split(r"^---\n", text, flags=re.M):
        lines = chunk.count("\n")
        doc = yaml.safe_load(chunk)
        if doc:
            objects.append({**doc, "__lines__": (line, line + max(lines - 1, 0))})
        line += lines + 1
    return objects


def scan(rendered: Iterable[tuple[str, str]], root: Path) -> list[Finding]:
    """Scan each entry point's rendered YAML; ``rendered`` pairs an entry point's name with its text."""
    with tempfile.TemporaryDirectory(prefix="gitops-scan-") as tmp:
        directory = Path(tmp)
        entries: dict[str, str] = {}
        objects: dict[str, list[dict[str, Any]]] = {}
        for entry, text in rendered:
            name = _file_name(entry)
            (directory / name).write_text(text)
            entries[name] = entry
            objects[name] = _with_line_ranges(text)
        if not entries:
            return []
        return _checkov(directory, entries, root) + _trivy(directory, entries, objects, root)
