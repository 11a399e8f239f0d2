"""tekton-runs-use-this-repositorys-tasks: the runs the EventListeners create from this repository's
TriggerTemplates, and the TaskRuns Tekton's controller makes of them, are admitted; a run that brings its own steps
or runs as another identity is denied. Creating a PipelineRun is not a way to run privileged code as the
ServiceAccounts that hold the credentials."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gitops.policy_check import PolicyCheckResult
from gitops.render import render
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
POLICY = "tekton-runs-use-this-repositorys-tasks"
Judge = Callable[..., PolicyCheckResult]


def _runs() -> dict[str, dict[str, Any]]:
    """The PipelineRun each TriggerTemplate creates, its parameters filled in, in the namespace it is created in."""
    runs = {}
    for template in (o for o in render(ROOT / "tekton" / "ci-cd", ROOT)[1] if o["kind"] == "TriggerTemplate"):
        (run,) = copy.deepcopy(template["spec"]["resourcetemplates"])
        run = _fill(run)
        run["metadata"]["name"] = run["metadata"].pop("generateName") + "x7k2p"
        run["metadata"].setdefault("namespace", template["metadata"]["namespace"])
        runs[template["metadata"]["name"]] = run
    return runs


def _fill(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v) for v in value]
    return re.sub(r"\$\(tt\.params\.[\w-]+\)", "a1b2c3d", value) if isinstance(value, str) else value


def _task_runs(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The TaskRuns Tekton's controller creates for a PipelineRun: one per pipeline task, by the Task's name, as
    the ServiceAccount taskRunSpecs or taskRunTemplate gives, labelled with the pipeline task's name."""
    folder = "pull-requests" if run["metadata"]["namespace"] == "ci-pull-requests" else "ci-cd"
    name = run["spec"]["pipelineRef"]["name"]
    objects = render(ROOT / "tekton" / folder, ROOT)[1]
    (pipeline,) = [o for o in objects if o["kind"] == "Pipeline" and o["metadata"]["name"] == name]
    accounts = {s["pipelineTaskName"]: s["serviceAccountName"] for s in run["spec"].get("taskRunSpecs", [])}
    task_runs = []
    for task in pipeline["spec"]["tasks"] + pipeline["spec"].get("finally", []):
        account = accounts.get(task["name"], run["spec"]["taskRunTemplate"]["serviceAccountName"])
        task_runs.append({
            "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
            "metadata": {"name": f"{run['metadata']['name']}-{task['name']}", "namespace": run["metadata"]["namespace"],
                         "labels": {"tekton.dev/pipelineTask": task["name"],
                                    "tekton.dev/pipeline": pipeline["metadata"]["name"]}},
            "spec": {"taskRef": {"name": task["taskRef"]["name"], "kind": "Task"}, "serviceAccountName": account},
        })  # fmt: skip
    return task_runs


@pytest.fixture(scope="module")
def runs() -> dict[str, dict[str, Any]]:
    return _runs()


def _denied(result: PolicyCheckResult) -> list[str]:
    return [d.message for d in result.decisions if d.policy == POLICY]


def test_every_run_the_triggers_create_and_its_task_runs_are_admitted(
    runs: dict[str, dict[str, Any]], judge: Judge
) -> None:
    assert set(runs) == {"build", "pull-request", "promote"}
    objects = [o for run in runs.values() for o in [run, *_task_runs(run)]]
    assert len(objects) > len(runs) + 6
    result = judge(*objects)
    assert _denied(result) == []


@pytest.mark.parametrize(
    ("case", "template", "change", "words"),
    [
        ("an inline pipeline", "build",
         lambda r: r["spec"].update(pipelineSpec={"tasks": []}), "no inline spec"),
        ("a pipeline from a remote resolver", "pull-request",
         lambda r: r["spec"]["pipelineRef"].update(resolver="git"), "no remote resolver"),
        ("a pull request run as the build's identity", "pull-request",
         lambda r: r["spec"]["taskRunTemplate"].update(serviceAccountName="pipeline"), 'run as "pull-request"'),
        ("a build run as the registry identity", "build",
         lambda r: r["spec"]["taskRunTemplate"].update(serviceAccountName="image-pusher"), 'run as "pipeline"'),
        ("the checks given the registry identity", "build",
         lambda r: r["spec"]["taskRunSpecs"].append({"pipelineTaskName": "checks",
                                                     "serviceAccountName": "image-pusher"}),
         'runs its task "checks" as ServiceAccount "image-pusher"'),
        ("a pull request's task given the registry identity", "pull-request",
         lambda r: r["spec"].update(taskRunSpecs=[{"pipelineTaskName": "push", "serviceAccountName": "image-pusher"}]),
         "only the build's push task"),
    ],
)  # fmt: skip
def test_a_run_that_brings_its_own_steps_or_identity_is_denied(
    runs: dict[str, dict[str, Any]], judge: Judge, case: str, template: str,
    change: Callable[[dict[str, Any]], None], words: str,
) -> None:  # fmt: skip
    run = copy.deepcopy(runs[template])
    change(run)
    (message,) = _denied(judge(run))
    assert words in message, case


@pytest.mark.parametrize(
    ("case", "change", "words"),
    [
        ("a task run with inline steps",
         lambda t: t["spec"].pop("taskRef") and t["spec"].update(taskSpec={"steps": []}), "no inline spec"),
        ("the checks run as the registry identity", lambda t: t["spec"].update(serviceAccountName="image-pusher"),
         'runs as ServiceAccount "image-pusher"'),
    ],
)  # fmt: skip
def test_a_task_run_that_brings_its_own_steps_or_identity_is_denied(
    runs: dict[str, dict[str, Any]], judge: Judge, case: str, change: Callable[[dict[str, Any]], None], words: str
) -> None:
    (checks,) = [t for t in _task_runs(runs["build"]) if t["metadata"]["labels"]["tekton.dev/pipelineTask"] == "checks"]
    change(checks)
    (message,) = _denied(judge(checks))
    assert words in message, case
