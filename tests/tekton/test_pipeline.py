"""The build pipeline: tekton-lint, references tekton-lint does not follow, and the trigger filters evaluated with
a real CEL engine against sample GitHub payloads."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml
from gitops.layout import environments
from gitops.render import render
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
LINT = ROOT / "tools" / "tekton-lint" / "node_modules" / ".bin" / "tekton-lint"


def _lint(folder: Path) -> list[dict[str, Any]]:
    if not LINT.exists():
        pytest.fail("tools/tekton-lint is not installed: ./scripts/test installs it (npm ci)")
    result = subprocess.run(
        [str(LINT), "--color=false", "--format", "json", f"{folder}/**/*.yaml"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    problems: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    return problems


@pytest.fixture(scope="module")
def namespaced() -> dict[str, dict[tuple[str, str], dict[str, Any]]]:
    """The pipelines' objects by namespace: ci-cd (builds of main, promotions) and ci-pull-requests."""
    found: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for folder in ("ci-cd", "pull-requests"):
        for obj in render(ROOT / "tekton" / folder, ROOT)[1]:
            found.setdefault(obj["metadata"].get("namespace", ""), {})[(obj["kind"], obj["metadata"]["name"])] = obj
    return found


@pytest.fixture(scope="module")
def objects(namespaced: dict[str, dict[tuple[str, str], dict[str, Any]]]) -> dict[tuple[str, str], dict[str, Any]]:
    return namespaced["ci-cd"]


def test_tekton_lint_is_clean() -> None:
    assert _lint(ROOT / "tekton") == []


def test_tekton_lint_catches_what_it_should(tmp_path: Path) -> None:
    copy = tmp_path / "tekton"
    shutil.copytree(ROOT / "tekton", copy)
    clone = copy / "shared-tasks" / "git-clone.yaml"
    clone.write_text(clone.read_text().replace("$(params.revision)", "$(params.revisoin)"))
    pipeline = copy / "pull-requests" / "pipelines" / "pull-request.yaml"
    pipeline.write_text(pipeline.read_text().replace("name: run-pull-request-checks\n", "name: run-checkz\n"))
    rules = {problem["rule"] for problem in _lint(copy)}
    assert {"no-undefined-param", "no-missing-resource"} <= rules


@pytest.mark.parametrize("listener_name", ["github", "promotion"])
def test_every_trigger_names_bindings_and_templates_that_exist(
    objects: dict[tuple[str, str], Any], listener_name: str
) -> None:
    # tekton-lint does not notice an EventListener naming a missing TriggerBinding.
    listener = objects[("EventListener", listener_name)]["spec"]
    assert ("ServiceAccount", listener["serviceAccountName"]) in objects
    for trigger in listener["triggers"]:
        bindings = [objects[("TriggerBinding", b["ref"])] for b in trigger["bindings"]]
        template = objects[("TriggerTemplate", trigger["template"]["ref"])]
        bound = {p["name"] for b in bindings for p in b["spec"]["params"]}
        declared = {p["name"] for p in template["spec"]["params"]}
        assert bound == declared, f"{trigger['name']}: bindings give {bound}, template takes {declared}"
        for interceptor in trigger["interceptors"]:
            assert interceptor["ref"]["kind"] == "ClusterInterceptor"
            assert interceptor["ref"]["name"] in {"github", "cel"}


def test_templates_run_pipelines_with_exactly_their_params_and_workspaces(
    namespaced: dict[str, dict[tuple[str, str], Any]],
) -> None:
    for (kind, name), template in namespaced["ci-cd"].items():
        if kind != "TriggerTemplate":
            continue
        (run,) = template["spec"]["resourcetemplates"]
        objects = namespaced[run["metadata"].get("namespace", "ci-cd")]  # where the PipelineRun is created
        pipeline = objects[("Pipeline", run["spec"]["pipelineRef"]["name"])]["spec"]
        given = {p["name"] for p in run["spec"]["params"]}
        required = {p["name"] for p in pipeline["params"] if "default" not in p}
        assert required <= given <= {p["name"] for p in pipeline["params"]}, name
        assert {w["name"] for w in run["spec"]["workspaces"]} == {w["name"] for w in pipeline["workspaces"]}, name
        assert ("ServiceAccount", run["spec"]["taskRunTemplate"]["serviceAccountName"]) in objects
        assert run["metadata"]["generateName"].startswith(f"{name}-"), "PipelineRuns get readable names"


