"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator

import pytest


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
