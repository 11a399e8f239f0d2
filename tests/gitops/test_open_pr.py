"""`gitops promote --open-pr` against a local HTTP server standing in for the GitHub REST API (github.com is not
reachable here): the requests' method, path, headers and fields, the 422 update path, and clear failures."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from gitops.github import repository_from_url
from gitrepos import FIRST, IMAGE, ORDER, SECOND, THIRD, clone, digest, git, gitops

pytestmark = pytest.mark.process

TOKEN = "test-token-not-a-secret"
REPOSITORY = "your-org/microservice-demo"


class StandIn(http.server.BaseHTTPRequestHandler):
    """Answers as GitHub does for the calls under test; what each call answers is set per test."""

    answers: ClassVar[dict[tuple[str, str], tuple[int, Any]]] = {}
    requests: ClassVar[list[dict[str, Any]]] = []

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        path = self.path.split("?")[0]
        self.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "json": body})
        status, payload = self.answers.get((self.command, path), (404, {"message": "Not Found"}))
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = _handle

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def github() -> Iterator[str]:
    StandIn.answers = {}
    StandIn.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def work(remote: Path, tmp_path: Path) -> Path:
    work = clone(remote, tmp_path / "work")
    (work / "src").mkdir(exist_ok=True)
    (work / "src" / "a.py").write_text("a\n")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "Add a")
    git(work, "push", "--quiet", "origin", "HEAD:main")
    source = git(work, "rev-parse", "HEAD").strip()
    assert (
        gitops(work, "set-image", FIRST, f"{IMAGE}:1.0.0@{digest(1)}", "--push", "--source-commit", source).returncode
        == 0
    )
    git(work, "pull", "--quiet", "--ff-only", "origin", "main")
    return work


def _promote(work: Path, api: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    return gitops(
        work, "promote", FIRST, SECOND, "--open-pr", "--repository", REPOSITORY,
        env={"GITHUB_API_URL": api, "GITHUB_TOKEN": token},
    )  # fmt: skip


def _as_the_pipeline(work: Path, api: str, source: str) -> subprocess.CompletedProcess[str]:
    """What the promote Task runs (tekton/ci-cd/tasks/promote.yaml): no target, the environment after --."""
    revision = git(work, "rev-parse", "HEAD").strip()
    return gitops(
        work, "promote", "--ref", revision, "--open-pr", "--base", "main", "--repository", REPOSITORY, "--", source,
        env={"GITHUB_API_URL": api, "GITHUB_TOKEN": TOKEN},
    )  # fmt: skip


def _branch_pushed(work: Path, branch: str) -> bool:
    return bool(git(work, "ls-remote", "origin", f"refs/heads/{branch}").strip())


def test_opens_the_pull_request_with_the_documented_request(work: Path, github: str) -> None:
    StandIn.answers[("POST", f"/repos/{REPOSITORY}/pulls")] = (
        201,
        {"number": 12, "html_url": "https://github.com/x/pull/12"},
    )
    result = _promote(work, github)
    assert result.returncode == 0, result.stderr
    assert "pull request #12 opened: https://github.com/x/pull/12" in result.stderr
    (request,) = StandIn.requests
    assert (request["method"], request["path"]) == ("POST", f"/repos/{REPOSITORY}/pulls")
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["Accept"] == "application/vnd.github+json"
    assert request["headers"]["X-GitHub-Api-Version"] == "2022-11-28"
    fields = request["json"]
    assert set(fields) == {"title", "head", "base", "body"}
    assert fields["base"] == "main"
    assert fields["head"].startswith(f"promote/{SECOND}-")
    assert fields["title"] == f"Promote microservice-demo@{digest(1)[:19]} to {SECOND}"
    assert f"### Rendered change to {SECOND}" in fields["body"]
    assert _branch_pushed(work, fields["head"])


def test_an_existing_pull_request_is_updated_not_duplicated(work: Path, github: str) -> None:
    pulls = f"/repos/{REPOSITORY}/pulls"
    exists = {"resource": "PullRequest", "code": "custom", "message": "A pull request already exists for your-org:x."}
    StandIn.answers[("POST", pulls)] = (422, {"message": "Validation Failed", "errors": [exists]})
    StandIn.answers[("GET", pulls)] = (200, [{"number": 7, "html_url": "https://github.com/x/pull/7"}])
    StandIn.answers[("PATCH", f"{pulls}/7")] = (200, {"number": 7})
    result = _promote(work, github)
    assert result.returncode == 0, result.stderr
    assert "pull request #7 updated" in result.stderr
    methods = [(r["method"], r["path"].split("?")[0]) for r in StandIn.requests]
    assert methods == [("POST", pulls), ("GET", pulls), ("PATCH", f"{pulls}/7")]
    query = StandIn.requests[1]["path"].split("?")[1]
    assert f"head=your-org%3Apromote%2F{SECOND}-" in query
    assert "state=open" in query
    assert set(StandIn.requests[2]["json"]) == {"title", "body"}


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (401, "GitHub refused the token (401 Bad credentials)"),
        (403, "needs pull-request write access to your-org/microservice-demo"),
    ],
)
def test_refused_tokens_get_a_clear_message(work: Path, github: str, status: int, says: str) -> None:
    message = "Bad credentials" if status == 401 else "Resource not accessible by integration"
    StandIn.answers[("POST", f"/repos/{REPOSITORY}/pulls")] = (status, {"message": message})
    result = _promote(work, github)
    assert result.returncode == 2
    assert says in result.stderr
    assert "was pushed to origin, but the pull request was not opened" in result.stderr


def test_a_network_error_says_the_branch_was_pushed(work: Path, free_port: Any) -> None:
    result = _promote(work, f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert "GitHub could not be reached (ConnectError" in result.stderr
    branch = result.stderr.split("branch ")[1].split()[0].rstrip(":")
    assert f"branch {branch} was pushed to origin, but the pull request was not opened" in result.stderr
    assert _branch_pushed(work, branch)


def test_running_again_replaces_the_branch_and_updates_the_pull_request(
    work: Path, github: str, tmp_path: Path, remote: Path
) -> None:
    pulls = f"/repos/{REPOSITORY}/pulls"
    StandIn.answers[("POST", pulls)] = (201, {"number": 3, "html_url": "u"})
    first = _as_the_pipeline(work, github, FIRST)
    assert first.returncode == 0, first.stderr
    assert StandIn.requests[0]["json"]["head"].startswith(f"promote/{SECOND}-"), "the target read from the overlays"
    again = clone(remote, tmp_path / "fresh-clone")  # the pipeline runs again on a repeated notification
    StandIn.answers[("POST", pulls)] = (
        422,
        {"message": "Validation Failed", "errors": [{"message": "A pull request already exists"}]},
    )
    StandIn.answers[("GET", pulls)] = (200, [{"number": 3, "html_url": "u"}])
    StandIn.answers[("PATCH", f"{pulls}/3")] = (200, {"number": 3})
    result = _as_the_pipeline(again, github, FIRST)
    assert result.returncode == 0, result.stderr
    assert "pull request #3 updated" in result.stderr
    assert len([r for r in StandIn.requests if r["method"] == "POST"]) == 2, "one pull request per run, no other"


def test_after_the_last_environment_the_pipeline_opens_nothing_and_succeeds(work: Path, github: str) -> None:
    """Argo CD reports prod deployed too: no overlay names prod, so there is nothing to promote and no failure."""
    head, remote_branches = git(work, "rev-parse", "HEAD"), git(work, "ls-remote", "origin")
    result = _as_the_pipeline(work, github, THIRD)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert f"nothing to promote: no overlay names {THIRD} in gitops/promoted-from (promotion goes {ORDER})" in (
        result.stderr
    )
    assert StandIn.requests == []
    assert (git(work, "rev-parse", "HEAD"), git(work, "ls-remote", "origin")) == (head, remote_branches)
    assert git(work, "branch", "--list", "promote/*") == ""
    assert git(work, "status", "--porcelain") == ""


def test_an_environment_that_is_no_overlay_fails_the_pipeline_before_anything_changes(work: Path, github: str) -> None:
    """The EventListener lets any DNS label through: the tool refuses one that is no folder of overlays/."""
    head = git(work, "rev-parse", "HEAD")
    result = _as_the_pipeline(work, github, "qa")
    assert result.returncode == 2
    assert "unknown environment 'qa': expected one of " in result.stderr
    assert git(work, "rev-parse", "HEAD") == head
    assert git(work, "branch", "--list", "promote/*") == ""
    assert StandIn.requests == []


def test_no_token_is_refused_before_anything_changes(work: Path, github: str) -> None:
    head = git(work, "rev-parse", "HEAD")
    result = _promote(work, github, token="")
    assert result.returncode == 2
    assert "--open-pr needs GITHUB_TOKEN" in result.stderr
    assert git(work, "rev-parse", "HEAD") == head
    assert git(work, "branch", "--list", "promote/*") == ""
    assert StandIn.requests == []


@pytest.mark.parametrize(
    ("url", "repository"),
    [
        ("https://github.com/your-org/microservice-demo.git", "your-org/microservice-demo"),
        ("git@github.com:your-org/microservice-demo.git", "your-org/microservice-demo"),
        ("https://github.com/your-org/microservice-demo", "your-org/microservice-demo"),
    ],
)
def test_the_repository_comes_from_the_remote_url(url: str, repository: str) -> None:
    assert repository_from_url(url) == repository
