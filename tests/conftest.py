"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's own APP_* or OTEL_* variables."""
    for name in list(os.environ):
        if name.startswith(("APP_", "OTEL_")):
            monkeypatch.delenv(name)
    yield
