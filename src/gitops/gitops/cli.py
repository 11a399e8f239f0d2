"""The `gitops` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gitops.admission import PolicyError
from gitops.bootstrap import run_bootstrap_check
from gitops.check import report, run_check
from gitops.diff import WORK_TREE, rendered_diff
from gitops.git import GitError, git
from gitops.github import GitHubError, open_pull_request, repository_from_url
from gitops.images import ImageError
from gitops.layout import OVERLAYS, POLICIES, PROMOTED_FROM, RELEASE, SITE_SETTINGS, RepositoryError
from gitops.placeholders import find_placeholders
from gitops.policy_check import report as report_policies
from gitops.policy_check import run_policy_check
from gitops.promote import next_environments, promote
from gitops.promotion_order import PromotionOrder
from gitops.proposal import Proposal, ProposalError
from gitops.render import RenderError
from gitops.repository import entry_points, repo_root
from gitops.rollback import rollback
from gitops.schemas import SUPPORTED_KUBERNETES
from gitops.set_image import set_image

# What the commands refuse with, saying why: exit status 2 and the message.
ERRORS = (RepositoryError, ImageError, GitError, RenderError, ProposalError, GitHubError, PolicyError)


def _check(args: argparse.Namespace) -> int:
    root = repo_root()
    versions = args.kubernetes_version or SUPPORTED_KUBERNETES
    result = run_check(root, [Path(p) for p in args.paths], versions, scanners=not args.no_scan)
    report(result)
    placeholders = find_placeholders(root)
    for placeholder in placeholders:
        print(f"{'error' if args.strict else 'warning'}: {placeholder}")
    if placeholders and args.strict:
        print(f"gitops check --strict: {len(placeholders)} placeholder(s) in {SITE_SETTINGS}")
        return 1
    return 0 if result.ok else 1


def _policy_check(args: argparse.Namespace) -> int:
    result = run_policy_check(repo_root(), [Path(p) for p in args.paths])
    report_policies(result)
    return 0 if result.ok else 1


def _bootstrap_check(_: argparse.Namespace) -> int:
    bootstrap, problems = run_bootstrap_check(repo_root())
    for problem in problems:
        print(problem)
    waves = sorted({child.wave for child in bootstrap.children})
    verdict = f"{len(problems)} problem(s)" if problems else "it comes up"
    print(f"bootstrap: {len(bootstrap.children)} Applications in {len(waves)} waves: {verdict}", file=sys.stderr)
    return 1 if problems else 0


def _entry_points(_: argparse.Namespace) -> int:
    root = repo_root()
    for directory in entry_points(root):
        print(directory.relative_to(root))
    return 0


def _set_image(args: argparse.Namespace) -> int:
    result = set_image(
        repo_root(),
        args.environment,
        args.image,
        push=args.push,
        remote=args.remote,
        branch=args.branch,
        source_commit=args.source_commit,
        attempts=args.attempts,
    )
    print(result.describe())
    return 0


def _diff(args: argparse.Namespace) -> int:
    sys.stdout.write(rendered_diff(repo_root(), args.environment, args.ref_a, args.ref_b))
    return 0


def _promote(args: argparse.Namespace) -> int:
    root = repo_root()
    token = os.environ.get("GITHUB_TOKEN", "")
    if args.open_pr and not token:
        raise GitHubError("--open-pr needs GITHUB_TOKEN, a token that can open pull requests")
    repository = ""
    if args.open_pr:
        repository = args.repository or repository_from_url(git(root, "remote", "get-url", args.remote).stdout.strip())
    targets = [args.target] if args.target is not None else next_environments(root, args.source)
    if not targets:
        print(
            f"nothing to promote: no overlay names {args.source} in {PROMOTED_FROM} "
            f"(promotion goes {PromotionOrder.read(root)})",
            file=sys.stderr,
        )
        return 0
    refused = 0
    for target in targets:  # one pull request each; a refusal of one does not keep the others from theirs
        try:
            _promote_to(root, args, target, repository, token)
        except ERRORS as exc:
            print(f"gitops: {exc}", file=sys.stderr)
            refused += 1
    return 2 if refused else 0


def _promote_to(root: Path, args: argparse.Namespace, target: str, repository: str, token: str) -> None:
    promotion = promote(
        root, args.source, target, ref=args.ref, expect_image=args.image,
        push=args.push or args.open_pr, remote=args.remote,
    )  # fmt: skip
    _show(promotion, args.remote)
    if args.open_pr:
        branch = promotion.branch.name
        try:
            pull = open_pull_request(repository, branch, args.base, promotion.title, promotion.body, token)
        except GitHubError as exc:
            raise GitHubError(
                f"branch {branch} was pushed to {args.remote}, but the pull request was not opened: {exc}. "
                "Run the same command again, or open it by hand."
            ) from None
        print(f"pull request #{pull.number} {'opened' if pull.created else 'updated'}: {pull.url}", file=sys.stderr)


def _rollback(args: argparse.Namespace) -> int:
    _show(rollback(repo_root(), args.environment, push=args.push, remote=args.remote), args.remote)
    return 0


def _show(proposal: Proposal, remote: str) -> None:
    """The branch on stderr; the pull request's title and body, in Markdown, on stdout."""
    branch = proposal.branch
    pushed = f", pushed to {remote}" if branch.pushed else ""
    print(f"branch {branch.name}: {branch.previous} -> {branch.image}{pushed}", file=sys.stderr)
    print(f"# {proposal.title}\n\n{proposal.body}")


