"""The service namespaces' ResourceQuotas and LimitRanges, recomputed from what each overlay really runs."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest
from gitops.layout import environments
from gitops.render import render
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
UNITS = {"": 1, "m": 0.001, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def quantity(text: str | int) -> float:
    """A Kubernetes quantity in the forms this repository writes (500m, 2, 512Mi, 2Gi). (The kubernetes client's
    parse_quantity would do; it is not a dependency of this repository, and these four suffixes are all it uses.)"""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?", str(text))
    assert match, f"unexpected quantity {text!r}"
    return float(match[1]) * UNITS[match[2] or ""]


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    found = [o for o in objects if o["kind"] == kind]
    return found[0] if found else None


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def _sum(obj: dict[str, Any], kind: str, resource: str) -> float:
    return sum(quantity(c["resources"][kind][resource]) for c in _pod_spec(obj)["containers"])


def _need(overlay: list[dict[str, Any]]) -> dict[str, float]:
    """The most the environment runs at once: its replicas (the HPA's maximum if it has one) plus one surge pod
    during a rollout, plus the post-deploy check's Job."""
    deployment = _one(overlay, "Deployment")
    assert deployment is not None
    hpa = _one(overlay, "HorizontalPodAutoscaler")
    replicas = hpa["spec"]["maxReplicas"] if hpa else deployment["spec"]["replicas"]
    pods = replicas + int(deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"])
    jobs = [o for o in overlay if o["kind"] == "Job"]
    need = {"pods": float(pods + len(jobs))}
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            need[f"{kind}.{resource}"] = pods * _sum(deployment, kind, resource) + sum(
                _sum(job, kind, resource) for job in jobs
            )
    return need


@functools.cache
def _overlay(env: str) -> list[dict[str, Any]]:
    return render(ROOT / "overlays" / env, ROOT)[1]


def _in_namespace(objects: list[dict[str, Any]], kind: str, env: str) -> dict[str, Any]:
    (obj,) = [o for o in objects if o["kind"] == kind and o["metadata"]["namespace"] == f"microservice-demo-{env}"]
    return obj


@pytest.mark.parametrize("env", environments(ROOT))
def test_each_quota_fits_what_the_environment_runs_with_bounded_headroom(
    env: str, security: list[dict[str, Any]]
) -> None:
    overlay = _overlay(env)
    quota = _in_namespace(security, "ResourceQuota", env)
    for resource, need in _need(overlay).items():
        hard = quantity(quota["spec"]["hard"][resource])
        assert need <= hard <= 2 * need, f"{env} {resource}: needs {need}, quota {hard}"


@pytest.mark.parametrize("env", environments(ROOT))
def test_each_limit_range_admits_the_overlays_containers_and_defaults_to_the_service(
    env: str, security: list[dict[str, Any]]
) -> None:
    overlay = _overlay(env)
    (limits,) = _in_namespace(security, "LimitRange", env)["spec"]["limits"]
    assert limits["type"] == "Container"
    for workload in (o for o in overlay if o["kind"] in ("Deployment", "Job")):
        for container in _pod_spec(workload)["containers"]:
            for resource in ("cpu", "memory"):
                assert quantity(container["resources"]["limits"][resource]) <= quantity(limits["max"][resource])
    deployment = _one(overlay, "Deployment")
    assert deployment is not None
    (service,) = _pod_spec(deployment)["containers"]
    for resource in ("cpu", "memory"):
        assert quantity(limits["default"][resource]) == quantity(service["resources"]["limits"][resource])
        assert quantity(limits["defaultRequest"][resource]) == quantity(service["resources"]["requests"][resource])
