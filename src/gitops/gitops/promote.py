"""`gitops promote`: move the image one environment runs to the next one, as a branch and a pull request.

Only dev -> staging and staging -> prod. The promotion changes exactly one file, the target's release file, on a
branch named after the target and the image's digest, with one commit. Every refusal leaves the repository as it
was: no branch, no commit, a clean tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from gitops.check import run_check
from gitops.diff import rendered_diff
from gitops.git import branch_exists, git, head, is_clean, on_new_branch
from gitops.images import ImageRef, read_image, release_file, write_image
from gitops.policy_check import run_policy_check

STEPS = {("dev", "staging"), ("staging", "prod")}
MAX_DIFF_LINES = 400


class PromotionError(Exception):
    """A promotion that must not happen; the message says why. Nothing was changed."""


@dataclass(frozen=True)
class Promotion:
    source: str
    target: str
    previous: ImageRef
    image: ImageRef
    branch: str
    commit: str
    title: str
    body: str
    pushed: bool = False


def _image_at(root: Path, environment: str, ref: str) -> ImageRef:
    path = release_file(root, environment)
    relative = path.relative_to(root).as_posix()
    shown = git(root, "show", f"{ref}:{relative}", check=False)
    if shown.returncode != 0:
        raise PromotionError(f"{relative} does not exist at {ref}: {shown.stderr.strip()}")
    return read_image(path, shown.stdout)


def _source_commit(root: Path, image: ImageRef) -> str | None:
    """The commit an image was built from, as the pipeline recorded it when it set dev to that image."""
    log = git(root, "log", "--all", "--format=%B%x1e", "--", "overlays/dev/release/kustomization.yaml").stdout
    for message in log.split("\x1e"):
        if f"Image: {image}" in message:
            found = re.search(r"^Source-Commit: ([0-9a-f]{40})$", message, re.M)
            if found:
                return found.group(1)
    return None


def _new_commits(root: Path, previous: ImageRef, image: ImageRef) -> str:
    old, new = _source_commit(root, previous), _source_commit(root, image)
    if new is None:
        return "_The pipeline recorded no source commit for this image, so the commits it brings are unknown._\n"
    span = f"{old}..{new}" if old else new
    log = git(root, "log", "--format=%h %s", span, check=False).stdout.splitlines()
    lines = [f"- {line}" for line in log if "[skip ci]" not in line]
    return "\n".join(lines) + "\n" if lines else "_No new source commits._\n"


def _body(
    root: Path, promotion_diff: str, source: str, target: str, previous: ImageRef, image: ImageRef, check: str
) -> str:
    diff_lines = promotion_diff.splitlines()
    shown = diff_lines[:MAX_DIFF_LINES]
    note = (
        f"\n_The diff has {len(diff_lines)} lines; the first {MAX_DIFF_LINES} are shown. "
        f"Run `gitops diff {target}` for all of it._\n"
        if len(diff_lines) > MAX_DIFF_LINES
        else ""
    )
    return (
        f"Promotes the image **{source}** runs to **{target}**. This pull request changes only "
        f"`overlays/{target}/release/kustomization.yaml`; Argo CD syncs {target} once it is merged.\n\n"
        f"| | image |\n|---|---|\n| before | `{previous}` |\n| after | `{image}` |\n\n"
        f"### Source commits this image brings\n\n{_new_commits(root, previous, image)}\n"
        f"### Rendered change to {target}\n\n```diff\n" + "\n".join(shown) + f"\n```\n{note}\n"
        f"### Checks on the new render\n\n{check}"
    )


def promote(root: Path, source: str, target: str, *, ref: str = "HEAD", expect_image: str | None = None,
            push: bool = False, remote: str = "origin") -> Promotion:  # fmt: skip
    if (source, target) not in STEPS:
        raise PromotionError(
            f"promotion goes dev -> staging -> prod, one step at a time: {source} -> {target} is not a step"
        )
    target_file = release_file(root, target)
    if not is_clean(root):
        raise PromotionError("the work tree has uncommitted changes: commit or stash them before promoting")
    image = _image_at(root, source, ref)
    if expect_image is not None and str(ImageRef.parse(expect_image)) != str(image):
        raise PromotionError(f"{source} runs {image} at {ref}, not {expect_image}: only what {source} runs can move on")
    previous = read_image(target_file)
    if str(previous) == str(image):
        raise PromotionError(f"already promoted: {target} runs {image}")

    branch = f"promote/{target}-{image.digest.removeprefix('sha256:')[:12]}"
    if branch_exists(root, branch):
        raise PromotionError(f"branch {branch} already exists: that promotion was prepared before")
    with on_new_branch(root, branch) as base:
        write_image(target_file, image)
        result = run_check(root, [root / "overlays" / target])
        if not result.ok:
            problems = "\n".join(f"  {finding}" for finding in result.findings)
            raise PromotionError(f"overlays/{target} fails the manifest check with {image}:\n{problems}")
        policies = run_policy_check(root, [root / "overlays" / target])
        if not policies.ok:
            problems = "\n".join(f"  {decision}" for decision in policies.denials)
            raise PromotionError(
                f"overlays/{target} would be refused by the admission policies with {image}:\n{problems}"
            )
        warnings = "".join(f"- warning: {decision}\n" for decision in policies.warnings)
        check = (
            f"- `gitops check overlays/{target}`: ok ({result.objects} objects, Kubernetes schemas for every "
            "supported version, checkov, trivy)\n"
            f"- `gitops policy-check overlays/{target}`: ok ({policies.policies} admission policies, as the "
            f"cluster will enforce them)\n{warnings}"
        )
        git(root, "add", str(target_file.relative_to(root)))
        message = (
            f"promote({target}): {image.short} from {source}\n\n"
            f"Image: {image}\nPromoted-From: {source} @ {git(root, 'rev-parse', ref).stdout.strip()}\n"
        )
        git(root, "commit", "--quiet", "--message", message)
        body = _body(root, rendered_diff(root, target, base, branch), source, target, previous, image, check)
        commit = head(root)
        if push:
            # Promotion branches belong to this tool: a re-run (say a repeated notification, in a fresh clone)
            # replaces the branch, and --open-pr then updates its pull request instead of opening another.
            git(root, "push", "--quiet", "--force", remote, f"refs/heads/{branch}")
    title = f"Promote {image.short} to {target}"
    return Promotion(source, target, previous, image, branch, commit, title, body, pushed=push)