def test_pipelines_pass_every_task_what_it_needs(namespaced: dict[str, dict[tuple[str, str], Any]]) -> None:
    for objects in namespaced.values():
        for (kind, name), pipeline in objects.items():
            if kind != "Pipeline":
                continue
            for task in pipeline["spec"]["tasks"] + pipeline["spec"].get("finally", []):
                spec = objects[("Task", task["taskRef"]["name"])]["spec"]
                given = {p["name"] for p in task.get("params", [])}
                required = {p["name"] for p in spec.get("params", []) if "default" not in p}
                assert required <= given, f"{name}/{task['name']} misses {required - given}"
                names = {w["name"] for w in task.get("workspaces", [])}
                assert names == {w["name"] for w in spec.get("workspaces", [])}


def test_the_build_runs_in_order_and_ends_by_committing_to_dev(objects: dict[tuple[str, str], Any]) -> None:
    tasks = {t["name"]: t for t in objects[("Pipeline", "build")]["spec"]["tasks"]}
    order = ["fetch", "checks", "build", "scan", "push", "set-dev-image"]
    assert list(tasks) == order
    for before, after in itertools.pairwise(order):
        assert tasks[after]["runAfter"] == [before]
    results = {r["name"] for r in objects[("Task", "push-image")]["spec"]["results"]}
    assert {"IMAGE_URL", "IMAGE_DIGEST"} <= results, "Tekton Chains' type hints"
    step = objects[("Task", "set-dev-image")]["spec"]["steps"][0]["script"]
    assert "./scripts/gitops set-image dev" in step
    assert "--push" in step


def test_credentials_come_from_secrets_only(objects: dict[tuple[str, str], Any]) -> None:
    text = yaml.safe_dump_all(list(objects.values()))
    for name in ("github-webhook", "github-status-token", "slack-webhook", "registry-credentials", "git-credentials"):
        assert name in text
    assert "ghp_" not in text
    assert "hooks.slack.com" not in text


def test_chains_signs_and_attests() -> None:
    (config,) = [o for o in render(ROOT / "tekton" / "platform", ROOT)[1] if o["kind"] == "TektonConfig"]
    assert config["metadata"]["name"] == "config", "the operator reconciles only the TektonConfig named config"
    assert config["spec"]["profile"] in ("basic", "all"), "a profile that installs Triggers and Chains"
    chain = config["spec"]["chain"]
    assert chain["disabled"] is False
    assert chain["artifacts.oci.storage"] == "oci"
    assert chain["artifacts.taskrun.format"] == "in-toto"
    assert chain["transparency.enabled"] == "true"  # a string in the operator's CRD schema


def _cel(objects: dict[tuple[str, str], Any], trigger: str, param: str = "filter", listener: str = "github") -> Any:
    spec = objects[("EventListener", listener)]["spec"]
    (trigger_spec,) = [t for t in spec["triggers"] if t["name"] == trigger]
    (cel,) = [i for i in trigger_spec["interceptors"] if i["ref"]["name"] == "cel"]
    value = next(p["value"] for p in cel["params"] if p["name"] == param)
    expression = value if param == "filter" else value[0]["expression"]
    environment = celpy.Environment()
    return environment.program(environment.compile(expression))


def _filter(objects: dict[tuple[str, str], Any], trigger: str) -> Any:
    return _cel(objects, trigger)


