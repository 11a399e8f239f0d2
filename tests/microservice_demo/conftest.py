"""Fixtures for the service's tests: an app built from explicit settings, with its JSON logs captured."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from litestar.testing import TestClient

from microservice_demo.app import create_app
from microservice_demo.runtime import Runtime
from microservice_demo.settings import Settings

ADMIN_TOKEN = "test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Logs:
    """The JSON lines an app wrote, parsed."""

    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._stream.getvalue().splitlines() if line.strip()]

    def access(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("logger") == "access"]


class Service:
    def __init__(self, client: TestClient[Any], logs: Logs) -> None:
        self.client = client
        self.logs = logs

    @property
    def runtime(self) -> Runtime:
        return Runtime.of(self.client.app.state)


@pytest.fixture
def make_service() -> Iterator[Callable[..., Any]]:
    """``with make_service(**settings) as svc:`` runs the app's lifespan around the block."""

    @contextmanager
    def factory(**overrides: Any) -> Iterator[Service]:
        stream = io.StringIO()
        settings = Settings(**{"log_format": "json", **overrides})
        with TestClient(create_app(settings, log_stream=stream)) as client:
            yield Service(client, Logs(stream))

    yield factory


@pytest.fixture
def service(make_service: Callable[..., Any]) -> Iterator[Service]:
    with make_service() as svc:
        yield svc


@pytest.fixture
def auth() -> dict[str, str]:
    return dict(AUTH)


@pytest.fixture
def admin_service(make_service: Callable[..., Any]) -> Iterator[Service]:
    with make_service(admin_token=ADMIN_TOKEN, fault_injection=True) as svc:
        yield svc
