"""What a reviewer can't see in the YAML: that the objects of each environment really point at each other."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops.layout import environments

from microservice_demo.app import create_app
from microservice_demo.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = tuple(environments(ROOT))
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _pod_labels(rendered: Any) -> dict[str, str]:
    labels: dict[str, str] = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    return labels


@pytest.fixture(params=ENVIRONMENTS)
def env(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_service_selects_exactly_the_deployments_pods(overlays: dict[str, Any], env: str) -> None:
    rendered = overlays[env]
    deployment = rendered.one("Deployment")["spec"]
    service = rendered.one("Service")["spec"]
    assert service["selector"] == deployment["selector"]["matchLabels"]
    assert _matches(service["selector"], _pod_labels(rendered))
    ports = {port["name"] for port in rendered.container["ports"]}
    assert {port["targetPort"] for port in service["ports"]} <= ports


def test_selectors_use_only_the_stable_name_label(overlays: dict[str, Any], env: str) -> None:
    assert overlays[env].one("Deployment")["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "microservice-demo"
    }


def test_common_labels(overlays: dict[str, Any], env: str) -> None:
    for obj in overlays[env].objects:
        labels = obj["metadata"]["labels"]
        expected_name = {"deploy-check": "microservice-demo-deploy-check"}.get(
            labels["app.kubernetes.io/component"], "microservice-demo"
        )
        assert labels["app.kubernetes.io/name"] == expected_name, obj["kind"]
        assert labels["app.kubernetes.io/instance"] == f"microservice-demo-{env}"
        assert labels["app.kubernetes.io/part-of"] == "microservice-demo"
        assert labels["app.kubernetes.io/managed-by"] == "argocd"
        assert labels["app.kubernetes.io/component"] in {"api", "deploy-check"}
        assert labels["app.kubernetes.io/version"]


def test_network_policies_target_the_right_pods_and_peers(overlays: dict[str, Any], env: str) -> None:
    rendered = overlays[env]
    policies = {p["metadata"]["name"]: p["spec"] for p in rendered.all("NetworkPolicy")}
    deny = policies.pop("default-deny-all")
    policies.pop("microservice-demo-deploy-check")  # the check's own pod: test_the_deploy_check_can_reach_the_service
    assert deny["podSelector"] == {}
    assert sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny and "egress" not in deny
    for spec in policies.values():
        assert _matches(spec["podSelector"]["matchLabels"], _pod_labels(rendered))

    ingress = policies["microservice-demo-allow-ingress"]["ingress"]
    peers = [
        (r["from"][0]["namespaceSelector"]["matchLabels"], r["from"][0]["podSelector"]["matchLabels"]) for r in ingress
    ]
    assert peers == [
        ({"kubernetes.io/metadata.name": "envoy-gateway-system"},
         {"app.kubernetes.io/name": "envoy", "app.kubernetes.io/managed-by": "envoy-gateway"}),
        ({"kubernetes.io/metadata.name": "observability"}, {"app.kubernetes.io/name": "prometheus"}),
    ]  # fmt: skip
    container_ports = {p["name"] for p in rendered.container["ports"]}
    assert all(port["port"] in container_ports for rule in ingress for port in rule["ports"])

    egress = policies["microservice-demo-allow-egress"]["egress"]
    allowed = {
        (
            rule["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            port["port"],
            port["protocol"],
        )
        for rule in egress
        for port in rule["ports"]
    }
    assert allowed == {("kube-system", 53, "UDP"), ("kube-system", 53, "TCP"), ("observability", 4318, "TCP")}
    otlp = rendered.settings["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert re.fullmatch(r"http://alloy\.observability\.svc\.cluster\.local:4318", otlp), (
        "egress must allow the OTLP endpoint"
    )


def test_the_pdb_hpa_and_vpa_target_the_deployment(overlays: dict[str, Any]) -> None:
    prod = overlays["prod"]
    assert _matches(prod.one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"], _pod_labels(prod))
    for kind, field in (("HorizontalPodAutoscaler", "scaleTargetRef"), ("VerticalPodAutoscaler", "targetRef")):
        target = prod.one(kind)["spec"][field]
        assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", "microservice-demo")


def test_the_servicemonitor_scrapes_the_services_named_port(overlays: dict[str, Any], env: str) -> None:
    rendered = overlays[env]
    monitor = rendered.one("ServiceMonitor")["spec"]
    service = rendered.one("Service")
    assert _matches(monitor["selector"]["matchLabels"], service["metadata"]["labels"])
    (endpoint,) = monitor["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert (endpoint["path"], endpoint["interval"], endpoint["scrapeTimeout"]) == ("/metrics", "30s", "10s")


def test_probe_paths_exist_in_the_service(overlays: dict[str, Any], env: str) -> None:
    container = overlays[env].container
    app_paths = {route.path for route in create_app(Settings(log_level="ERROR")).routes}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] in app_paths, probe
        assert get["port"] in {port["name"] for port in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def _image_environment() -> dict[str, str]:
    """The variables the Containerfile's ENV instructions set (KEY=value forms, lines joined at backslashes)."""
    text = (ROOT / "Containerfile").read_text().replace("\\\n", " ")
    return {
        key: value
        for line in re.findall(r"^ENV (.*)$", text, re.M)
        for key, value in re.findall(r"([A-Z_][A-Z0-9_]*)=(\S*)", line)
    }


