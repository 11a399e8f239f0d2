"""Opening (or updating) a pull request through the GitHub REST API.

POST /repos/{owner}/{repo}/pulls creates it; when GitHub answers 422 because a pull request for that head
branch already exists, the open one is found (GET /repos/{owner}/{repo}/pulls?head=owner:branch) and its title and
body are updated (PATCH /repos/{owner}/{repo}/pulls/{number}): never a duplicate.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import httpx

API_VERSION = "2022-11-28"


class GitHubError(Exception):
    """GitHub did not take the request; the message says what to do about it."""


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str
    created: bool


def repository_from_url(url: str) -> str:
    """owner/name from a GitHub remote URL (https or ssh)."""
    match = re.search(r"github\.com[:/]([^/]+/[^/]+?)(?:\.git)?/?$", url)
    if match is None:
        raise GitHubError(f"{url} is not a GitHub repository URL: pass --repository owner/name")
    return match.group(1)


def _client(token: str) -> httpx.Client:
    return httpx.Client(
        base_url=os.environ.get("GITHUB_API_URL", "https://api.github.com"),
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "microservice-demo-gitops",
        },
        timeout=30.0,
    )


def _raise_for(response: httpx.Response, repository: str) -> None:
    if response.is_success:
        return
    message = response.json().get("message", response.text) if response.content else response.reason_phrase
    if response.status_code == 401:
        raise GitHubError(f"GitHub refused the token (401 {message}): set GITHUB_TOKEN to a valid token")
    if response.status_code == 403:
        raise GitHubError(
            f"GitHub denied the request (403 {message}): the token needs pull-request write access to {repository}, "
            "or the rate limit was hit"
        )
    raise GitHubError(f"GitHub answered {response.status_code} {message}")


def _already_exists(response: httpx.Response) -> bool:
    if response.status_code != 422:
        return False
    errors: list[dict[str, Any]] = response.json().get("errors", [])
    return any("already exists" in str(error.get("message", "")) for error in errors)


def open_pull_request(repository: str, head: str, base: str, title: str, body: str, token: str) -> PullRequest:
    owner = repository.split("/")[0]
    try:
        with _client(token) as client:
            created = client.post(
                f"/repos/{repository}/pulls", json={"title": title, "head": head, "base": base, "body": body}
            )
            if created.status_code == 201:
                data = created.json()
                return PullRequest(int(data["number"]), str(data["html_url"]), created=True)
            if not _already_exists(created):
                _raise_for(created, repository)
            found = client.get(
                f"/repos/{repository}/pulls", params={"head": f"{owner}:{head}", "base": base, "state": "open"}
            )
            _raise_for(found, repository)
            (existing,) = found.json()[:1] or [None]
            if existing is None:
                raise GitHubError(f"GitHub says a pull request for {head} exists, but none is open against {base}")
            updated = client.patch(
                f"/repos/{repository}/pulls/{existing['number']}", json={"title": title, "body": body}
            )
            _raise_for(updated, repository)
            return PullRequest(int(existing["number"]), str(existing["html_url"]), created=False)
    except httpx.HTTPError as exc:
        raise GitHubError(f"GitHub could not be reached ({type(exc).__name__}: {exc})") from None
