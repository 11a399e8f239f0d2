"""Fixtures for the image tests: real buildah and podman, all state under one folder of the test run."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/microservice-demo:test"
NEEDED = ("buildah", "podman", "runc", "debootstrap")


def _require_container_tools() -> None:
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    problem = ""
    if os.geteuid() != 0:
        problem = "the image tests need root (buildah and podman with runc, rootful)"
    elif missing:
        problem = f"the image tests need {', '.join(missing)} (Debian packages)"
    if problem:
        how = "run ./scripts/test as root: it installs them"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem}; {how}")
        pytest.skip(f"{problem}; {how}")


class Containers:
    """podman and buildah, pointed at this test run's own storage and configuration."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(state / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(state / "storage.conf"),
        }

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, env=self.env, capture_output=True, text=True, check=check, timeout=timeout)

    def podman(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run("podman", *args, **kwargs)


@pytest.fixture(scope="session")
def containers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containers]:
    _require_container_tools()
    state = tmp_path_factory.mktemp("containers")
    yield Containers(state)
    # Leave nothing running; storage goes with the temporary folder.
    subprocess.run(
        ["podman", "rm", "--all", "--force"],
        env=Containers(state).env,
        capture_output=True,
        check=False,
    )


@pytest.fixture(scope="session")
def image(containers: Containers) -> str:
    """The real Containerfile, built with buildah against locally made base images."""
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "build-image"), "--local-bases", "--state", str(containers.state), "--tag", IMAGE],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/build-image failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return IMAGE