def _environment() -> argparse.ArgumentParser:
    """The argument of the commands that work on one environment."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("environment", help=f"a folder {OVERLAYS}/ENVIRONMENT/ with a release file ({RELEASE})")
    return parent


def _pushing() -> argparse.ArgumentParser:
    """The options of the commands that commit: whether and where to push."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--push", action="store_true", help="push what it commits to REMOTE")
    parent.add_argument("--remote", default="origin", help="the remote to push to (default origin)")
    return parent


def parser() -> argparse.ArgumentParser:
    environment, pushing = _environment(), _pushing()
    top = argparse.ArgumentParser(prog="gitops", description="This repository's delivery tooling.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check",
        help="render every Kustomize entry point and validate and scan the result",
        description=(
            "Render each entry point with `kubectl kustomize`, validate every object with kubernetes-validate "
            "--strict against each supported Kubernetes version and every custom resource against the "
            "@kubernetes-models schemas, then scan the output with checkov and trivy. Prints one line per "
            "problem (entry point: Kind/namespace/name: reason [tool]) and exits 1 if there is any."
        ),
    )
    check.add_argument("paths", nargs="*", help="kustomization folders to check (default: every entry point)")
    check.add_argument(
        "--kubernetes-version",
        action="append",
        metavar="MINOR",
        help=f"validate against this minor (repeatable; default: {', '.join(SUPPORTED_KUBERNETES)})",
    )
    check.add_argument("--no-scan", action="store_true", help="render and validate only, skip checkov and trivy")
    check.add_argument(
        "--strict",
        action="store_true",
        help=f"fail while a value of {SITE_SETTINGS} is still a placeholder (without it: a warning each)",
    )
    check.set_defaults(run=_check)

    policy = commands.add_parser(
        "policy-check",
        help="judge manifests by the admission policies in policies/",
        description=(
            "Evaluate every ValidatingAdmissionPolicy in policies/ with its bindings against the given manifests, "
            "as the API server would admit them (CEL by cel-python). A kustomization folder is rendered; a file, "
            "or each YAML file of another folder, is read as written. Prints one line per failed validation "
            "(source: Kind/namespace/name: policy: message [actions]) and exits 1 if any binding denies."
        ),
    )
    policy.add_argument("paths", nargs="*", help="files or folders (default: every entry point, rendered)")
    policy.set_defaults(run=_policy_check)

    setter = commands.add_parser(
        "set-image",
        parents=[environment, pushing],
        help="point an environment's release file at an image and commit it",
        description=(
            f"Write IMAGE (registry/name[:tag]@<digest>) into {OVERLAYS}/ENVIRONMENT/{RELEASE}, check that the "
            f"overlay still renders and that the admission policies ({POLICIES}/) neither refuse nor warn about "
            "anything they did not before, and commit that one file with a [skip ci] message. With --push (the "
            "pipeline's mode), fetch the branch, re-apply on top of it and push, retrying a bounded number of times "
            "if other pushes get there first."
        ),
    )
    setter.add_argument("image", help="registry/name[:tag]@sha256:<64 hex>")
    setter.add_argument("--branch", default="main", help="the branch to push to (default main)")
    setter.add_argument("--source-commit", help="the commit the image was built from (recorded in the message)")
    setter.add_argument("--attempts", type=int, default=5, help="push attempts before giving up (default 5)")
    setter.set_defaults(run=_set_image)

    differ = commands.add_parser(
        "diff",
        parents=[environment],
        help="the rendered difference of one environment between two refs",
        description=f"Render {OVERLAYS}/ENVIRONMENT at REF_A and REF_B with kustomize and print a unified diff.",
    )
    differ.add_argument("ref_a", nargs="?", default="main", help="default: main")
    differ.add_argument("ref_b", nargs="?", default=WORK_TREE, help="default: the work tree")
    differ.set_defaults(run=_diff)

    promoter = commands.add_parser(
        "promote",
        parents=[pushing],
        help="prepare the pull request that moves SOURCE's image to TARGET, or to every environment after SOURCE",
        description=(
            "Copy the image SOURCE runs (at --ref) into TARGET's release file on a new branch "
            "promote/TARGET-<digest>, with one commit, after checking the new render. Prints the pull request's "
            f"title and Markdown body. Only one step of the promotion order: TARGET's overlay names SOURCE in "
            f"{PROMOTED_FROM} ({OVERLAYS}/TARGET/kustomization.yaml, metadata.annotations). Without TARGET, do so "
            "for every environment whose overlay names SOURCE (in the work tree), one branch and pull request each; "
            "when none does (the end of the order), say so and exit 0."
        ),
    )
    promoter.add_argument("source", help="the environment whose image moves on")
    promoter.add_argument(
        "target", nargs="?", help="the environment promoted from SOURCE (default: every one the overlays name)"
    )
    promoter.add_argument("--ref", default="HEAD", help="the revision to read SOURCE's image at (default HEAD)")
    promoter.add_argument("--image", help="refuse unless SOURCE runs exactly this image")
    promoter.add_argument(
        "--open-pr",
        action="store_true",
        help="push, then open the pull request through the GitHub REST API (GITHUB_TOKEN; GITHUB_API_URL "
        "overrides https://api.github.com), or update it if one is open for the branch",
    )
    promoter.add_argument("--repository", help="owner/name on GitHub (default: from the remote's URL)")
    promoter.add_argument("--base", default="main", help="the pull request's base branch (default main)")
    promoter.set_defaults(run=_promote)

    roller = commands.add_parser(
        "rollback",
        parents=[environment, pushing],
        help="prepare the pull request that reverts an environment's last promotion",
        description=(
            "Revert the last promotion of ENVIRONMENT (where the pipeline sets the image, its last change) with git "
            "revert on a new branch rollback/ENVIRONMENT-<commit>, and print the pull request's title and body."
        ),
    )
    roller.set_defaults(run=_rollback)

    walk = commands.add_parser(
        "bootstrap-check",
        help="walk the bootstrap on an empty cluster, wave by wave, as Argo CD would sync it",
        description=(
            "Start from a cluster with only Argo CD, apply argocd/bootstrap, then walk the root's waves: each "
            "Application's objects (rendered with kustomize, or from its chart's contract) must be of a kind already "
            "served, allowed by its project, into a namespace that exists, and able to become healthy. Prints one "
            "line per problem (wave, Application (file): object: reason) and exits 1 if there is any."
        ),
    )
    walk.set_defaults(run=_bootstrap_check)

    listing = commands.add_parser("entry-points", help="list the Kustomize entry points `check` renders")
    listing.set_defaults(run=_entry_points)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except ERRORS as exc:
        print(f"gitops: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
