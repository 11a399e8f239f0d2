"""The `gitops` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from gitops.check import report, run_check
from gitops.repository import RepositoryError, entry_points, repo_root
from gitops.schemas import SUPPORTED_KUBERNETES


def _check(args: argparse.Namespace) -> int:
    root = repo_root()
    result = run_check(root, [Path(p) for p in args.paths], args.kubernetes_version, scanners=not args.no_scan)
    report(result)
    return 0 if result.ok else 1


def _entry_points(_: argparse.Namespace) -> int:
    root = repo_root()
    for directory in entry_points(root):
        print(directory.relative_to(root))
    return 0


def parser() -> argparse.ArgumentParser:
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
    check.set_defaults(run=_check)

    listing = commands.add_parser("entry-points", help="list the Kustomize entry points `check` renders")
    listing.set_defaults(run=_entry_points)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "kubernetes_version", None) is None and args.command == "check":
        args.kubernetes_version = list(SUPPORTED_KUBERNETES)
    try:
        code: int = args.run(args)
    except RepositoryError as exc:
        print(f"gitops: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
