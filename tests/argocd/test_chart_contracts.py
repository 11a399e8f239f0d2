"""Each pinned chart's contract (`<application>.contract.yaml` beside its Application) against the Application
itself: the same chart, repository and version, derived with the same values, from a source named at that
version, checked on a date, and current. A version bump or a values change without the contract re-derived from
the chart's templates at the new version fails here; the bootstrap walk (test_bootstrap.py) then uses the contract
for what the chart renders."""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops.contracts import load_contracts
from gitops.render import render
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
CONTRACTS = load_contracts(ROOT)
TEKTON_CONFIG = ROOT / "tekton" / "platform" / "tektonconfig.yaml"


def values_digest(app: dict[str, Any]) -> str:
    values = (app["spec"]["source"].get("helm") or {}).get("valuesObject") or {}
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _minor(version: str) -> tuple[int, int]:
    major, minor = re.findall(r"\d+", version)[:2]
    return int(major), int(minor)


@pytest.fixture(scope="module")
def charts(argocd: Any) -> dict[str, dict[str, Any]]:
    charts: dict[str, dict[str, Any]] = argocd.charts()
    return charts


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_the_contract_is_for_the_pinned_chart_and_values(charts: dict[str, dict[str, Any]], name: str) -> None:
    contract = CONTRACTS[name].data
    source = charts[name]["spec"]["source"]
    assert contract["repoURL"] == source["repoURL"], f"{name}: the contract is for another repository"
    assert contract["version"] == source["targetRevision"], (
        f"{name} pins {source['targetRevision']}, its contract was derived at {contract['version']}: "
        "re-derive the contract from the chart's templates at the new version"
    )
    assert contract["chart"] == source.get("chart", contract["chart"])
    assert contract["valuesDigest"] == values_digest(charts[name]), (
        f"{name}'s values changed since its contract was derived: render the chart with the new values, update "
        f"the contract, then set valuesDigest to {values_digest(charts[name])}"
    )


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_the_contract_says_where_and_when_it_was_read(name: str) -> None:
    contract = CONTRACTS[name].data
    assert contract["source"].startswith("https://github.com/"), name
    version = str(contract["version"]).removeprefix("v")
    assert version in contract["source"], f"{name}: the source must name the version it was read at"
    checked = datetime.date.fromisoformat(contract["checked"])
    assert checked <= datetime.date.today(), name
    assert contract["evidence"], f"{name}: name the template files each fact rests on"
    for key in ("namespaces", "clusterScoped", "namespaced", "crds", "needs", "secretsNotRendered"):
        assert isinstance(contract["renders"][key], list), f"{name}: renders.{key}"


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_every_pin_is_within_the_last_two_minor_releases_or_says_why(name: str) -> None:
    contract = CONTRACTS[name].data
    pinned, newest = _minor(str(contract["version"])), _minor(str(contract["newest"]))
    assert pinned <= newest, f"{name}: the pin is newer than the newest release recorded"
    if pinned != newest or str(contract["version"]).removeprefix("v") != str(contract["newest"]).removeprefix("v"):
        assert contract.get("lagReason"), f"{name} pins {contract['version']}, {contract['newest']} is out: say why"
    behind = newest[1] - pinned[1] if pinned[0] == newest[0] else 99
    assert behind <= 2 or contract.get("lagReason"), f"{name} is {behind} minor releases behind"


def test_the_freshness_rule_rejects_an_old_pin_without_a_reason() -> None:
    """The pins this repository had before: Tekton Operator v0.68.1 when v0.81.1 was out."""
    assert _minor("v0.81.1")[1] - _minor("v0.68.1")[1] > 2


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_a_chart_that_installs_crds_applies_server_side(charts: dict[str, dict[str, Any]], name: str) -> None:
    """CRDs outgrow client-side apply's last-applied annotation (256 KiB)."""
    if CONTRACTS[name].crds():
        assert "ServerSideApply=true" in charts[name]["spec"]["syncPolicy"]["syncOptions"], name


def test_the_pins_table_lists_every_chart_with_its_version_source_and_date() -> None:
    pins = (ROOT / "docs" / "pins.md").read_text()
    for name, loaded in CONTRACTS.items():
        contract = loaded.data
        row = next((line for line in pins.splitlines() if line.startswith(f"| {name} |")), None)
        assert row is not None, f"docs/pins.md: no pins row for {name}"
        assert f"`{contract['version']}`" in row and contract["checked"] in row, row
        assert contract["source"].split("/tree/")[0] in row, row


# What this repository relies on, per chart: the value that keeps each finding of the bootstrap audit fixed.


def test_cert_manager_elects_its_leader_in_its_own_namespace(charts: dict[str, dict[str, Any]]) -> None:
    app = charts["cert-manager"]
    values = app["spec"]["source"]["helm"]["valuesObject"]
    assert values["global"]["leaderElection"]["namespace"] == app["spec"]["destination"]["namespace"]
    assert "kube-system" not in CONTRACTS["cert-manager"].renders["namespaces"]


