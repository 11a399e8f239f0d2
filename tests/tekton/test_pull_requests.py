"""Pull requests run a stranger's code: shown over the rendered Tekton objects that such a run holds no credential,
runs nothing privileged, stays within limits in a namespace of its own, and starts only for trusted authors or
after a member's approval, with the triggers' CEL evaluated by a real CEL engine against GitHub's payload shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml
from celpy import celtypes
from gitops.render import render
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
NAMESPACE = "ci-pull-requests"
SHA = "0123456789abcdef0123456789abcdef01234567"
REPOSITORY = {
    "full_name": "your-org/microservice-demo",
    "clone_url": "https://github.com/your-org/microservice-demo.git",
}


@pytest.fixture(scope="module")
def ci_cd() -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in render(ROOT / "tekton" / "ci-cd", ROOT)[1]}


@pytest.fixture(scope="module")
def pull_requests() -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in render(ROOT / "tekton" / "pull-requests", ROOT)[1]}


@pytest.fixture(scope="module")
def run_template(ci_cd: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    (run,) = ci_cd[("TriggerTemplate", "pull-request")]["spec"]["resourcetemplates"]
    template: dict[str, Any] = run
    return template


def test_pull_request_runs_are_created_in_their_own_namespace_as_a_serviceaccount_with_nothing(
    run_template: dict[str, Any], pull_requests: dict[tuple[str, str], dict[str, Any]]
) -> None:
    assert run_template["metadata"]["namespace"] == NAMESPACE
    account_name = run_template["spec"]["taskRunTemplate"]["serviceAccountName"]
    assert "taskRunSpecs" not in run_template["spec"], "no task of a pull-request run as another ServiceAccount"
    account = pull_requests[("ServiceAccount", account_name)]
    assert account["metadata"]["namespace"] == NAMESPACE
    assert not account.get("secrets") and not account.get("imagePullSecrets"), "Tekton would inject them"
    assert account["automountServiceAccountToken"] is False
    assert run_template["spec"]["timeouts"]["pipeline"], "a run ends"
    # No Role is bound to it either: tests/security/test_rbac.py, test_the_pipelines_have_no_api_access.


def _tasks(objects: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    (pipeline,) = [o for (kind, _), o in objects.items() if kind == "Pipeline"]
    names = [t["taskRef"]["name"] for t in pipeline["spec"]["tasks"] + pipeline["spec"].get("finally", [])]
    return [objects[("Task", name)] for name in names]


def test_no_step_of_a_pull_request_run_is_privileged(pull_requests: dict[tuple[str, str], dict[str, Any]]) -> None:
    for task in _tasks(pull_requests):
        for step in task["spec"]["steps"] + task["spec"].get("sidecars", []):
            context = step.get("securityContext") or {}
            assert not context.get("privileged"), f"{task['metadata']['name']}/{step['name']}"
            assert context.get("allowPrivilegeEscalation") is not True
            assert not (context.get("capabilities") or {}).get("add")


def test_the_steps_that_run_the_pull_requests_code_see_no_secret_and_have_limits(
    pull_requests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """Every task that gets the checked-out code (the source workspace) runs it or may: none reads a Secret, by
    env, volume or workspace, and its steps are limited. The finally task that reports the status reads its token
    and gets no workspace, so none of the pull request's code runs beside the token."""
    (pipeline,) = [o for (kind, _), o in pull_requests.items() if kind == "Pipeline"]
    assert not [w for w in pipeline["spec"]["workspaces"] if "secret" in yaml.safe_dump(w)]
    for entry in pipeline["spec"]["tasks"] + pipeline["spec"].get("finally", []):
        task = pull_requests[("Task", entry["taskRef"]["name"])]["spec"]
        text = yaml.safe_dump(task)
        if entry.get("workspaces"):
            assert "secretKeyRef" not in text and "secret:" not in text, entry["name"]
        else:
            assert "$(workspaces" not in text, entry["name"]
    (checks,) = [t for t in pipeline["spec"]["tasks"] if t["name"] == "checks"]
    for step in pull_requests[("Task", checks["taskRef"]["name"])]["spec"]["steps"]:
        assert step["computeResources"]["limits"]["cpu"] and step["computeResources"]["limits"]["memory"]
        assert step["timeout"]
        assert "-m 'not image'" in step["script"], "the image tests need privilege: pull requests deselect them"


