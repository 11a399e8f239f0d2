"""How long the manifest check takes, and where the time goes, measured side by side in interleaved rounds:
(a) rendering every entry point with kustomize, (b) rendering and schema validation (`gitops check --no-scan`),
(c) the whole check with checkov and trivy (`gitops check`), (d) the admission policy check (`gitops policy-check`),
which renders every entry point too and evaluates the policies with cel-python."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    entry_points = subprocess.run(
        [str(BIN / "gitops"), "entry-points"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split()
    steps = {
        "(a) render only (kubectl kustomize)": lambda: sum(
            timed([str(BIN / "kubectl"), "kustomize", entry]) for entry in entry_points
        ),
        "(b) render + schemas (--no-scan)": lambda: timed([str(BIN / "gitops"), "check", "--no-scan"]),
        "(c) whole check (gitops check)": lambda: timed([str(BIN / "gitops"), "check"]),
        "(d) admission policies (policy-check)": lambda: timed([str(BIN / "gitops"), "policy-check"]),
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            times[name].append(step())
    print(f"\n{len(entry_points)} entry points, {args.rounds} interleaved rounds, medians (min-max):")
    for name, values in times.items():
        print(f"  {name:<40} {statistics.median(values):6.2f} s ({min(values):.2f}-{max(values):.2f})")
    whole = statistics.median(times["(c) whole check (gitops check)"])
    render = statistics.median(times["(a) render only (kubectl kustomize)"])
    policies = statistics.median(times["(d) admission policies (policy-check)"])
    print(f"  (c)/(a) {whole / render:.1f}: the scanners' and validators' share on top of rendering")
    print(f"  (d)/(a) {policies / render:.1f}: evaluating the policies' CEL on top of rendering")
    return 0


if __name__ == "__main__":
    sys.exit(main())
