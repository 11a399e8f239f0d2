"""Falco's rules for the service and Trivy Operator's scope. No Falco engine runs offline: the rules are checked
for their structure, their references and their agreement with the service's NetworkPolicy, not run."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from gitops.layout import environments
from gitops.render import render
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
CHARTS = ROOT / "base" / "security" / "charts"
PRIORITIES = {"EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFORMATIONAL", "DEBUG"}
OPERATORS = {"and", "or", "not", "in", "startswith", "endswith", "contains", "exists"}


@pytest.fixture(scope="module")
def charts() -> list[dict[str, Any]]:
    return render(CHARTS, ROOT)[1]


@pytest.fixture(scope="module")
def stable_ruleset() -> set[str]:
    """The macros and lists of the ruleset the pinned Falco chart installs (falco-rules:5, the stable one), as its
    contract records them from falcosecurity/rules at that tag."""
    ruleset = yaml.safe_load((CHARTS / "falco.contract.yaml").read_text())["ruleset"]
    return set(ruleset["macros"]) | set(ruleset["lists"])


def _application(charts: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (app,) = [o for o in charts if o["kind"] == "Application" and o["metadata"]["name"] == name]
    return app


def _falco_rules(charts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    values = _application(charts, "falco")["spec"]["source"]["helm"]["valuesObject"]
    (content,) = values["customRules"].values()
    rules: list[dict[str, Any]] = yaml.safe_load(content)
    return rules


def _names_used(condition: str) -> set[str]:
    """The macro and list names a Falco condition refers to: what is left once strings, fields, value lists and
    compared values are taken out."""
    condition = re.sub(r'"[^"]*"', " ", condition)  # strings
    condition = re.sub(r"\b[a-z0-9_]+(\.[a-z0-9_]+)+(\[[^\]]*\])?", " ", condition)  # fields: k8s.ns.name
    condition = re.sub(r"\(([^(),]*,[^()]*|\s*[0-9][^()]*)\)", " ", condition)  # value lists: (53, 4318)
    condition = re.sub(r"(!=|<=|>=|=|<|>)\s*[^\s()]+", " ", condition)  # compared values: = connect
    return set(re.findall(r"\b[a-z_][a-z0-9_]*\b", condition)) - OPERATORS


def test_falco_adds_the_services_rules_beside_the_defaults(charts: list[dict[str, Any]]) -> None:
    app = _application(charts, "falco")
    values = app["spec"]["source"]["helm"]["valuesObject"]
    assert app["spec"]["destination"]["namespace"] == "security-tools"
    assert values["driver"]["kind"] == "modern_ebpf"
    assert "rules_files" not in values.get("falco", {}), "the default rules stay loaded"
    names = {r["rule"] for r in _falco_rules(charts) if "rule" in r}
    assert names == {
        "Shell or package manager in microservice-demo",
        "Write below a read-only path in microservice-demo",
        "Unexpected outbound connection from microservice-demo",
    }


def test_every_falco_rule_is_complete_and_uses_only_what_the_stable_ruleset_defines(
    charts: list[dict[str, Any]], stable_ruleset: set[str]
) -> None:
    items = _falco_rules(charts)
    defined = {i["macro"] for i in items if "macro" in i} | {i["list"] for i in items if "list" in i}
    for item in items:
        if "rule" in item:
            assert {"rule", "desc", "condition", "output", "priority", "tags"} <= set(item), item["rule"]
            assert item["priority"] in PRIORITIES, item["rule"]
        unknown = _names_used(item.get("condition", "")) - defined - stable_ruleset
        assert not unknown, f"{item.get('rule') or item.get('macro')}: not defined by the stable ruleset: {unknown}"


def test_the_name_check_catches_a_macro_only_incubating_rules_define(stable_ruleset: set[str]) -> None:
    """The rule shipped before used package_mgmt_procs, which Falco would have refused to load."""
    condition = "spawned_process and microservice_demo_container and (shell_procs or package_mgmt_procs)"
    assert _names_used(condition) - stable_ruleset == {"microservice_demo_container", "package_mgmt_procs"}
    assert {"spawned_process", "shell_procs", "open_write", "container"} <= stable_ruleset


def test_falco_watches_the_services_container_wherever_it_runs_and_its_egress_allow_list(
    charts: list[dict[str, Any]], everything: list[dict[str, Any]]
) -> None:
    """The service's container is told by its pod's label and its name, as every environment renders them (no list
    of namespaces to keep up); the outbound rule allows exactly the ports the service's NetworkPolicy lets it
    reach."""
    items = {i.get("rule") or i.get("macro") or i.get("list"): i for i in _falco_rules(charts)}
    condition = items["microservice_demo_container"]["condition"]
    (label,) = re.findall(r'k8s\.pod\.label\[([^\]]+)\] = "([^"]+)"', condition)
    (container,) = re.findall(r'container\.name = "([^"]+)"', condition)
    deployments = [o for o in everything if o["kind"] == "Deployment" and o["metadata"]["name"] == "microservice-demo"]
    assert len(deployments) == len(environments(ROOT))
    for deployment in deployments:
        template = deployment["spec"]["template"]
        assert template["metadata"]["labels"][label[0]] == label[1], deployment["metadata"]["namespace"]
        assert container in [c["name"] for c in template["spec"]["containers"]]
    jobs = [
        o for o in everything if o["kind"] == "Job" and o["metadata"].get("namespace", "").startswith("microservice")
    ]
    assert jobs and all(container not in [c["name"] for c in j["spec"]["template"]["spec"]["containers"]] for j in jobs)
    egress = next(
        o for o in everything
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "microservice-demo-allow-egress"
    )  # fmt: skip
    allowed = {port["port"] for rule in egress["spec"]["egress"] for port in rule.get("ports", [])}
    outbound = items["Unexpected outbound connection from microservice-demo"]["condition"]
    (ports,) = re.findall(r"fd\.sport in \(([^)]*)\)", outbound)
    assert {int(p) for p in ports.split(",")} == allowed


def test_trivy_operator_scans_every_environment(charts: list[dict[str, Any]], everything: list[dict[str, Any]]) -> None:
    """All namespaces (targetNamespaces takes names only), less the excluded globs, which match no environment
    (the operator matches them with Go's filepath.Match, which fnmatchcase follows for these patterns)."""
    app = _application(charts, "trivy-operator")
    values = app["spec"]["source"]["helm"]["valuesObject"]
    assert app["spec"]["destination"]["namespace"] == "security-tools"
    assert values["targetNamespaces"] == ""
    excluded = values["excludeNamespaces"].split(",")
    assert "kube-system" in [n for n in ["kube-system"] if any(fnmatch.fnmatchcase(n, p) for p in excluded)]
    namespaces = [o["metadata"]["name"] for o in everything if o["kind"] == "Namespace"
                  and "gitops/environment" in o["metadata"].get("labels", {})]  # fmt: skip
    assert len(namespaces) == len(environments(ROOT))
    for namespace in namespaces:
        assert not any(fnmatch.fnmatchcase(namespace, pattern) for pattern in excluded), namespace
    assert values["operator"]["vulnerabilityScannerEnabled"] is True
    assert values["operator"]["scannerReportTTL"]
    assert values["compliance"]["specs"] == [], "the chart renders cluster-scoped compliance reports otherwise"