def test_the_namespace_has_a_pod_security_level_a_quota_and_limits(
    pull_requests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    security = render(ROOT / "base" / "security", ROOT)[1]
    (namespace,) = [o for o in security if o["kind"] == "Namespace" and o["metadata"]["name"] == NAMESPACE]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] in ("baseline", "restricted")
    assert ("ResourceQuota", "pull-requests") in pull_requests
    assert ("LimitRange", "pull-requests") in pull_requests


def test_only_commits_on_main_run_with_push_rights(ci_cd: dict[tuple[str, str], dict[str, Any]]) -> None:
    """The build (privileged, with the git and registry credentials) is the push-main trigger's, on main alone."""
    listener = ci_cd[("EventListener", "github")]["spec"]["triggers"]
    templates = {t["name"]: t["template"]["ref"] for t in listener}
    assert [name for name, template in templates.items() if template == "build"] == ["push-main"]
    (build,) = ci_cd[("TriggerTemplate", "build")]["spec"]["resourcetemplates"]
    assert "namespace" not in build["metadata"], "builds stay in ci-cd"


# The triggers' CEL, with Tekton Triggers' string extension functions (cel-go ext.Strings, which Triggers loads:
# pkg/interceptors/cel/cel.go@v0.37.0) that the overlays use.


def _split(value: celtypes.StringType, separator: celtypes.StringType) -> celtypes.ListType:
    return celtypes.ListType([celtypes.StringType(part) for part in str(value).split(str(separator))])


def _substring(value: celtypes.StringType, start: celtypes.IntType, end: celtypes.IntType) -> celtypes.StringType:
    return celtypes.StringType(str(value)[int(start) : int(end)])


def _interceptor(ci_cd: dict[tuple[str, str], dict[str, Any]], trigger: str, param: str) -> Any:
    (spec,) = [t for t in ci_cd[("EventListener", "github")]["spec"]["triggers"] if t["name"] == trigger]
    (cel,) = [i for i in spec["interceptors"] if i["ref"]["name"] == "cel"]
    value = next(p["value"] for p in cel["params"] if p["name"] == param)
    expression = value if param == "filter" else value[0]["expression"]
    environment = celpy.Environment()
    return environment.program(environment.compile(expression), functions={"split": _split, "substring": _substring})


def _event_types(ci_cd: dict[tuple[str, str], dict[str, Any]], trigger: str) -> list[str]:
    (spec,) = [t for t in ci_cd[("EventListener", "github")]["spec"]["triggers"] if t["name"] == trigger]
    (github,) = [i for i in spec["interceptors"] if i["ref"]["name"] == "github"]
    types: list[str] = next(p["value"] for p in github["params"] if p["name"] == "eventTypes")
    return types


def _pull_request(action: str, association: str, head_repo: str | None, **extra: Any) -> dict[str, Any]:
    """A pull_request event as GitHub sends it (the fields the filter reads; head.repo is null for a deleted fork)."""
    repo = None if head_repo is None else {"full_name": head_repo, "clone_url": f"https://github.com/{head_repo}.git"}
    head = {"sha": SHA, "ref": "feature", "repo": repo}
    pull_request = {"number": 7, "state": "open", "author_association": association, "head": head,
                    "base": {"ref": "main", "repo": REPOSITORY}}  # fmt: skip
    body = {"action": action, "repository": REPOSITORY, "sender": {"login": "someone"}, "pull_request": pull_request}
    body.update(extra)
    return body


FORK = "stranger/microservice-demo"


