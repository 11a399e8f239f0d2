"""Each environment's figures, as the design table gives them."""

from __future__ import annotations

from typing import Any

import pytest

TABLE = {
    #          replicas  requests            limits             fault injection
    "dev": (1, ("100m", "128Mi"), ("500m", "512Mi"), "true"),
    "staging": (2, ("200m", "256Mi"), ("1000m", "1Gi"), "true"),
    # None: no spec.replicas, the HPA owns the count (3 to 10, test_only_prod_autoscales_and_has_a_disruption_budget).
    "prod": (None, ("500m", "512Mi"), ("2000m", "2Gi"), "false"),
}


@pytest.mark.parametrize("env", TABLE)
def test_figures(overlays: dict[str, Any], env: str) -> None:
    replicas, requests, limits, fault_injection = TABLE[env]
    rendered = overlays[env]
    assert rendered.one("Deployment")["spec"].get("replicas") == replicas
    resources = rendered.container["resources"]
    assert (resources["requests"]["cpu"], resources["requests"]["memory"]) == requests
    assert (resources["limits"]["cpu"], resources["limits"]["memory"]) == limits
    assert rendered.settings["APP_FAULT_INJECTION"] == fault_injection
    assert rendered.settings["APP_ENVIRONMENT"] == env


@pytest.mark.parametrize("env", TABLE)
def test_namespace(overlays: dict[str, Any], env: str) -> None:
    namespaces = {obj["metadata"].get("namespace") for obj in overlays[env].objects}
    assert namespaces == {f"microservice-demo-{env}"}


def test_debug_logs_in_dev_only(overlays: dict[str, Any]) -> None:
    assert {env: r.settings["APP_LOG_LEVEL"] for env, r in overlays.items()} == {
        "dev": "DEBUG",
        "staging": "INFO",
        "prod": "INFO",
    }


def test_only_prod_autoscales_and_has_a_disruption_budget(overlays: dict[str, Any]) -> None:
    for env in ("dev", "staging"):
        kinds = {obj["kind"] for obj in overlays[env].objects}
        assert not kinds & {"HorizontalPodAutoscaler", "PodDisruptionBudget", "VerticalPodAutoscaler"}
    prod = overlays["prod"]
    hpa = prod.one("HorizontalPodAutoscaler")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 10)
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["metrics"]}
    assert targets == {"cpu": 70, "memory": 80}
    assert prod.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_the_vpa_only_recommends(overlays: dict[str, Any]) -> None:
    assert overlays["prod"].one("VerticalPodAutoscaler")["spec"]["updatePolicy"]["updateMode"] == "Off"


@pytest.mark.parametrize("env", TABLE)
def test_telemetry_settings_are_the_same_everywhere(overlays: dict[str, Any], env: str) -> None:
    settings = overlays[env].settings
    assert settings["OTEL_SERVICE_NAME"] == "microservice-demo"
    assert settings["OTEL_SEMCONV_STABILITY_OPT_IN"] == "http"
    # The service derives deployment.environment from APP_ENVIRONMENT (telemetry.build_resource): one home.
    assert "OTEL_RESOURCE_ATTRIBUTES" not in settings
    assert settings["APP_ENVIRONMENT"] == env
    assert settings["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://alloy.observability.svc.cluster.local:4318"