def test_kube_prometheus_stack_renders_nothing_for_a_control_plane_it_cannot_see(
    charts: dict[str, dict[str, Any]],
) -> None:
    values = charts["kube-prometheus-stack"]["spec"]["source"]["helm"]["valuesObject"]
    for component in ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy", "coreDns", "kubeDns"):
        assert values[component]["enabled"] is False, component
    assert values["crds"]["enabled"] is False, "the CRDs come from prometheus-operator-crds, in an earlier wave"
    assert CONTRACTS["kube-prometheus-stack"].renders["namespaces"] == ["observability"]


def test_no_chart_alert_waits_for_a_target_nothing_scrapes(charts: dict[str, dict[str, Any]]) -> None:
    """An absent() alert on a job nobody scrapes pages for ever: every one the stack renders has its target, and the
    rule groups of the components switched off are off with them (or by defaultRules, where the chart does not
    tie them to the component)."""
    contract = CONTRACTS["kube-prometheus-stack"]
    values = charts["kube-prometheus-stack"]["spec"]["source"]["helm"]["valuesObject"]
    monitors = {target["monitor"] for target in contract.scrape_targets()}
    for absent in contract.data["rules"]["absentAlerts"]:
        assert absent["scrapedBy"] in monitors, absent["alert"]
    for component in contract.data["rules"]["ruleGroupsFollow"]:
        assert values[component]["enabled"] is False, component
    rules = values["defaultRules"]["rules"]
    assert all(rules[group] is False for group in contract.data["rules"]["offByValues"])
    assert values["nodeExporter"]["enabled"] is False


def test_the_prometheus_operator_crds_and_the_stack_ship_the_same_operator() -> None:
    stack, crds = CONTRACTS["kube-prometheus-stack"].data, CONTRACTS["prometheus-operator-crds"].data
    assert stack["ships"]["prometheus-operator"] == crds["ships"]["prometheus-operator"]


def test_trivy_operator_renders_no_compliance_reports(charts: dict[str, dict[str, Any]]) -> None:
    values = charts["trivy-operator"]["spec"]["source"]["helm"]["valuesObject"]
    assert values["compliance"]["specs"] == []
    cluster_scoped = CONTRACTS["trivy-operator"].renders["clusterScoped"]
    assert not any(kind.startswith("ClusterComplianceReport") for kind in cluster_scoped)


def test_the_tekton_config_uses_only_fields_the_pinned_operator_has() -> None:
    config = yaml.safe_load(TEKTON_CONFIG.read_text())
    fields = CONTRACTS["tekton-operator"].data["tektonConfig"]
    unknown = set(config["spec"]) - set(fields["specFields"])
    assert not unknown, f"the operator's webhook rejects unknown fields: {unknown}"
    for key, value in config["spec"]["chain"].items():
        if key in fields["chainBoolFields"]:
            assert isinstance(value, bool), key
        else:
            assert key in fields["chainStringFields"], f"spec.chain.{key} is not a setting of this operator"
            assert isinstance(value, str), f"spec.chain.{key} must be a string, not {value!r}"


def test_the_tekton_config_check_catches_the_fields_shipped_before() -> None:
    """The TektonConfig shipped before set transparency.enabled as a bool, and used targetNamespaceMetadata, which
    operator v0.68.1 did not have."""
    fields = CONTRACTS["tekton-operator"].data["tektonConfig"]
    assert "transparency.enabled" in fields["chainStringFields"]
    assert not isinstance(True, str)
    specs_v0_68 = {"profile", "config", "pruner", "targetNamespace", "addon", "hub", "pipeline", "trigger", "chain",
                   "dashboard", "params", "platforms"}  # fmt: skip
    assert "targetNamespaceMetadata" not in specs_v0_68 < set(fields["specFields"])


def test_the_tekton_operator_does_not_create_a_tekton_config_of_its_own(charts: dict[str, dict[str, Any]]) -> None:
    values = charts["tekton-operator"]["spec"]["source"]["helm"]["valuesObject"]
    assert values["operator"]["autoInstallComponents"] is False
    config = yaml.safe_load(TEKTON_CONFIG.read_text())["spec"]
    assert config["networkPolicy"]["disabled"] is True, "base/security's policies are tekton-pipelines' boundary"
    assert config["result"]["disabled"] is True


def test_the_tekton_target_namespace_is_created_with_its_pod_security_level() -> None:
    target = yaml.safe_load(TEKTON_CONFIG.read_text())["spec"]["targetNamespace"]
    security = render(ROOT / "base" / "security", ROOT)[1]
    (namespace,) = [o for o in security if o["kind"] == "Namespace" and o["metadata"]["name"] == target]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] in {"baseline", "restricted"}
