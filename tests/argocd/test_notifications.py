"""argocd-notifications: triggers evaluated with Argo CD's own expression engine against sample Application
states, templates and services checked against the subscriptions that use them."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
EXPR_EVAL = ROOT / ".tools" / "bin" / "expr-eval"
SUBSCRIPTION = re.compile(r"^notifications\.argoproj\.io/subscribe\.([\w-]+)\.([\w-]+)$")


def _evaluate(cases: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    if not EXPR_EVAL.exists():
        message = "tools/expr-eval is not built: run ./scripts/test as root (it installs Go and builds it)"
        if os.environ.get("CI") == "true" or os.geteuid() == 0:
            pytest.fail(message)
        pytest.skip(message)
    payload = {"cases": [{"id": str(i), "expression": e, "app": app} for i, (e, app) in enumerate(cases)]}
    result = subprocess.run([str(EXPR_EVAL)], input=json.dumps(payload), capture_output=True, text=True, check=True)
    outputs = json.loads(result.stdout)
    for (expression, _), output in zip(cases, outputs, strict=True):
        assert "error" not in output, f"{expression}: {output.get('error')}"
    return [output["result"] for output in outputs]


def _triggers(notifications: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {
        key.removeprefix("trigger."): yaml.safe_load(value)
        for key, value in notifications.items()
        if key.startswith("trigger.")
    }


def _app(phase: str | None, health: str, revision: str = "a1b2c3") -> dict[str, Any]:
    status: dict[str, Any] = {"health": {"status": health}, "sync": {"status": "Synced", "revision": revision}}
    if phase is not None:
        status["operationState"] = {"phase": phase, "syncResult": {"revision": revision}, "message": "..."}
    return {"metadata": {"name": "microservice-demo-dev", "labels": {"environment": "dev"}}, "status": status}


def _fired(trigger: list[dict[str, Any]], states: list[dict[str, Any]]) -> list[str]:
    """Replay states through one trigger as the notifications controller does: a condition that holds sends once
    per distinct oncePer value (or on every state that matches, when the condition has no oncePer)."""
    (condition,) = trigger
    whens = _evaluate([(condition["when"], state) for state in states])
    keys = (
        _evaluate([(condition["oncePer"], state) for state in states])
        if "oncePer" in condition
        else [None] * len(states)
    )
    sent: list[str] = []
    for state, when, key in zip(states, whens, keys, strict=True):
        assert isinstance(when, bool), f"`when` must be boolean, got {when!r}"
        if when and (key is None or key not in sent):
            sent.append(key if key is not None else state["status"]["health"]["status"])
    return sent


def test_every_trigger_compiles_and_runs_on_an_empty_application(notifications: dict[str, Any]) -> None:
    triggers = _triggers(notifications)
    assert set(triggers) == {
        "on-sync-failed",
        "on-health-degraded",
        "on-deployed",
        "on-deployed-commit-status",
        "on-deployed-promote",
    }
    results = _evaluate([(c["when"], {"metadata": {"name": "x"}, "status": {}}) for t in triggers.values() for c in t])
    assert all(result is False for result in results)


def test_on_deployed_fires_once_per_revision_and_only_when_synced_and_healthy(notifications: dict[str, Any]) -> None:
    states = [
        _app("Running", "Progressing", "r1"),
        _app("Succeeded", "Progressing", "r1"),  # synced, the post-deploy check still running
        _app("Succeeded", "Healthy", "r1"),
        _app("Succeeded", "Healthy", "r1"),  # the next refresh of the same revision
        _app("Running", "Healthy", "r2"),
        _app("Succeeded", "Healthy", "r2"),
    ]
    for name in ("on-deployed", "on-deployed-commit-status", "on-deployed-promote"):
        assert _fired(_triggers(notifications)[name], states) == ["r1", "r2"], name


def test_a_failed_sync_alerts(notifications: dict[str, Any]) -> None:
    trigger = _triggers(notifications)["on-sync-failed"]
    assert _fired(trigger, [_app("Failed", "Degraded")]) == ["Degraded"]
    assert _fired(trigger, [_app("Error", "Healthy")]) == ["Healthy"]
    assert _fired(trigger, [_app("Succeeded", "Healthy"), _app(None, "Healthy")]) == []
    assert _fired(_triggers(notifications)["on-deployed"], [_app("Failed", "Healthy")]) == []


def test_degraded_health_alerts(notifications: dict[str, Any]) -> None:
    trigger = _triggers(notifications)["on-health-degraded"]
    assert _fired(trigger, [_app("Succeeded", "Degraded")]) == ["Degraded"]
    assert _fired(trigger, [_app("Succeeded", "Healthy"), _app("Running", "Progressing")]) == []


def test_every_trigger_sends_templates_that_exist(notifications: dict[str, Any]) -> None:
    for name, conditions in _triggers(notifications).items():
        for condition in conditions:
            for template in condition["send"]:
                assert f"template.{template}" in notifications, f"{name} sends unknown template {template}"
                assert yaml.safe_load(notifications[f"template.{template}"]), template


def test_subscriptions_name_existing_triggers_and_services(argocd: Any, notifications: dict[str, Any]) -> None:
    triggers = _triggers(notifications)
    services = {key.split(".")[-1] for key in notifications if key.startswith("service.")}
    seen = set()
    for name, app in argocd.all_applications().items():
        for key in app["metadata"].get("annotations") or {}:
            match = SUBSCRIPTION.match(key)
            if not match:
                continue
            trigger, service = match.groups()
            assert trigger in triggers, f"{name}: unknown trigger {trigger}"
            assert service in services, f"{name}: unknown service {service}"
            seen.add((name, trigger, service))
            for condition in triggers[trigger]:
                for template in condition["send"]:
                    body = yaml.safe_load(notifications[f"template.{template}"])
                    if service in ("github", "promotion"):
                        assert service in body.get("webhook", {}), f"{template} has no webhook.{service} for {name}"
                    else:
                        assert "message" in body, f"{template} has no message for {service}"
    # Every environment asks for the promotion onward (one template for all); from the last one in the promotion
    # order the promotion pipeline has nothing to do.
    environments = set(argocd.generated_by)
    promotions = {name for name, trigger, _ in seen if trigger == "on-deployed-promote"}
    assert promotions == environments
    for app in environments:
        assert {
            (app, "on-sync-failed", "slack"),
            (app, "on-health-degraded", "email"),
            (app, "on-deployed-commit-status", "github"),
        } <= seen


def test_secrets_are_referenced_never_written(notifications: dict[str, Any]) -> None:
    services = {key: yaml.safe_load(value) for key, value in notifications.items() if key.startswith("service.")}
    text = json.dumps(services)
    for field in ("token", "password"):
        for value in re.findall(rf'"{field}": "([^"]*)"', text):
            assert value.startswith("$"), f"{field} must reference argocd-notifications-secret"
    assert "token $github-token" in text
    assert services["service.webhook.promotion"]["url"].startswith("http://el-promotion.ci-cd.svc"), "in-cluster only"