@pytest.mark.parametrize(
    ("case", "body", "runs"),
    [
        ("a stranger's fork PR is opened", _pull_request("opened", "NONE", FORK), False),
        ("a first-time contributor's fork PR", _pull_request("opened", "FIRST_TIME_CONTRIBUTOR", FORK), False),
        ("a past contributor pushes to a fork PR", _pull_request("synchronize", "CONTRIBUTOR", FORK), False),
        ("a member's fork PR is opened", _pull_request("opened", "MEMBER", "member/microservice-demo"), True),
        ("a collaborator pushes to a PR", _pull_request("synchronize", "COLLABORATOR", FORK), True),
        ("a same-repository PR", _pull_request("opened", "CONTRIBUTOR", REPOSITORY["full_name"]), True),
        ("a PR whose fork was deleted", _pull_request("reopened", "NONE", None), False),
        ("a member labels a stranger's PR ok-to-test",
         _pull_request("labeled", "NONE", FORK, label={"name": "ok-to-test"}), True),
        ("another label on a stranger's PR", _pull_request("labeled", "NONE", FORK, label={"name": "bug"}), False),
        ("a member's PR is closed", _pull_request("closed", "MEMBER", REPOSITORY["full_name"]), False),
        ("a member's PR to another branch",
         _pull_request("opened", "MEMBER", REPOSITORY["full_name"])
         | {"pull_request": _pull_request("opened", "MEMBER", REPOSITORY["full_name"])["pull_request"]
            | {"base": {"ref": "release"}}}, False),
    ],
)  # fmt: skip
def test_pull_request_runs_start_only_for_trusted_authors_or_an_approval(
    ci_cd: dict[tuple[str, str], dict[str, Any]], case: str, body: dict[str, Any], runs: bool
) -> None:
    assert _event_types(ci_cd, "pull-request") == ["pull_request"]
    assert _interceptor(ci_cd, "pull-request", "filter").evaluate({"body": celpy.json_to_cel(body)}) == runs, case


def _comment(association: str, text: str, on_pull_request: bool = True, state: str = "open") -> dict[str, Any]:
    """An issue_comment event: a comment on a pull request carries issue.pull_request (its URLs), not its head."""
    issue: dict[str, Any] = {"number": 7, "state": state}
    if on_pull_request:
        issue["pull_request"] = {"url": "https://api.github.com/repos/your-org/microservice-demo/pulls/7"}
    return {"action": "created", "repository": REPOSITORY, "issue": issue,
            "comment": {"body": text, "author_association": association, "user": {"login": "someone"}}}  # fmt: skip


@pytest.mark.parametrize(
    ("case", "body", "runs"),
    [
        ("a member approves a commit", _comment("MEMBER", f"/ok-to-test {SHA}"), True),
        ("the owner approves, trailing newline", _comment("OWNER", f"/ok-to-test {SHA}\n"), True),
        ("a non-member approves their own PR", _comment("NONE", f"/ok-to-test {SHA}"), False),
        ("a contributor approves", _comment("CONTRIBUTOR", f"/ok-to-test {SHA}"), False),
        ("a member approves without a commit", _comment("MEMBER", "/ok-to-test"), False),
        ("a member approves a short SHA", _comment("MEMBER", f"/ok-to-test {SHA[:7]}"), False),
        ("a member's comment quotes the command", _comment("MEMBER", f"please /ok-to-test {SHA}"), False),
        ("a member comments on an issue", _comment("MEMBER", f"/ok-to-test {SHA}", on_pull_request=False), False),
        ("a member comments on a closed PR", _comment("MEMBER", f"/ok-to-test {SHA}", state="closed"), False),
    ],
)
def test_an_ok_to_test_comment_by_a_member_runs_the_commit_it_names(
    ci_cd: dict[tuple[str, str], dict[str, Any]], case: str, body: dict[str, Any], runs: bool
) -> None:
    assert _event_types(ci_cd, "ok-to-test-comment") == ["issue_comment"]
    payload = {"body": celpy.json_to_cel(body)}
    assert _interceptor(ci_cd, "ok-to-test-comment", "filter").evaluate(payload) == runs, case
    if runs:
        assert _interceptor(ci_cd, "ok-to-test-comment", "overlays").evaluate(payload) == SHA


def test_an_approved_run_is_the_same_pull_request_pipeline(ci_cd: dict[tuple[str, str], dict[str, Any]]) -> None:
    triggers = {t["name"]: t for t in ci_cd[("EventListener", "github")]["spec"]["triggers"]}
    assert triggers["ok-to-test-comment"]["template"]["ref"] == triggers["pull-request"]["template"]["ref"]
    binding = ci_cd[("TriggerBinding", triggers["ok-to-test-comment"]["bindings"][0]["ref"])]["spec"]["params"]
    assert {"name": "revision", "value": "$(extensions.approved_sha)"} in binding
