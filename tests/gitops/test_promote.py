"""`gitops promote` and `gitops diff` with real git: the whole path from a new digest in dev to prod, and every
refusal leaving the repository as it was."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from gitops.diff import render_at
from gitrepos import IMAGE, clone, digest, git, gitops

pytestmark = pytest.mark.process

IMAGE_1 = f"{IMAGE}:1.0.0@{digest(1)}"
IMAGE_2 = f"{IMAGE}:1.1.0@{digest(2)}"


def _source_commit(work: Path, name: str, subject: str) -> str:
    path = work / "src" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(subject + "\n")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", subject)
    git(work, "push", "--quiet", "origin", "HEAD:main")
    return git(work, "rev-parse", "HEAD").strip()


def _deploy_to_dev(work: Path, image: str, source: str) -> None:
    result = gitops(work, "set-image", "dev", image, "--push", "--source-commit", source)
    assert result.returncode == 0, result.stderr
    git(work, "pull", "--quiet", "--ff-only", "origin", "main")


def _merge(work: Path, branch: str) -> None:
    """What merging the pull request does: a merge commit of the branch into main."""
    git(work, "fetch", "--quiet", "origin", branch)
    git(work, "merge", "--quiet", "--no-ff", "-m", f"Merge {branch}", f"origin/{branch}")
    git(work, "push", "--quiet", "origin", "HEAD:main")


def _promote(work: Path, *args: str) -> tuple[str, str]:
    result = gitops(work, "promote", *args)
    assert result.returncode == 0, result.stderr
    branch = result.stderr.split()[1].rstrip(":")
    return branch, result.stdout


@pytest.fixture
def work(remote: Path, tmp_path: Path) -> Path:
    return clone(remote, tmp_path / "work")


def test_the_whole_path_from_dev_to_prod(work: Path) -> None:
    first = _source_commit(work, "a.py", "Add the greeting")
    _deploy_to_dev(work, IMAGE_1, first)
    branch, _ = _promote(work, "dev", "staging", "--push")
    _merge(work, branch)
    second = _source_commit(work, "b.py", "Fix the greeting's punctuation")
    third = _source_commit(work, "c.py", "Log the caller")
    _deploy_to_dev(work, IMAGE_2, third)

    branch, pull_request = _promote(work, "dev", "staging", "--push")
    assert branch == f"promote/staging-{digest(2).removeprefix('sha256:')[:12]}"
    changed = git(work, "diff", "--name-only", f"origin/main...origin/{branch}").split()
    assert changed == ["overlays/staging/release/kustomization.yaml"]
    assert pull_request.startswith(f"# Promote microservice-demo@{digest(2)[:19]} to staging")
    assert f"| before | `{IMAGE_1}` |" in pull_request
    assert f"| after | `{IMAGE_2}` |" in pull_request
    assert "- `gitops policy-check overlays/staging`: ok (13 admission policies" in pull_request
    commits = pull_request.split("### Source commits this image brings")[1].split("###")[0]
    assert f"{second[:7]} Fix the greeting's punctuation" in commits
    assert f"{third[:7]} Log the caller" in commits
    assert "Add the greeting" not in commits, "what staging already ran is not listed again"
    assert "[skip ci]" not in commits
    rendered = pull_request.split("```diff\n")[1].split("\n```")[0]
    reviewers_diff = gitops(work, "diff", "staging", "origin/main", f"origin/{branch}")
    assert reviewers_diff.returncode == 0, reviewers_diff.stderr

    def hunks(diff: str) -> list[str]:
        return [line for line in diff.strip().splitlines() if not line.startswith(("--- ", "+++ "))]

    assert hunks(rendered) == hunks(reviewers_diff.stdout), "the body's diff is what `gitops diff` shows"
    assert rendered.startswith(f"--- overlays/staging @ main\n+++ overlays/staging @ {branch}\n")
    changed_lines = [line for line in rendered.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed_lines
    assert all(IMAGE_1 in line or IMAGE_2 in line or "app.kubernetes.io/version" in line for line in changed_lines), (
        "the render differs only where the image is"
    )
    _merge(work, branch)

    branch, pull_request = _promote(work, "staging", "prod", "--push")
    assert git(work, "diff", "--name-only", f"origin/main...origin/{branch}").split() == [
        "overlays/prod/release/kustomization.yaml"
    ]
    _merge(work, branch)
    prod = gitops(work, "diff", "prod", "HEAD~1", "HEAD")
    assert IMAGE_2 in prod.stdout
    assert git(work, "status", "--porcelain") == ""


def _state(work: Path) -> tuple[str, str, str]:
    """HEAD, the branches and the checked-out branch: what a refusal must leave as it found it."""
    return git(work, "rev-parse", "HEAD"), git(work, "branch", "--list"), git(work, "rev-parse", "--abbrev-ref", "HEAD")


def _assert_untouched(work: Path, before: tuple[str, str, str]) -> None:
    assert _state(work) == before
    assert git(work, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("dev", "prod"), "dev -> prod is not a step"),
        (("prod", "staging"), "prod -> staging is not a step"),
        (("staging", "staging"), "staging -> staging is not a step"),
        (("dev", "qa"), "dev -> qa is not a step"),
        (("dev", "staging", "--image", f"{IMAGE}@{digest(9)}"), f"not {IMAGE}@{digest(9)}"),
    ],
)
def test_refusals_leave_nothing_behind(work: Path, args: tuple[str, ...], says: str) -> None:
    _deploy_to_dev(work, IMAGE_1, _source_commit(work, "a.py", "Add the greeting"))
    before = _state(work)
    result = gitops(work, "promote", *args)
    assert result.returncode == 2
    assert says in result.stderr
    _assert_untouched(work, before)


def test_already_promoted(work: Path) -> None:
    _deploy_to_dev(work, IMAGE_1, _source_commit(work, "a.py", "Add the greeting"))
    branch, _ = _promote(work, "dev", "staging", "--push")
    _merge(work, branch)
    before = _state(work)
    result = gitops(work, "promote", "dev", "staging")
    assert result.returncode == 2
    assert f"already promoted: staging runs {IMAGE_1}" in result.stderr
    _assert_untouched(work, before)


def test_a_dirty_work_tree(work: Path) -> None:
    _deploy_to_dev(work, IMAGE_1, _source_commit(work, "a.py", "Add the greeting"))
    before = _state(work)
    (work / "overlays" / "staging" / "kustomization.yaml").write_text("# edited\n")
    result = gitops(work, "promote", "dev", "staging")
    assert result.returncode == 2
    assert "uncommitted changes" in result.stderr
    assert _state(work) == before
    assert git(work, "status", "--porcelain").split() == ["M", "overlays/staging/kustomization.yaml"], (
        "the edit is kept"
    )


def _refused_promotion_to_edited_staging(work: Path, edit: Callable[[str], str]) -> str:
    """Commit an edit of staging's overlay, deploy to dev, and try to promote: the refusal's message, once it is
    shown to have left nothing behind."""
    overlay = work / "overlays" / "staging" / "kustomization.yaml"
    overlay.write_text(edit(overlay.read_text()))
    git(work, "commit", "--quiet", "-am", "edit staging")
    _deploy_to_dev(work, IMAGE_1, _source_commit(work, "a.py", "Add the greeting"))
    before = _state(work)
    result = gitops(work, "promote", "dev", "staging")
    assert result.returncode == 2, result.stdout
    _assert_untouched(work, before)
    assert git(work, "branch", "--list", "promote/*") == ""
    return result.stderr


def test_a_target_that_fails_its_checks(work: Path) -> None:
    stderr = _refused_promotion_to_edited_staging(
        work, lambda text: text.replace("  - release\n", "  - release\n  - ../../components/missing\n")
    )
    assert "overlays/staging fails the manifest check" in stderr
    assert "components/missing" in stderr


def test_a_target_the_admission_policies_would_refuse(work: Path) -> None:
    """A render that passes the schemas and scanners but would not be admitted: its route leaves the platform's
    Gateway."""
    patch = (
        "  - target:\n      kind: HTTPRoute\n    patch: |-\n"
        "      - op: replace\n        path: /spec/parentRefs/0/name\n        value: private\n"
    )
    stderr = _refused_promotion_to_edited_staging(
        work, lambda text: text.replace("patches:\n", "patches:\n" + patch, 1)
    )
    assert "overlays/staging would be refused by the admission policies" in stderr
    assert "HTTPRoute/microservice-demo-staging/microservice-demo: httproute-platform-gateway:" in stderr


def test_a_prepared_promotion_is_not_prepared_twice(work: Path) -> None:
    _deploy_to_dev(work, IMAGE_1, _source_commit(work, "a.py", "Add the greeting"))
    branch, _ = _promote(work, "dev", "staging")
    before = _state(work)
    result = gitops(work, "promote", "dev", "staging")
    assert result.returncode == 2
    assert f"branch {branch} already exists" in result.stderr
    _assert_untouched(work, before)


def test_diff_against_the_work_tree(work: Path) -> None:
    assert gitops(work, "diff", "dev").stdout == "", "nothing changed: no diff"
    assert gitops(work, "set-image", "dev", IMAGE_2).returncode == 0
    result = gitops(work, "diff", "dev", "origin/main", "HEAD")
    assert result.returncode == 0
    assert f"+        image: {IMAGE_2}" in result.stdout
    assert result.stdout.startswith("--- overlays/dev @ origin/main\n+++ overlays/dev @ HEAD\n")
    unknown = gitops(work, "diff", "qa")
    assert unknown.returncode == 2
    assert "unknown environment 'qa'" in unknown.stderr


def test_rollback_restores_the_previous_render_byte_for_byte(work: Path, tmp_path: Path) -> None:
    _deploy_to_dev(work, IMAGE_1, _source_commit(work, "a.py", "Add the greeting"))
    branch, _ = _promote(work, "dev", "staging", "--push")
    _merge(work, branch)
    _deploy_to_dev(work, IMAGE_2, _source_commit(work, "b.py", "Log the caller"))
    rendered_before = render_at(work, "staging", "HEAD")
    branch, _ = _promote(work, "dev", "staging", "--push")
    _merge(work, branch)
    assert render_at(work, "staging", "HEAD") != rendered_before

    result = gitops(work, "rollback", "staging", "--push")
    assert result.returncode == 0, result.stderr
    rollback_branch = result.stderr.split()[1].rstrip(":")
    assert rollback_branch.startswith("rollback/staging-")
    assert git(work, "diff", "--name-only", f"origin/main...origin/{rollback_branch}").split() == [
        "overlays/staging/release/kustomization.yaml"
    ]
    assert f"| after the rollback | `{IMAGE_1}` |" in result.stdout
    _merge(work, rollback_branch)
    assert render_at(work, "staging", "HEAD") == rendered_before, "the revert restores the previous render exactly"


def test_rollback_refuses_when_there_is_nothing_to_roll_back(work: Path) -> None:
    before = _state(work)
    result = gitops(work, "rollback", "prod")
    assert result.returncode == 2
    assert "no promotion of prod to roll back" in result.stderr
    _assert_untouched(work, before)