def test_the_configmap_repeats_nothing_the_image_sets(overlays: dict[str, Any], env: str) -> None:
    """One home per setting: how the container listens and logs is the image's; the ConfigMap adds the rest."""
    image = _image_environment()
    assert {"APP_HOST", "APP_PORT", "APP_LOG_FORMAT"} <= set(image)
    assert not set(overlays[env].settings) & set(image)


def test_every_setting_in_the_configmap_is_one_the_service_accepts(
    overlays: dict[str, Any], env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in _image_environment().items():  # what the container starts with, then the ConfigMap's
        if key.startswith("APP_") and "$" not in value:
            monkeypatch.setenv(key, value)
    settings = dict(overlays[env].settings)
    secrets_dir = settings.pop("APP_SECRETS_DIR")
    deployment = overlays[env].one("Deployment")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in deployment["containers"][0]["volumeMounts"]}
    secret_volume = next(v for v in deployment["volumes"] if v["name"] == mounts[secrets_dir])
    assert secret_volume["secret"]["items"] == [{"key": "token", "path": "app_admin_token"}]
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    loaded = Settings()
    assert loaded.environment == env
    (port,) = deployment["containers"][0]["ports"]
    assert loaded.port == port["containerPort"]
    assert (loaded.host, loaded.log_format) == ("0.0.0.0", "json")
    # The service ignores APP_* variables it doesn't know (extra="ignore"), so a stale one would pass unnoticed.
    unknown = {key for key in settings if key.startswith("APP_") and key[4:].lower() not in Settings.model_fields}
    assert not unknown, f"settings the service does not have: {sorted(unknown)}"


