"""`gitops set-image`: point an environment's release file at an image, commit, and optionally push.

The pipeline runs it after pushing a new image, so the commit it makes is what Argo CD syncs to dev. Concurrent
runs (two merges built at once) race for the same branch: a rejected push fetches the branch again, re-applies the
change on top of it and tries again, a bounded number of times, then fails saying so. Re-applying rather than
rebasing: two runs always edit the same lines of the same file, which a rebase could only report as a conflict.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

from gitops.git import GitError, git, head, is_clean
from gitops.images import ImageRef, check_trusted, read_image, release_file, write_image
from gitops.render import RenderError, render


@dataclass(frozen=True)
class SetImageResult:
    environment: str
    previous: ImageRef
    image: ImageRef
    commit: str | None  # None: the environment already ran the image, nothing committed
    attempts: int = 1

    def describe(self) -> str:
        if self.commit is None:
            return f"overlays/{self.environment} already runs {self.image}: nothing to commit"
        pushed = f", pushed (attempt {self.attempts})" if self.attempts else ""
        return f"overlays/{self.environment}: {self.previous} -> {self.image}; commit {self.commit[:12]}{pushed}"


def commit_message(environment: str, image: ImageRef, source_commit: str | None) -> str:
    # [skip ci]: this commit changes only a release file; it must not start another build.
    source = f" from {source_commit[:12]}" if source_commit else ""
    lines = [f"deploy({environment}): {image.short}{source} [skip ci]", "", f"Image: {image}"]
    if source_commit:
        lines.append(f"Source-Commit: {source_commit}")
    return "\n".join(lines) + "\n"


def _apply(
    root: Path, path: Path, environment: str, image: ImageRef, source_commit: str | None
) -> tuple[ImageRef, str | None]:
    previous = read_image(path)
    original = path.read_text()
    if not write_image(path, image):
        return previous, None
    try:
        render(root / "overlays" / environment, root)
    except RenderError as exc:
        path.write_text(original)
        raise RenderError(f"overlays/{environment} no longer renders with {image}, left unchanged: {exc}") from None
    git(root, "add", str(path.relative_to(root)))
    git(root, "commit", "--quiet", "--message", commit_message(environment, image, source_commit))
    return previous, head(root)


def set_image(
    root: Path,
    environment: str,
    reference: str,
    *,
    push: bool = False,
    remote: str = "origin",
    branch: str = "main",
    source_commit: str | None = None,
    attempts: int = 5,
) -> SetImageResult:
    image = ImageRef.parse(reference)
    check_trusted(image, root)
    path = release_file(root, environment)
    if push and not is_clean(root):
        raise GitError("the work tree has uncommitted changes: --push works on a clean checkout only")
    if not is_clean(root, path):
        raise GitError(f"{path.relative_to(root)} has uncommitted changes: commit or discard them first")

    if not push:
        previous, commit = _apply(root, path, environment, image, source_commit)
        return SetImageResult(environment, previous, image, commit, attempts=0)

    for attempt in range(1, attempts + 1):
        git(root, "fetch", "--quiet", remote, branch)
        git(root, "reset", "--quiet", "--hard", f"{remote}/{branch}")
        previous, commit = _apply(root, path, environment, image, source_commit)
        if commit is None:
            return SetImageResult(environment, previous, image, None, attempt)
        pushed = git(root, "push", "--quiet", remote, f"HEAD:refs/heads/{branch}", check=False)
        if pushed.returncode == 0:
            return SetImageResult(environment, previous, image, commit, attempt)
        rejected = "rejected" in pushed.stderr or "fetch first" in pushed.stderr or "non-fast-forward" in pushed.stderr
        if not rejected:
            raise GitError(f"git push {remote} {branch}: {pushed.stderr.strip()}")
        time.sleep(random.uniform(0.05, 0.25) * attempt)  # noqa: S311 - jitter, not a secret
    raise GitError(
        f"gave up after {attempts} attempts: {remote}/{branch} kept moving while setting {environment} to {image}; "
        "nothing was pushed for this image"
    )
