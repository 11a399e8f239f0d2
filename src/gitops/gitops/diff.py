"""`gitops diff`: the rendered difference of one environment between two git refs (or a ref and the work tree)."""

from __future__ import annotations

import difflib
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

from gitops.git import git, git_bytes
from gitops.layout import OVERLAYS, overlay
from gitops.render import render

WORK_TREE = "work tree"


def render_at(root: Path, environment: str, ref: str) -> str:
    """The overlay's rendered YAML as of ``ref`` (``WORK_TREE`` for the files as they are now)."""
    directory = overlay(root, environment)  # an unknown environment says so before anything is rendered
    if ref == WORK_TREE:
        return render(directory, root)[0]
    # The whole tree at ref (a few MB): an overlay may read any folder of it (base, components, settings...).
    archive = git_bytes(root, "archive", "--format=tar", ref)
    with tempfile.TemporaryDirectory(prefix="gitops-render-") as tmp:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        return render(Path(tmp) / OVERLAYS / environment, Path(tmp))[0]


def rendered_diff(root: Path, environment: str, ref_a: str = "main", ref_b: str = WORK_TREE) -> str:
    """A unified diff of the rendered overlay, empty when the two render the same."""
    git(root, "rev-parse", "--verify", "--quiet", f"{ref_a}^{{commit}}")
    if ref_b != WORK_TREE:
        git(root, "rev-parse", "--verify", "--quiet", f"{ref_b}^{{commit}}")
    before = render_at(root, environment, ref_a).splitlines(keepends=True)
    after = render_at(root, environment, ref_b).splitlines(keepends=True)
    return "".join(
        difflib.unified_diff(
            before, after, f"{OVERLAYS / environment} @ {ref_a}", f"{OVERLAYS / environment} @ {ref_b}"
        )
    )
