"""`gitops check` on the repository (it must pass) and on broken overlays (each must fail, saying where and why)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from gitops.check import CheckResult, report, run_check
from gitops.findings import Finding
from gitops.layout import RepositoryError
from gitops.repository import entry_points
from gitrepos import ENVIRONMENTS, ROOT

pytestmark = pytest.mark.process

BROKEN = Path(__file__).parent / "fixtures" / "broken"
OBJECT = "Deployment/microservice-demo-broken/microservice-demo"


@pytest.fixture(scope="module")
def repository_result() -> CheckResult:
    return run_check(ROOT)


def _check(case: str, scanners: bool = True) -> CheckResult:
    return run_check(ROOT, [BROKEN / case], scanners=scanners)


def test_the_repository_passes(repository_result: CheckResult) -> None:
    assert repository_result.findings == []
    assert set(repository_result.entry_points) >= {*(f"overlays/{env}" for env in ENVIRONMENTS), "base/networking"}
    assert repository_result.objects > 30


def test_every_kind_without_a_schema_is_one_other_tests_check(repository_result: CheckResult) -> None:
    # No offline schema exists for Tekton's kinds (their CRDs carry none): tests/tekton lints them with tekton-lint,
    # and checks the TektonConfig's fields this repository relies on (tests/tekton, tests/security).
    assert repository_result.not_validated == {
        "operator.tekton.dev/v1alpha1 TektonConfig",
        "tekton.dev/v1 Pipeline",
        "tekton.dev/v1 Task",
        "triggers.tekton.dev/v1beta1 EventListener",
        "triggers.tekton.dev/v1beta1 TriggerBinding",
        "triggers.tekton.dev/v1beta1 TriggerTemplate",
    }


def test_a_missing_file_is_named() -> None:
    (finding,) = _check("missing-file").findings
    assert finding.entry_point == "tests/gitops/fixtures/broken/missing-file"
    assert finding.tool == "kustomize"
    assert "networkpolicy-that-does-not-exist.yaml" in finding.reason


def test_an_unknown_field_fails_strict_validation_for_every_supported_version() -> None:
    findings = [f for f in _check("unknown-field", scanners=False).findings if f.tool == "kubernetes-validate"]
    assert [f.object for f in findings] == [OBJECT] * 3
    assert [f.reason.split(":")[0] for f in findings] == ["Kubernetes 1.35", "Kubernetes 1.36", "Kubernetes 1.37"]
    assert all("'resourcez' was unexpected" in f.reason for f in findings)


def test_a_custom_resource_is_validated_against_its_schema() -> None:
    (finding,) = [f for f in _check("bad-servicemonitor", scanners=False).findings if f.tool == "@kubernetes-models"]
    assert finding.object == "ServiceMonitor/microservice-demo-broken/microservice-demo"
    assert finding.reason.startswith("/spec/endpoints/0/interval must match pattern")


def test_the_scanners_flag_a_privileged_container() -> None:
    findings = _check("privileged").findings
    flagged = {(f.tool, f.reason.split()[0]) for f in findings if f.object == OBJECT}
    assert {("checkov", "CKV_K8S_16"), ("trivy", "KSV-0017"), ("checkov", "CKV_K8S_23")} <= flagged


def test_kinds_without_a_schema_are_reported_not_hidden(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [widget.yaml]\n")
    (tmp_path / "widget.yaml").write_text(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: n}\nspec: {size: 3}\n"
    )
    result = run_check(ROOT, [tmp_path], scanners=False)
    assert result.not_validated == {"example.com/v1 Widget"}
    assert result.ok


def test_the_report_names_entry_point_object_reason_and_tool(capsys: pytest.CaptureFixture[str]) -> None:
    result = CheckResult(
        ["overlays/x"], 2, [Finding("overlays/x", "Service/ns/name", "port missing", "tool")], {"a/v1 B"}
    )
    report(result)
    assert capsys.readouterr().out.splitlines() == [
        "overlays/x: Service/ns/name: port missing [tool]",
        "not validated (no schema available offline): a/v1 B",
        "gitops check: 1 entry point(s), 2 object(s): 1 problem(s)",
    ]


def test_the_command_exits_1_on_problems_and_prints_them() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("gitops")), "check", "--no-scan", str(BROKEN / "unknown-field")],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert f"tests/gitops/fixtures/broken/unknown-field: {OBJECT}: Kubernetes 1.37:" in result.stdout


def test_outside_the_repository_the_command_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("gitops")), "check"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "is not inside this repository" in result.stderr


def test_entry_points_are_the_kustomizations_nothing_builds_on(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").touch()
    for folder, text in {
        "base/app": "resources: [d.yaml]\n",
        "components/extra": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n",
        "overlays/one": "resources: [../../base/app]\ncomponents: [../../components/extra]\n",
        "overlays/two": "resources: [../../base/app]\n",
        "platform": "resources: []\n",
        "tests/fixture": "resources: []\n",
    }.items():
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "kustomization.yaml").write_text(text)
    found = [p.relative_to(tmp_path).as_posix() for p in entry_points(tmp_path)]
    assert found == ["overlays/one", "overlays/two", "platform"]


def test_a_kustomization_that_is_not_yaml_is_named(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "kustomization.yaml").write_text("resources: [unclosed\n")
    with pytest.raises(RepositoryError, match=r"bad/kustomization.yaml: not valid YAML"):
        entry_points(tmp_path)