def test_pods_run_restricted_as_the_images_user(overlays: dict[str, Any], env: str) -> None:
    image_user = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Containerfile").read_text(), re.M)
    assert image_user is not None
    uid, gid = int(image_user.group(1)), int(image_user.group(2))
    pod = overlays[env].one("Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]["securityContext"]
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (uid, gid)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert container["allowPrivilegeEscalation"] is False
    assert container["readOnlyRootFilesystem"] is True
    assert container["capabilities"] == {"drop": ["ALL"]}
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    assert tmp["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Mi"}


def test_rollouts_never_take_a_pod_away(overlays: dict[str, Any], env: str) -> None:
    strategy = overlays[env].one("Deployment")["spec"]["strategy"]
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_resource_names_are_the_same_in_every_overlay(overlays: dict[str, Any]) -> None:
    def names(env: str) -> set[tuple[str, str]]:
        return {
            (
                obj["kind"],
                re.sub(r"-[a-z0-9]{10}$", "", obj["metadata"]["name"])
                if obj["kind"] == "ConfigMap"
                else obj["metadata"]["name"],
            )
            for obj in overlays[env].objects
            if obj["kind"] not in {"HorizontalPodAutoscaler", "PodDisruptionBudget", "VerticalPodAutoscaler"}
        }

    assert names("dev") == names("staging") == names("prod")
    assert ("Deployment", "microservice-demo") in names("prod")


def test_each_route_attaches_to_its_environments_listener(overlays: dict[str, Any], networking: Any, env: str) -> None:
    route = overlays[env].one("HTTPRoute")["spec"]
    (parent,) = route["parentRefs"]
    gateway = networking.one("Gateway", parent["name"])
    assert gateway["metadata"]["namespace"] == parent["namespace"]
    listener = next(item for item in gateway["spec"]["listeners"] if item["name"] == parent["sectionName"])
    assert listener["protocol"] == "HTTPS"
    assert route["hostnames"] == [listener["hostname"]]
    assert parent["sectionName"] == f"https-{env}"
    selector = listener["allowedRoutes"]["namespaces"]["selector"]["matchLabels"]
    assert selector == {"gitops/environment": env}  # the environment's namespace (base/security/environments/)
    settings = yaml.safe_load((ROOT / "settings" / "site.yaml").read_text())["data"]
    assert listener["hostname"] == settings[f"{env}Host"]
    backend = route["rules"][0]["backendRefs"][0]
    service = overlays[env].one("Service")
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"] in {port["port"] for port in service["spec"]["ports"]}


def test_each_https_listener_admits_routes_from_one_namespace(networking: Any) -> None:
    """The service's environments (each by its gitops/environment label, which one namespace carries:
    tests/security/test_environments.py), Grafana (observability) and GitHub's webhooks (ci-cd), by name; no
    listener admits routes from every namespace."""
    gateway = networking.one("Gateway")
    admitted = []
    for listener in gateway["spec"]["listeners"]:
        namespaces = listener["allowedRoutes"]["namespaces"]
        if listener["protocol"] == "HTTPS":
            assert namespaces["from"] == "Selector"
            ((key, value),) = namespaces["selector"]["matchLabels"].items()
            assert key in ("kubernetes.io/metadata.name", "gitops/environment")
            admitted.append(value)
        else:
            assert namespaces["from"] == "Same"
    expected = [*ENVIRONMENTS, "observability", "ci-cd"]
    assert sorted(admitted) == sorted(expected)
    assert (
        gateway["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
        == networking.one("ClusterIssuer")["metadata"]["name"]
    )


def test_the_image_lives_in_a_release_file_of_its_own(overlays: dict[str, Any], env: str) -> None:
    release = yaml.safe_load((ROOT / "overlays" / env / "release" / "kustomization.yaml").read_text())
    assert set(release) == {"apiVersion", "kind", "images", "labels"}
    (image,) = release["images"]
    container = overlays[env].container
    assert container["image"] == f"{image['newName']}:{image['newTag']}@{image['digest']}"
    assert DIGEST.search(container["image"]), "every environment pins its image by digest"
    env_vars = {item["name"]: item.get("value") for item in container["env"]}
    assert env_vars["APP_IMAGE"] == container["image"], "/api/v1/info must report the image the overlay names"
    version = overlays[env].one("Deployment")["metadata"]["labels"]["app.kubernetes.io/version"]
    assert version == image["newTag"]
    overlay = (ROOT / "overlays" / env / "kustomization.yaml").read_text()
    assert "images:" not in overlay and "sha256" not in overlay, "the overlay itself must not name the image"


def test_the_deploy_check_runs_after_each_sync_with_the_service_image(overlays: dict[str, Any], env: str) -> None:
    rendered = overlays[env]
    job = rendered.one("Job", "microservice-demo-deploy-check")
    annotations = job["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "PostSync"
    assert annotations["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation,HookSucceeded"
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == rendered.container["image"]
    env_vars = {item["name"]: item["value"] for item in container["env"]}
    assert env_vars["EXPECTED_IMAGE"] == rendered.container["image"]
    args = container["args"]
    service = rendered.one("Service")
    assert args[args.index("--url") + 1] == f"http://{service['metadata']['name']}"
    assert 80 in {port["port"] for port in service["spec"]["ports"]}
    assert container["command"][-1] == "microservice_demo.verify"
    assert (
        pod["securityContext"] | {"fsGroup": 10001}
        == rendered.one("Deployment")["spec"]["template"]["spec"]["securityContext"]
    )
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert not _matches(service["spec"]["selector"], job["spec"]["template"]["metadata"]["labels"]), (
        "the Service must not send traffic to the check's pod"
    )


def test_the_deploy_check_can_reach_the_service(overlays: dict[str, Any], env: str) -> None:
    rendered = overlays[env]
    check_labels = rendered.one("Job")["spec"]["template"]["metadata"]["labels"]
    policies = {p["metadata"]["name"]: p["spec"] for p in rendered.all("NetworkPolicy")}
    egress = policies["microservice-demo-deploy-check"]
    assert _matches(egress["podSelector"]["matchLabels"], check_labels)
    to_service = egress["egress"][0]
    assert _matches(to_service["to"][0]["podSelector"]["matchLabels"], _pod_labels(rendered))
    assert to_service["ports"] == [{"port": "http", "protocol": "TCP"}]
    ingress = policies["microservice-demo-allow-deploy-check"]
    assert _matches(ingress["podSelector"]["matchLabels"], _pod_labels(rendered))
    assert _matches(ingress["ingress"][0]["from"][0]["podSelector"]["matchLabels"], check_labels)
