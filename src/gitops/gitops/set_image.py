"""`gitops set-image`: point an environment's release file at an image, commit, and optionally push.

The pipeline runs it after pushing a new image, so the commit it makes is what Argo CD syncs to dev. Concurrent
runs (two merges built at once) race for the same branch: a rejected push fetches the branch again, re-applies the
change on top of it and tries again, a bounded number of times, then fails saying so. Re-applying rather than
rebasing: two runs always edit the same lines of the same file, which a rebase could only report as a conflict.

Which images an environment may run is the admission policies' to say (policies/): the new render must pass them
as the old one did. Warnings count as refusals here: what dev is warned about, the environments after it refuse,
so an image that dev would only be warned about could never be promoted.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops import commit_messages
from gitops.admission import Decision
from gitops.findings import object_id
from gitops.git import GitError, git, head, is_clean
from gitops.images import ImageError, ImageRef, read_image, repository_of, write_image
from gitops.layout import OVERLAYS, POLICIES, overlay, release_file, release_path
from gitops.policy_check import run_policy_check
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
            return f"{OVERLAYS / self.environment} already runs {self.image}: nothing to commit"
        pushed = f", pushed (attempt {self.attempts})" if self.attempts else ""
        return f"{OVERLAYS / self.environment}: {self.previous} -> {self.image}; commit {self.commit[:12]}{pushed}"


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers of a Pod or of a workload's pod template, init containers included."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    pod = spec if obj.get("kind") == "Pod" else (spec.get("template") or {}).get("spec") or {}
    return [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]


def _objections(root: Path, environment: str) -> set[Decision]:
    """What the admission policies deny or warn about in the environment's render, as the work tree has it."""
    return run_policy_check(root, [overlay(root, environment)]).objections


def _runs(root: Path, environment: str, image: ImageRef) -> None:
    """Refuse unless the containers of the environment's render that run the image's repository (``app`` of
    ``registry/app``) run ``image`` as written, and there are some: nothing after the release file rewrites it."""
    try:
        objects = render(overlay(root, environment), root)[1]
    except RenderError as exc:
        raise RenderError(
            f"{OVERLAYS / environment} no longer renders with {image}, {release_path(environment)} left unchanged: "
            f"{exc}"
        ) from None
    running = {(object_id(obj), str(c.get("image"))) for obj in objects for c in _containers(obj)}
    others = sorted((workload, name) for workload, name in running if name != str(image))
    rewritten = [(workload, name) for workload, name in others if repository_of(name) == repository_of(image.name)]
    if rewritten or len(others) == len(running):
        instead = "; ".join(f"{workload} runs {name}" for workload, name in rewritten or others) or "no container"
        raise ImageError(
            f"{release_path(environment)} left unchanged: {OVERLAYS / environment} would not run {image} once "
            f"rendered ({instead}): something after the release file in the overlay rewrites the image"
        )


def _admit(root: Path, environment: str, original: str, image: ImageRef) -> None:
    """Refuse the release file as it now is, set to ``image``, unless the environment's render runs it and the
    admission policies deny or warn about nothing in that render that they did not with the ``original`` one."""
    _runs(root, environment, image)
    path = release_file(root, environment)
    after = _objections(root, environment)
    if not after:
        return
    changed = path.read_text()
    path.write_text(original)
    try:
        before = _objections(root, environment)
    finally:
        path.write_text(changed)
    introduced = "\n".join(f"  {decision}" for decision in sorted(after - before, key=str))
    if introduced:
        raise ImageError(
            f"{release_path(environment)} left unchanged: with {image}, the admission policies ({POLICIES}/) would "
            f"refuse or warn about {OVERLAYS / environment} where they did not before:\n{introduced}"
        )


def _apply(root: Path, environment: str, image: ImageRef, source_commit: str | None) -> tuple[ImageRef, str | None]:
    path = release_file(root, environment)
    previous = read_image(path)
    original = path.read_text()
    if not write_image(path, image):
        return previous, None
    try:
        _admit(root, environment, original, image)
    except BaseException:
        path.write_text(original)
        raise
    git(root, "add", release_path(environment))
    git(root, "commit", "--quiet", "--message", commit_messages.deploy(environment, image, source_commit))
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
    path = release_file(root, environment)
    if push and not is_clean(root):
        raise GitError("the work tree has uncommitted changes: --push works on a clean checkout only")
    if not is_clean(root, path):
        raise GitError(f"{release_path(environment)} has uncommitted changes: commit or discard them first")

    if not push:
        previous, commit = _apply(root, environment, image, source_commit)
        return SetImageResult(environment, previous, image, commit, attempts=0)

    for attempt in range(1, attempts + 1):
        git(root, "fetch", "--quiet", remote, branch)
        git(root, "reset", "--quiet", "--hard", f"{remote}/{branch}")
        previous, commit = _apply(root, environment, image, source_commit)
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
