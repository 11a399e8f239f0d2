"""Falco's rules for the service and Trivy Operator's scope. No Falco engine runs offline: the rules are checked
for their structure, their references and their agreement with the service's NetworkPolicy, not run."""

from __future__ import annotations

import re
from typing import Any

import yaml

SERVICE = ["microservice-demo-dev", "microservice-demo-staging", "microservice-demo-prod"]
PRIORITIES = {"EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFORMATIONAL", "DEBUG"}
# Macros of Falco's default ruleset (falco_rules.yaml) that these rules build on.
DEFAULT_MACROS = {"spawned_process", "container", "shell_procs", "package_mgmt_procs", "open_write"}


def _application(security: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (app,) = [o for o in security if o["kind"] == "Application" and o["metadata"]["name"] == name]
    return app


def _falco_rules(security: list[dict[str, Any]]) -> list[dict[str, Any]]:
    values = _application(security, "falco")["spec"]["source"]["helm"]["valuesObject"]
    (content,) = values["customRules"].values()
    rules: list[dict[str, Any]] = yaml.safe_load(content)
    return rules


def test_falco_adds_the_services_rules_beside_the_defaults(security: list[dict[str, Any]]) -> None:
    app = _application(security, "falco")
    values = app["spec"]["source"]["helm"]["valuesObject"]
    assert app["spec"]["destination"]["namespace"] == "security-tools"
    assert values["driver"]["kind"] == "modern_ebpf"
    assert "rules_files" not in values.get("falco", {}), "the default rules stay loaded"
    names = {r["rule"] for r in _falco_rules(security) if "rule" in r}
    assert names == {
        "Shell or package manager in microservice-demo",
        "Write below a read-only path in microservice-demo",
        "Unexpected outbound connection from microservice-demo",
    }


def test_every_falco_rule_is_complete_and_uses_only_known_macros(security: list[dict[str, Any]]) -> None:
    items = _falco_rules(security)
    defined = {i["macro"] for i in items if "macro" in i} | {i["list"] for i in items if "list" in i}
    for item in items:
        if "rule" in item:
            assert {"rule", "desc", "condition", "output", "priority", "tags"} <= set(item), item["rule"]
            assert item["priority"] in PRIORITIES, item["rule"]
        condition = re.sub(r'"[^"]*"', " ", item.get("condition", ""))  # strings
        condition = re.sub(r"\b[a-z0-9_]+(\.[a-z0-9_]+)+(\[[^\]]*\])?", " ", condition)  # fields: k8s.ns.name
        condition = re.sub(r"\([^()]*,[^()]*\)", " ", condition)  # value lists: (53, 4318)
        condition = re.sub(r"(!=|<=|>=|=|<|>)\s*[^\s()]+", " ", condition)  # compared values: = connect
        words = set(re.findall(r"\b[a-z_][a-z0-9_]*\b", condition))
        macros = words - {"and", "or", "not", "in", "startswith", "endswith", "contains", "exists"}
        unknown = macros - defined - DEFAULT_MACROS
        assert not unknown, f"{item.get('rule') or item.get('macro')}: unknown macros {unknown}"


def test_falco_watches_the_service_namespaces_and_its_egress_allow_list(
    security: list[dict[str, Any]], everything: list[dict[str, Any]]
) -> None:
    """The outbound rule allows exactly the ports the service's NetworkPolicy lets it reach."""
    items = {i.get("rule") or i.get("macro"): i for i in _falco_rules(security)}
    for namespace in SERVICE:
        assert namespace in items["microservice_demo_container"]["condition"]
    egress = next(
        o for o in everything
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "microservice-demo-allow-egress"
    )  # fmt: skip
    allowed = {port["port"] for rule in egress["spec"]["egress"] for port in rule.get("ports", [])}
    outbound = items["Unexpected outbound connection from microservice-demo"]["condition"]
    (ports,) = re.findall(r"fd\.sport in \(([^)]*)\)", outbound)
    assert {int(p) for p in ports.split(",")} == allowed


def test_trivy_operator_scans_the_service_namespaces(security: list[dict[str, Any]]) -> None:
    app = _application(security, "trivy-operator")
    values = app["spec"]["source"]["helm"]["valuesObject"]
    assert app["spec"]["destination"]["namespace"] == "security-tools"
    assert values["targetNamespaces"].split(",") == SERVICE
    assert values["operator"]["vulnerabilityScannerEnabled"] is True
    assert values["operator"]["scannerReportTTL"]
