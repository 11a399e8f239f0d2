"""``python -m microservice_demo.verify``: check a deployed instance from inside the cluster.

Run by the post-deploy hook Job of each environment with the service's own image: it waits until ``/ready``
answers 200, then checks that ``/api/v1/info`` reports the image the overlay deployed. Exit status 0 when both
hold, 1 (with one line saying what differed) when not, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import httpx


def verify(url: str, expected_image: str, timeout: float, interval: float = 2.0) -> str | None:
    """None when the service is ready and runs ``expected_image``; otherwise what is wrong."""
    base = url.rstrip("/")
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with httpx.Client(timeout=5.0) as client:
        while True:
            try:
                ready = client.get(f"{base}/ready")
                if ready.status_code == 200:
                    info = client.get(f"{base}/api/v1/info").json()
                    if info.get("image") == expected_image:
                        return None
                    last = f"{base}/api/v1/info reports image {info.get('image')!r}, expected {expected_image!r}"
                else:
                    last = f"{base}/ready answered {ready.status_code}"
            except (httpx.HTTPError, ValueError) as exc:
                last = f"{base}: {type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                return f"{last} (gave up after {timeout:.0f} s)"
            time.sleep(interval)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="microservice_demo.verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the service, e.g. http://microservice-demo")
    parser.add_argument("--expect-image", required=True, help="the image reference /api/v1/info must report")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for both to hold")
    args = parser.parse_args(argv)
    problem = verify(args.url, args.expect_image, args.timeout)
    if problem is not None:
        print(f"deployment check failed: {problem}", file=sys.stderr, flush=True)
        return 1
    print(f"deployment check passed: {args.url} is ready and runs {args.expect_image}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
