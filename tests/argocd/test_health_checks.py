"""The Lua health checks in argocd-cm, run by a real Lua 5.1 (lupa's bundled interpreter; Argo CD runs gopher-lua,
a Lua 5.1) against sample objects: they are what makes the sync waves wait."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops.repository import repo_root
from lupa import lua51

ROOT = repo_root(Path(__file__))
PREFIX = "resource.customizations.health."


@pytest.fixture(scope="module")
def health() -> Callable[[str, dict[str, Any]], dict[str, str]]:
    data = yaml.safe_load((ROOT / "argocd" / "config" / "argocd-cm.yaml").read_text())["data"]
    checks = {key.removeprefix(PREFIX): script for key, script in data.items() if key.startswith(PREFIX)}

    def run(kind: str, obj: dict[str, Any]) -> dict[str, str]:
        lua = lua51.LuaRuntime()
        lua.globals().obj = lua.table_from(obj, recursive=True)
        result = lua.execute(checks[kind])
        return {"status": result["status"], "message": result["message"]}

    return run


def test_an_application_is_as_healthy_as_argo_cd_says(health: Callable[..., dict[str, str]]) -> None:
    assert health("argoproj.io_Application", {})["status"] == "Progressing"
    assert health("argoproj.io_Application", {"status": {}})["status"] == "Progressing"
    healthy = {"status": {"health": {"status": "Healthy"}}}
    assert health("argoproj.io_Application", healthy) == {"status": "Healthy", "message": ""}
    degraded = {"status": {"health": {"status": "Degraded", "message": "Deployment failed"}}}
    assert health("argoproj.io_Application", degraded) == {"status": "Degraded", "message": "Deployment failed"}


def test_a_tekton_config_is_healthy_once_the_operator_says_ready(health: Callable[..., dict[str, str]]) -> None:
    kind = "operator.tekton.dev_TektonConfig"
    assert health(kind, {})["status"] == "Progressing"

    def conditions(*items: tuple[str, str]) -> dict[str, Any]:
        return {"status": {"conditions": [{"type": t, "status": s, "message": f"{t} is {s}"} for t, s in items]}}

    assert health(kind, conditions(("ComponentsReady", "True"), ("Ready", "Unknown")))["status"] == "Progressing"
    assert health(kind, conditions(("ComponentsReady", "True"), ("Ready", "True"))) == {
        "status": "Healthy",
        "message": "Ready is True",
    }
    assert health(kind, conditions(("Ready", "False")))["status"] == "Degraded"


def test_an_alertmanager_is_healthy_once_the_operator_says_available(health: Callable[..., dict[str, str]]) -> None:
    kind = "monitoring.coreos.com_Alertmanager"
    assert health(kind, {})["status"] == "Progressing"

    def available(status: str, reason: str) -> dict[str, Any]:
        return {
            "status": {"conditions": [{"type": "Available", "status": status, "reason": reason, "message": reason}]}
        }

    assert health(kind, available("True", ""))["status"] == "Healthy"
    assert health(kind, available("False", "SomePodsNotReady"))["status"] == "Progressing"
    assert health(kind, available("False", "NoPodReady")) == {"status": "Degraded", "message": "NoPodReady"}
