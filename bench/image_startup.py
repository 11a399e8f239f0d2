"""Image size, and the time from `podman run` to the first 200 on /ready, beside the container floor.

Builds the image with scripts/build-image (local base images, container state in a temporary folder), then
alternates, round by round: (a) `podman run` of the image as the cluster runs it (read-only, all capabilities
dropped, tmpfs /tmp) until /ready answers 200; (b) the floor: `podman run` of the runtime base image running
`python3 -c pass` to its exit. Prints medians and the ratio (a)/(b): how much of the start is the service's own.
Needs root and the Debian packages buildah, podman, runc and debootstrap (bench/run installs them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
TAG = "localhost/microservice-demo:bench"
RUN_AS_THE_CLUSTER = ("--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, started: float, timeout: float = 60) -> float:
    while time.perf_counter() - started < timeout:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.005)
    raise SystemExit(f"{url} not ready after {timeout} s")


def runtime_base_name() -> str:
    """The runtime base the Containerfile names, without its digest (as scripts/build-image tags it locally)."""
    for line in (REPO / "Containerfile").read_text().splitlines():
        if line.startswith("ARG RUNTIME_IMAGE="):
            return line.split("=", 1)[1].split("@")[0]
    raise SystemExit("Containerfile has no ARG RUNTIME_IMAGE")


def spread(times: list[float]) -> str:
    return f"{statistics.median(times):6.3f} s ({min(times):.3f}-{max(times):.3f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("buildah") is None:
        raise SystemExit("needs root and buildah/podman/runc/debootstrap: run bench/run as root")

    base = runtime_base_name()
    started_times: list[float] = []
    floor_times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-image-") as state_dir:
        state = Path(state_dir)
        build = [str(REPO / "scripts" / "build-image"), "--local-bases", "--state", str(state), "--tag", TAG]
        subprocess.run(build, check=True, stdout=subprocess.DEVNULL)
        env = {
            **os.environ,
            "CONTAINERS_CONF": str(state / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(state / "storage.conf"),
        }

        def podman(*argv: str) -> str:
            return subprocess.run(["podman", *argv], env=env, check=True, capture_output=True, text=True).stdout

        size_mb = json.loads(podman("image", "inspect", TAG))[0]["Size"] / 1e6
        base_mb = json.loads(podman("image", "inspect", base))[0]["Size"] / 1e6
        for _ in range(args.rounds):
            port = free_port()
            started = time.perf_counter()
            name = podman(
                "run", "--detach", *RUN_AS_THE_CLUSTER, "--tmpfs", "/tmp:rw,size=64m,mode=1777",
                "--publish", f"127.0.0.1:{port}:8080", TAG,
            ).strip()  # fmt: skip
            started_times.append(wait_ready(f"http://127.0.0.1:{port}/ready", started))
            podman("rm", "--force", name)

            started = time.perf_counter()
            podman("run", "--rm", *RUN_AS_THE_CLUSTER, base, "/usr/bin/python3.11", "-c", "pass")
            floor_times.append(time.perf_counter() - started)

    print(f"\nimage {TAG}: {size_mb:.1f} MB = runtime base {base_mb:.1f} MB + service {size_mb - base_mb:.1f} MB")
    print(f"{args.rounds} interleaved rounds, medians (min-max):")
    print(f"  (a) podman run -> first 200 on /ready        {spread(started_times)}")
    print(f"  (b) podman run of the base, python3 -c pass  {spread(floor_times)}")
    ratio = statistics.median(started_times) / statistics.median(floor_times)
    print(f"  (a)/(b)                                      {ratio:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
