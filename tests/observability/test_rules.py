"""The service's PrometheusRules, judged by promtool (Debian's prometheus): they parse, and every alert fires in the
cases it should, with the labels and annotations it should, and stays quiet in the others."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import PROMETHEUS_MAJORS, ROOT, RULE_TESTS, Stack, require_tool

RUNBOOKS = "https://github.com/your-org/microservice-demo/blob/main/"
SEVERITIES = {"critical", "warning"}  # page and ticket (base/observability/alertmanager/alertmanager.yaml)


def _unit_tests() -> list[Path]:
    return sorted(RULE_TESTS.glob("*.test.yaml"))


@pytest.mark.parametrize("major", PROMETHEUS_MAJORS, ids=lambda m: f"prometheus-{m}")
def test_promtool_checks_every_rule_file(rule_files: dict[str, Path], major: int) -> None:
    promtool = require_tool("promtool", major)
    result = subprocess.run(
        [promtool, "check", "rules", *map(str, rule_files.values())], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rejects_a_broken_expression(tmp_path: Path) -> None:
    """The check above can fail: a rule with a PromQL syntax error is refused."""
    promtool = require_tool("promtool")
    broken = tmp_path / "broken.rules.yaml"
    broken.write_text(
        yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "r", "expr": "sum(rate(x[5m])"}]}]})
    )
    result = subprocess.run([promtool, "check", "rules", str(broken)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "unclosed left parenthesis" in result.stdout + result.stderr


def test_each_prometheus_rule_has_its_unit_tests(rule_files: dict[str, Path]) -> None:
    tested = {path.name.removesuffix(".test.yaml") for path in _unit_tests()}
    assert tested == set(rule_files)
    for path in _unit_tests():
        assert yaml.safe_load(path.read_text())["rule_files"] == [f"{path.name.removesuffix('.test.yaml')}.rules.yaml"]


@pytest.mark.parametrize("major", PROMETHEUS_MAJORS, ids=lambda m: f"prometheus-{m}")
@pytest.mark.parametrize("unit_tests", _unit_tests(), ids=lambda p: p.name)
def test_promtool_unit_tests_pass_on_the_deployed_rules(
    unit_tests: Path, rule_files: dict[str, Path], tmp_path: Path, major: int
) -> None:
    """The same cases, the same expected values, on Prometheus 2 and 3: where Prometheus 3 reads a rule
    differently (left-open range selectors, float `le` values), a case would fail on one of them."""
    promtool = require_tool("promtool", major)
    name = unit_tests.name.removesuffix(".test.yaml")
    shutil.copy(rule_files[name], tmp_path / rule_files[name].name)
    # The cases split over one promtool per core, run at once (Prometheus 3's promtool takes about ten times as
    # long as 2's on the same cases): every case still runs, each file is the whole suite's header with a share.
    suite = yaml.safe_load(unit_tests.read_text())
    shares = [suite["tests"][i :: os.cpu_count() or 1] for i in range(min(os.cpu_count() or 1, len(suite["tests"])))]
    files = []
    for index, share in enumerate(shares):
        (tmp_path / f"{index}.test.yaml").write_text(yaml.safe_dump({**suite, "tests": share}, sort_keys=False))
        files.append(f"{index}.test.yaml")
    runs = [
        subprocess.Popen(
            [promtool, "test", "rules", f], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for f in files
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert sum(len(share) for share in shares) == len(suite["tests"])
    assert all(run.returncode == 0 for run in runs), "\n".join(outputs)


def test_the_unit_tests_can_fail(rule_files: dict[str, Path], tmp_path: Path) -> None:
    """promtool reports a firing alert that a case did not expect: the cases above really compare."""
    promtool = require_tool("promtool")
    cases = yaml.safe_load((RULE_TESTS / "microservice-demo-symptoms.test.yaml").read_text())
    for test in cases["tests"]:
        for case in test.get("alert_rule_test", []):
            case["exp_alerts"] = []
    (tmp_path / "emptied.test.yaml").write_text(yaml.safe_dump(cases))
    shutil.copy(rule_files["microservice-demo-symptoms"], tmp_path)
    result = subprocess.run(
        [promtool, "test", "rules", "emptied.test.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "MicroserviceDemoDown" in result.stdout + result.stderr


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_does_not(stack: Stack) -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in _unit_tests():
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (fires if case["exp_alerts"] else quiet).add(case["alertname"])
    alerts = {rule["alert"] for rule in stack.alerts()}
    assert alerts - fires == set(), "alerts never seen firing"
    assert alerts - quiet == set(), "alerts never seen quiet"


def test_every_fired_case_checks_all_labels_and_annotations(stack: Stack) -> None:
    annotations = {"summary", "description", "runbook_url"}
    for path in _unit_tests():
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                for expected in case["exp_alerts"]:
                    assert set(expected["exp_annotations"]) == annotations, case["alertname"]
                    assert expected["exp_labels"]["severity"] in SEVERITIES, case["alertname"]


def test_every_alert_has_a_severity_a_summary_a_description_and_a_runbook(stack: Stack) -> None:
    for rule in stack.alerts():
        name = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations: dict[str, Any] = rule["annotations"]
        assert {"summary", "description", "runbook_url"} <= set(annotations), name
        if name.startswith("MicroserviceDemo"):  # one per environment; the pipeline's are all in observability
            assert "{{ $labels.namespace }}" in annotations["summary"], f"{name}: the summary names the environment"
        url = annotations["runbook_url"]
        assert url.startswith(RUNBOOKS), name
        runbook = ROOT / url.removeprefix(RUNBOOKS)
        assert runbook.is_file(), f"{name}: {runbook} does not exist"
        text = runbook.read_text()
        for section in ("## What it means", "## Diagnose", "## Fix"):
            assert section in text, f"{runbook.name} lacks {section!r}"
        assert name in text, f"{runbook.name} does not name {name}"


def test_every_runbook_is_used_by_an_alert(stack: Stack) -> None:
    used = {ROOT / rule["annotations"]["runbook_url"].removeprefix(RUNBOOKS) for rule in stack.alerts()}
    assert set((ROOT / "docs" / "runbooks").glob("*.md")) - {ROOT / "docs" / "runbooks" / "README.md"} == used


def test_the_operator_selects_these_rules_and_the_service_monitor(stack: Stack) -> None:
    """kube-prometheus-stack's default selectors match only objects labelled with its Helm release; these values
    make it select every PrometheusRule and ServiceMonitor, so neither needs a `release` label."""
    spec = stack.values("kube-prometheus-stack")["prometheus"]["prometheusSpec"]
    for kind in ("serviceMonitor", "podMonitor", "rule"):
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False
        assert f"{kind}Selector" not in spec, "an explicit selector would narrow it again"
    for obj in stack.objects:
        if obj["kind"] == "PrometheusRule":
            assert "release" not in obj["metadata"].get("labels", {})


def test_prometheus_keeps_the_slo_window(stack: Stack) -> None:
    spec = stack.values("kube-prometheus-stack")["prometheus"]["prometheusSpec"]
    assert spec["retention"].endswith("d") and int(spec["retention"][:-1]) > 30, "the SLOs look back 30 days"
    size = int(spec["retentionSize"].removesuffix("GB"))
    volume = int(spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"][:-2])
    assert size < volume, "retentionSize stops the TSDB before the volume is full"