def _push(
    ref: str = "refs/heads/main", message: str = "Fix a bug", paths: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    modified = paths if paths is not None else ["src/microservice_demo/app.py"]
    commit = {"id": "a" * 40, "message": message, "timestamp": "2026-11-26T08:00:00Z",
              "added": [], "modified": modified, "removed": []}  # fmt: skip
    body = {"ref": ref, "after": "a" * 40, "deleted": False, "head_commit": commit, "commits": [commit],
            "repository": {"clone_url": "https://github.com/your-org/microservice-demo.git",
                           "full_name": "your-org/microservice-demo"}}  # fmt: skip
    body.update(extra)
    return body


@pytest.mark.parametrize(
    ("case", "body", "builds"),
    [
        ("src change on main", _push(), True),
        ("lock file change", _push(paths=["uv.lock"]), True),
        (
            "Containerfile removed",
            _push(paths=[]) | {"commits": [{"added": [], "modified": [], "removed": ["Containerfile"]}]},
            True,
        ),
        ("only overlays", _push(paths=["overlays/dev/release/kustomization.yaml"]), False),
        ("only docs", _push(paths=["docs/build.md", "README.md"]), False),
        ("the pipeline's own commit", _push(message="deploy(dev): microservice-demo@sha256:aa [skip ci]"), False),
        ("another branch", _push(ref="refs/heads/feature"), False),
        ("a tag", _push(ref="refs/tags/v1.0.0") | {"head_commit": None, "commits": []}, False),
        ("branch deletion", _push() | {"deleted": True, "head_commit": None, "commits": [], "after": "0" * 40}, False),
        ("no head commit", _push() | {"head_commit": None, "commits": []}, False),
    ],
)
def test_push_filter(objects: dict[tuple[str, str], Any], case: str, body: dict[str, Any], builds: bool) -> None:
    result = _filter(objects, "push-main").evaluate({"body": celpy.json_to_cel(body)})
    assert result == builds, case


def _deployed(environment: Any, application: str | None = None, revision: str = "c" * 40) -> dict[str, Any]:
    return {
        "application": application or f"microservice-demo-{environment}",
        "environment": environment,
        "revision": revision,
    }


def _starts_a_promotion(objects: dict[tuple[str, str], Any], body: dict[str, Any]) -> bool:
    """Whether the promotion listener's filter lets the body through: true, as Tekton's CEL interceptor needs it
    (false, or an evaluation error, which Tekton also takes as a refusal)."""
    try:
        result = _cel(objects, "deployed", listener="promotion").evaluate({"body": celpy.json_to_cel(body)})
    except celpy.CELEvalError:
        return False
    return isinstance(result, celpy.celtypes.BoolType) and bool(result)


@pytest.mark.parametrize("environment", [*environments(ROOT), "qa", "perf-2", "a" * 45])
def test_the_promotion_listener_accepts_any_environment_for_its_own_application(
    objects: dict[tuple[str, str], Any], environment: str
) -> None:
    """Every overlay (prod too, which the Pipeline then finds nothing after) and any new one such as qa: the
    listener names no environment, the overlays say where each goes next."""
    assert _starts_a_promotion(objects, _deployed(environment))


def test_the_promotion_listener_names_no_environment(objects: dict[tuple[str, str], Any]) -> None:
    filter_ = next(
        p["value"]
        for t in objects[("EventListener", "promotion")]["spec"]["triggers"]
        for i in t["interceptors"]
        for p in i["params"]
        if p["name"] == "filter"
    )
    quoted = set(re.findall(r"'([^']*)'", filter_))
    assert not quoted & set(environments(ROOT)), "environments come from overlays/, not from a list here"


@pytest.mark.parametrize(
    "environment",
    [
        "qa; rm -rf /",
        "qa && curl evil",
        "$(params.revision)",
        "$(body.revision)",
        "qa`id`",
        "qa' || true || '",
        '"qa"',
        "../prod",
        "qa/prod",
        "qa.prod",
        "qa prod",
        "qa\n",
        "\nqa",
        "qa\x00",
        "QA",
        "-qa",
        "qa-",
        "--push",
        "q_a",
        "\u0440rod",  # a Cyrillic er: looks like prod
        "",
        "a" * 46,  # microservice-demo-<46> is longer than a namespace name may be (63)
        ["qa"],
        1,
        None,
    ],
)
def test_the_promotion_listener_refuses_what_is_no_environment_name(
    objects: dict[tuple[str, str], Any], environment: Any
) -> None:
    """Names that could not be an overlay's folder and its namespace's suffix start nothing, even for an
    Application spelt to match them."""
    assert not _starts_a_promotion(objects, _deployed(environment))


@pytest.mark.parametrize(
    "body",
    [
        _deployed("qa", application="microservice-demo-prod"),
        _deployed("prod", application="microservice-demo-qa"),
        _deployed("qa", application="other-qa"),
        _deployed("qa", revision="main"),
        _deployed("qa", revision="c" * 39),
        _deployed("qa", revision="c" * 41),
        _deployed("qa", revision="C" * 40),
        _deployed("qa", revision="c" * 40 + "\n"),
        {"application": "microservice-demo-qa", "revision": "c" * 40},
        {"application": "microservice-demo-qa", "environment": "qa"},
    ],
)
def test_the_promotion_listener_still_checks_application_and_revision(
    objects: dict[tuple[str, str], Any], body: dict[str, Any]
) -> None:
    assert not _starts_a_promotion(objects, body)


def test_only_the_environment_and_the_revision_reach_the_promotion(objects: dict[tuple[str, str], Any]) -> None:
    """The listener computes nothing (no CEL overlays): the Pipeline's tool finds the targets in the overlays."""
    (trigger,) = objects[("EventListener", "promotion")]["spec"]["triggers"]
    for interceptor in trigger["interceptors"]:
        assert {p["name"] for p in interceptor["params"]} == {"filter"}
    (binding,) = [objects[("TriggerBinding", b["ref"])] for b in trigger["bindings"]]
    params = {p["name"]: p["value"] for p in binding["spec"]["params"]}
    assert params.pop("repo-url").startswith("https://")
    assert params == {"source": "$(body.environment)", "revision": "$(body.revision)"}
    template = objects[("TriggerTemplate", trigger["template"]["ref"])]["spec"]
    (run,) = template["resourcetemplates"]
    assert {p["name"] for p in run["spec"]["params"]} == {"repo-url", "source", "revision"}
    pipeline = objects[("Pipeline", run["spec"]["pipelineRef"]["name"])]["spec"]
    assert {p["name"] for p in pipeline["params"]} == {"repo-url", "source", "revision"}
    (promote,) = [t for t in pipeline["tasks"] if t["taskRef"]["name"] == "promote"]
    given = {p["name"]: p["value"] for p in promote["params"]}
    assert given == {"source": "$(params.source)", "revision": "$(tasks.fetch.results.commit)"}
    # The longest name the filter accepts still makes a PipelineRun name that fits in a label value (63).
    longest = run["metadata"]["generateName"].replace("$(tt.params.source)", "a" * 45)
    assert len(longest) + 5 <= 63  # generateName adds 5 characters


def test_only_argocd_notifications_may_call_the_promotion_listener(objects: dict[tuple[str, str], Any]) -> None:
    policy = objects[("NetworkPolicy", "promotion-eventlistener")]["spec"]
    assert policy["podSelector"]["matchLabels"] == {"eventlistener": "promotion"}
    (rule,) = policy["ingress"]
    (peer,) = rule["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "argocd"}
    assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "argocd-notifications-controller"}
    step = objects[("Task", "promote")]["spec"]["steps"][0]
    assert "./scripts/gitops promote" in step["script"]
    assert "--open-pr" in step["script"]
    assert {"name": "GITHUB_TOKEN", "valueFrom": {"secretKeyRef": {"name": "github-pr-token", "key": "token"}}} in step[
        "env"
    ]
