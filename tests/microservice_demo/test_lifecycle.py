"""Lifecycle states, and the Deployment settings that make a pod leave the endpoints before SIGTERM reaches it.

How a deleted pod stops getting traffic, with no help from the service: deleting it marks it terminating at once
(``deletionTimestamp``), and the EndpointSlice controller turns its endpoint ``ready: false, terminating: true``
whatever its readiness probe says. kube-proxy on every node and the Gateway's Envoy proxies (through Envoy
Gateway's xDS) stop choosing it for new requests as that change reaches them. In parallel the kubelet runs the
container's ``preStop`` hook, a plain sleep, and only when it has ended sends SIGTERM; the sleep is the time the
proxies get to converge while the service still answers whatever reaches it. Then Granian stops accepting,
finishes the requests in flight and exits (``test_process.py`` shows that on the real process). The grace period
counts from the deletion, so it has to hold the sleep and that shutdown, or the kubelet's SIGKILL cuts requests.

The readiness probe is the other way out of the endpoints: it takes out a pod that stops serving while nobody is
deleting it (its container restarted after a crash or a failed liveness probe).
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops.layout import environments
from gitops.render import render

from microservice_demo.lifecycle import Lifecycle

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = REPO_ROOT / "base" / "microservice-demo" / "deployment.yaml"
ENVIRONMENTS = tuple(environments(REPO_ROOT))

# Time for the EndpointSlice change to reach kube-proxy on every node and Envoy: a second or two on a healthy
# cluster, more on a busy one.
ENDPOINT_CONVERGENCE_SECONDS = 5
# Granian's graceful shutdown after SIGTERM: the requests in flight (well under a second each unless latency is
# injected on purpose) and the lifespan shutdown, whose last span export is one OTLP request with the exporter's
# default 10 s timeout.
SHUTDOWN_ROOM_SECONDS = 20
# A pod that stops answering /ready while it is not being deleted leaves the endpoints within this.
READINESS_REMOVAL_SECONDS = 10


def test_states() -> None:
    lifecycle = Lifecycle()
    assert (lifecycle.state, lifecycle.ready) == ("starting", False)
    lifecycle.ready = True
    assert lifecycle.state == "serving"
    lifecycle.alive = False
    assert lifecycle.state == "unhealthy"
    lifecycle.begin_shutdown()
    assert (lifecycle.state, lifecycle.ready) == ("stopping", False)


def _pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod["containers"]
    assert isinstance(container, dict)
    return container


@pytest.fixture(scope="module")
def base_pod() -> dict[str, Any]:
    return _pod_spec(yaml.safe_load(DEPLOYMENT.read_text()))


def test_the_prestop_sleep_comes_before_sigterm_within_the_grace_period(base_pod: dict[str, Any]) -> None:
    hook = _container(base_pod)["lifecycle"]["preStop"]
    assert list(hook) == ["sleep"], "the kubelet's own sleep action: the distroless image has no `sleep` binary"
    sleep = hook["sleep"]["seconds"]
    assert sleep >= ENDPOINT_CONVERGENCE_SECONDS, "SIGTERM would come before the proxies stopped sending requests"
    grace = base_pod["terminationGracePeriodSeconds"]
    assert grace > sleep, "the sleep counts against the grace period"
    assert grace - sleep >= SHUTDOWN_ROOM_SECONDS, "too little left after the sleep for Granian to finish requests"


def test_the_readiness_probe_takes_a_pod_that_stops_serving_out(base_pod: dict[str, Any]) -> None:
    container = _container(base_pod)
    probe = container["readinessProbe"]
    assert probe["httpGet"]["path"] == "/ready"
    assert probe["httpGet"]["port"] in {port["name"] for port in container["ports"]}
    worst_case = probe["periodSeconds"] * probe["failureThreshold"] + probe["timeoutSeconds"]
    assert worst_case <= READINESS_REMOVAL_SECONDS
    assert container["startupProbe"]["httpGet"]["path"] == "/ready", "no traffic before the lifespan start-up ran"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_keeps_the_base_shutdown_settings(env: str, base_pod: dict[str, Any]) -> None:
    objects = render(REPO_ROOT / "overlays" / env, REPO_ROOT)[1]
    (deployment,) = [obj for obj in objects if obj["kind"] == "Deployment"]
    pod = _pod_spec(deployment)
    assert pod["terminationGracePeriodSeconds"] == base_pod["terminationGracePeriodSeconds"]
    for field in ("lifecycle", "readinessProbe", "startupProbe"):
        assert _container(pod)[field] == _container(base_pod)[field], field


def test_what_start_up_built_is_frozen_while_serving_and_released_at_shutdown(make_service: Any) -> None:
    """gc.freeze() after start-up keeps full collections from walking the long-lived objects (bench/README.md);
    gc.unfreeze() at shutdown hands them back to the collector."""
    gc.unfreeze()
    with make_service() as service:
        assert service.client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
