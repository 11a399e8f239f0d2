"""`gitops check`: render every entry point with kustomize, validate every object, scan the result."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from gitops.findings import Finding
from gitops.render import RenderError, render
from gitops.repository import entry_points, relative_name
from gitops.scanners import scan
from gitops.schemas import SUPPORTED_KUBERNETES, validate_schemas


@dataclass
class CheckResult:
    entry_points: list[str]
    objects: int
    findings: list[Finding] = field(default_factory=list)
    not_validated: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.findings


def run_check(
    root: Path, paths: Sequence[Path] = (), versions: Sequence[str] = SUPPORTED_KUBERNETES, scanners: bool = True
) -> CheckResult:
    directories = list(paths) or entry_points(root)
    findings: list[Finding] = []
    rendered: list[tuple[str, str, list[dict[str, Any]]]] = []
    for directory in directories:
        name = relative_name(directory, root)
        try:
            text, objects = render(directory, root)
        except RenderError as exc:
            findings.append(Finding(name, "-", str(exc), "kustomize"))
            continue
        rendered.append((name, text, objects))

    schemas = validate_schemas(((name, objects) for name, _, objects in rendered), root, versions)
    findings += schemas.findings
    if scanners:
        findings += scan(((name, text) for name, text, _ in rendered), root)
    return CheckResult(
        entry_points=[relative_name(d, root) for d in directories],
        objects=sum(len(objects) for _, _, objects in rendered),
        findings=sorted(set(findings)),
        not_validated=schemas.not_validated,
    )


def report(result: CheckResult, out: TextIO | None = None) -> None:
    out = out if out is not None else sys.stdout
    for finding in result.findings:
        print(finding, file=out)
    if result.not_validated:
        kinds = ", ".join(sorted(result.not_validated))
        print(f"not validated (no schema available offline): {kinds}", file=out)
    verdict = "ok" if result.ok else f"{len(result.findings)} problem(s)"
    print(
        f"gitops check: {len(result.entry_points)} entry point(s), {result.objects} object(s): {verdict}",
        file=out,
    )
