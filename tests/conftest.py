"""Fixtures shared by every test folder."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _copy_repository(destination: Path) -> Path:
    """The repository's files as they are in the work tree (tracked and new ones alike, nothing git ignores), an
    empty .git, which marks a checkout's root for the gitops tool and the tests, and links to the tools the test
    script installed (git ignores them)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():  # not deleted in the work tree
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    (destination / ".git").mkdir()
    for tools in (".tools", "tools/crd-schemas/node_modules", "tools/tekton-lint/node_modules"):  # git ignores them
        if (REPO_ROOT / tools).exists():
            (destination / tools).symlink_to(REPO_ROOT / tools)
    return destination


@pytest.fixture(scope="session")
def copy_repository() -> Callable[[Path], Path]:
    """Copies the repository into a folder, for a test that changes it as a person would."""
    return _copy_repository


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's own APP_* or OTEL_* variables."""
    for name in list(os.environ):
        if name.startswith(("APP_", "OTEL_")):
            monkeypatch.delenv(name)
    yield


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """A loopback port nothing listens on right now (bound, read and released)."""
    return _free_port


class Server:
    """The service as a real process: the launcher running Granian on a loopback port, its output in a log file."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.log = log

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **kwargs)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]

    def access_lines(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("logger") == "access"]

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if self.get("/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"not ready after {timeout} s:\n{self.log.read_text()}")


@contextmanager
def _service_starter(folder: Path, free_port: Callable[[], int]) -> Iterator[Callable[..., Any]]:
    """``with start(env, argv) as server:`` starts the service in ``folder``; every one started is stopped after."""
    started: list[subprocess.Popen[bytes]] = []

    @contextmanager
    def start(env: dict[str, str] | None = None, argv: list[str] | None = None) -> Iterator[Server]:
        port = free_port()
        log = folder / f"service-{port}.log"
        # Only the settings given here: none of the developer's own APP_* or OTEL_* variables.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("APP_", "OTEL_"))}
        settings = {"APP_PORT": str(port), "APP_LOG_FORMAT": "json", **(env or {})}
        command = argv or [sys.executable, "-m", "microservice_demo"]
        process = subprocess.Popen(
            [*command[:1], *(a.replace("{port}", str(port)) for a in command[1:])],
            cwd=REPO_ROOT,
            env={**inherited, **settings},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        server = Server(process, port, log)
        server.wait_ready()
        yield server

    try:
        yield start
    finally:
        for process in started:
            if process.poll() is None:
                process.terminate()  # Granian stops its worker on SIGTERM; SIGKILL would orphan it
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)


@pytest.fixture
def start_service(tmp_path: Path, free_port: Callable[[], int]) -> Iterator[Callable[..., Any]]:
    with _service_starter(tmp_path, free_port) as start:
        yield start


@pytest.fixture(scope="module")
def start_module_service(
    tmp_path_factory: pytest.TempPathFactory, free_port: Callable[[], int]
) -> Iterator[Callable[..., Any]]:
    """start_service for a fixture that serves a whole module."""
    with _service_starter(tmp_path_factory.mktemp("service"), free_port) as start:
        yield start
