"""`gitops promote`: move the image one environment runs to the next one, as a branch and a pull request.

Only one step of the promotion order the overlays declare (gitops.promotion_order): dev -> staging, staging -> prod.
The promotion changes exactly one file, the target's release file, on a branch named after the target and the
image's digest, with one commit. Without a target, the steps are the ones the overlays declare from the source
(next_environments): what the pipeline runs once Argo CD reports an environment deployed.
"""

from __future__ import annotations

from pathlib import Path

from gitops import commit_messages
from gitops.check import run_check
from gitops.git import git
from gitops.images import ImageRef, read_image, write_image
from gitops.layout import OVERLAYS, PROMOTED_FROM, overlay, release_file, release_path
from gitops.policy_check import run_policy_check
from gitops.promotion_order import PromotionOrder
from gitops.proposal import Proposal, ProposalError, ReleaseChange, images_table, rendered_change, require_clean


def _image_at(root: Path, environment: str, ref: str) -> ImageRef:
    path = release_file(root, environment)
    relative = release_path(environment)
    shown = git(root, "show", f"{ref}:{relative}", check=False)
    if shown.returncode != 0:
        raise ProposalError(f"{relative} does not exist at {ref}: {shown.stderr.strip()}")
    return read_image(path, shown.stdout)


def _new_commits(root: Path, start: str, previous: ImageRef, image: ImageRef) -> str:
    """The source commits ``image`` brings that ``previous`` did not, as the pipeline recorded them when it set
    ``start`` (where images enter the promotion line) to each."""
    log = git(root, "log", "--all", "--format=%B%x1e", "--", release_path(start)).stdout.split("\x1e")

    def built_from(wanted: ImageRef) -> str | None:
        return next((c for c in (commit_messages.source_commit(m, wanted) for m in log) if c), None)

    old, new = built_from(previous), built_from(image)
    if new is None:
        return "_The pipeline recorded no source commit for this image, so the commits it brings are unknown._\n"
    span = f"{old}..{new}" if old else new
    lines = git(root, "log", "--format=%h %s", span, check=False).stdout.splitlines()
    listed = [f"- {line}" for line in lines if "[skip ci]" not in line]
    return "\n".join(listed) + "\n" if listed else "_No new source commits._\n"


def _checks(root: Path, target: str, image: ImageRef) -> str:
    """The manifest check and the admission policies on the target's new render, as the pull request reports them;
    ProposalError if either refuses it."""
    directory = overlay(root, target)
    result = run_check(root, [directory])
    if not result.ok:
        problems = "\n".join(f"  {finding}" for finding in result.findings)
        raise ProposalError(f"{OVERLAYS / target} fails the manifest check with {image}:\n{problems}")
    policies = run_policy_check(root, [directory])
    if not policies.ok:
        problems = "\n".join(f"  {decision}" for decision in policies.denials)
        raise ProposalError(f"{OVERLAYS / target} would be refused by the admission policies with {image}:\n{problems}")
    warnings = "".join(f"- warning: {decision}\n" for decision in policies.warnings)
    return (
        f"- `gitops check {OVERLAYS / target}`: ok ({result.objects} objects, Kubernetes schemas for every "
        "supported version, checkov, trivy)\n"
        f"- `gitops policy-check {OVERLAYS / target}`: ok ({policies.policies} admission policies, as the "
        f"cluster will enforce them)\n{warnings}"
    )


def next_environments(root: Path, source: str) -> list[str]:
    """The environments ``source``'s image moves on to: each whose overlay, in the work tree (what a promotion's
    branch starts from), names ``source`` in its annotation. Empty at the end of a line (prod); RepositoryError for
    a source that is no environment."""
    overlay(root, source)
    return PromotionOrder.read(root).targets(source)


def promote(root: Path, source: str, target: str, *, ref: str = "HEAD", expect_image: str | None = None,
            push: bool = False, remote: str = "origin") -> Proposal:  # fmt: skip
    require_clean(root, "promotion")
    order = PromotionOrder.read(root)
    if not order.is_step(source, target):
        raise ProposalError(
            f"promotion goes {order}, one step at a time: {source} -> {target} is not a step (each overlay names "
            f"the environment it is promoted from: {PROMOTED_FROM} in {OVERLAYS}/<env>/kustomization.yaml)"
        )
    change = ReleaseChange(root, target, "promotion")
    image = _image_at(root, source, ref)
    if expect_image is not None and str(ImageRef.parse(expect_image)) != str(image):
        raise ProposalError(f"{source} runs {image} at {ref}, not {expect_image}: only what {source} runs can move on")
    if str(read_image(change.release)) == str(image):
        raise ProposalError(f"already promoted: {target} runs {image}")

    def commit() -> str:
        write_image(change.release, image)
        checks = _checks(root, target, image)
        git(root, "add", release_path(target))
        message = commit_messages.promote(source, target, image, git(root, "rev-parse", ref).stdout.strip())
        git(root, "commit", "--quiet", "--message", message)
        return checks

    branch, checks = change.on_branch(f"promote/{target}-{image.digest_start}", commit, push=push, remote=remote)
    body = (
        f"Promotes the image **{source}** runs to **{target}**. This pull request changes only "
        f"`{release_path(target)}`; Argo CD syncs {target} once it is merged.\n\n"
        f"{images_table(('before', branch.previous), ('after', branch.image))}\n"
        f"### Source commits this image brings\n\n{_new_commits(root, order.start(target), branch.previous, image)}\n"
        f"{rendered_change(target, branch.diff)}\n"
        f"### Checks on the new render\n\n{checks}"
    )
    return Proposal(branch, f"Promote {image.short} to {target}", body)
