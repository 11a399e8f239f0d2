"""The image, built from the real Containerfile with buildah and run with podman the way the cluster runs it."""

from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.process, pytest.mark.image]

REPO_ROOT = Path(__file__).resolve().parents[2]
UID = 10001
VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
REVISION = subprocess.run(
    ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
).stdout.strip()
FORBIDDEN = {"gcc", "cc", "c++", "g++", "clang", "apt", "apt-get", "dpkg", "pip", "pip3", "uv", "yum", "apk"}


@pytest.fixture(scope="module")
def inspected(containers: Any, image: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(containers.podman("image", "inspect", image).stdout)[0]
    return data


@pytest.fixture(scope="module")
def files(containers: Any, image: str) -> list[str]:
    """Every path in the image's filesystem, read from `podman export` of a created (never started) container."""
    name = containers.podman("create", image).stdout.strip()
    exported = subprocess.run(
        ["podman", "export", name], env=containers.env, capture_output=True, check=True, timeout=300
    ).stdout
    containers.podman("rm", name)
    with tarfile.open(fileobj=io.BytesIO(exported)) as archive:
        return [member.name.removeprefix("./") for member in archive.getmembers()]


@pytest.fixture(scope="module")
def running(containers: Any, image: str, free_port: Callable[[], int]) -> Iterator[dict[str, Any]]:
    port = free_port()
    name = f"microservice-demo-test-{port}"
    containers.podman(
        "run", "--detach", "--name", name,
        "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--tmpfs", "/tmp:rw,size=64m,mode=1777",
        "--publish", f"127.0.0.1:{port}:8080",
        "--env", "APP_IMAGE=localhost/microservice-demo:test",
        image,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            logs = containers.podman("logs", name, check=False)
            pytest.fail(f"the container never got ready:\n{logs.stdout}\n{logs.stderr}")
        time.sleep(0.2)
    yield {"name": name, "url": url}
    containers.podman("rm", "--force", name, check=False)


def test_oci_labels_come_from_the_build_arguments(inspected: dict[str, Any]) -> None:
    labels = inspected["Labels"]
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.revision"] == REVISION
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", labels["org.opencontainers.image.created"])
    assert labels["org.opencontainers.image.source"].startswith("https://")


def test_runtime_configuration(inspected: dict[str, Any]) -> None:
    config = inspected["Config"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["WorkingDir"] == "/app"
    assert config["Entrypoint"] == ["/app/.venv/bin/python", "-m", "microservice_demo"]
    assert "8080/tcp" in config["ExposedPorts"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["APP_PORT"] == "8080"
    assert env["APP_VERSION"] == VERSION
    assert env["APP_GIT_COMMIT"] == REVISION


def test_no_compiler_no_package_manager_no_pip(files: list[str]) -> None:
    programs = [path for path in files if Path(path).parent.name in {"bin", "sbin"}]
    assert "app/.venv/bin/python" in programs
    found = sorted(path for path in programs if Path(path).name in FORBIDDEN or Path(path).name.startswith("gcc-"))
    assert found == []
    assert not [path for path in files if re.search(r"site-packages/(pip|setuptools)/__init__\.py$", path)]


def test_what_the_service_never_imports_is_left_out(files: list[str]) -> None:
    """Litestar's polyfactory and its faker (Containerfile): the serving test below shows the service runs without."""
    assert not [path for path in files if re.search(r"site-packages/(polyfactory|faker)/__init__\.py$", path)]
    assert [path for path in files if re.search(r"site-packages/litestar/__init__\.py$", path)]


def test_app_holds_only_the_virtual_environment(files: list[str]) -> None:
    top = {path.split("/")[1] for path in files if path.startswith("app/") and path.count("/") >= 1}
    assert top == {".venv"}, "tests, sources, caches or git data leaked into the image"
    assert not [path for path in files if "/tests/" in path and "microservice_demo" in path]


def test_bytecode_is_compiled_at_build_time(files: list[str]) -> None:
    package = [path for path in files if "site-packages/microservice_demo/" in path]
    assert any(path.endswith(".py") for path in package)
    assert any(path.endswith(".pyc") and "__pycache__" in path for path in package)


def test_serves_read_only_as_the_fixed_user(containers: Any, running: dict[str, Any]) -> None:
    url = running["url"]
    assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{url}/api/v1/hello").json() == {"message": "Hello, World!"}
    assert "http_server_request_duration_seconds" in httpx.get(f"{url}/metrics").text
    info = httpx.get(f"{url}/api/v1/info").json()
    assert info["version"] == VERSION
    assert info["git_commit"] == REVISION
    assert info["image"] == "localhost/microservice-demo:test"
    state = json.loads(containers.podman("inspect", running["name"]).stdout)[0]
    assert state["HostConfig"]["ReadonlyRootfs"] is True
    assert state["HostConfig"]["CapDrop"]
    pid = state["State"]["Pid"]
    status = Path(f"/proc/{pid}/status").read_text()
    assert re.search(rf"^Uid:\s+{UID}\s+{UID}\s+{UID}\s+{UID}$", status, re.M)
    assert re.search(rf"^Gid:\s+{UID}\s+{UID}\s+{UID}\s+{UID}$", status, re.M)
    logs = containers.podman("logs", running["name"]).stdout.splitlines()
    assert all(line.startswith("{") for line in logs if line.strip()), "production logs are JSON lines"


def test_the_image_runs_the_post_deploy_check(containers: Any, image: str, running: dict[str, Any]) -> None:
    """The PostSync Job uses this same image: its check must run in it, as restricted as the service."""
    check = [
        "run", "--rm", "--network", "host", "--read-only", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "--tmpfs", "/tmp:rw,size=16m",
        "--entrypoint", "/app/.venv/bin/python", image, "-m", "microservice_demo.verify",
        "--url", running["url"], "--timeout", "20",
    ]  # fmt: skip
    passed = containers.podman(*check, "--expect-image", "localhost/microservice-demo:test", check=False)
    assert passed.returncode == 0, passed.stderr
    assert "deployment check passed" in passed.stdout
    failed = containers.podman(*check[:-2], "--timeout", "1", "--expect-image", "other:image", check=False)
    assert failed.returncode == 1
    assert "reports image 'localhost/microservice-demo:test', expected 'other:image'" in failed.stderr


# Last: it stops the container the tests above share.
def test_stops_gracefully_within_10_seconds(containers: Any, running: dict[str, Any]) -> None:
    started = time.monotonic()
    containers.podman("stop", "--time", "10", running["name"])
    elapsed = time.monotonic() - started
    state = json.loads(containers.podman("inspect", running["name"]).stdout)[0]["State"]
    assert elapsed < 10
    assert state["ExitCode"] == 0
    assert "Granian shutdown completed" in containers.podman("logs", running["name"]).stdout
