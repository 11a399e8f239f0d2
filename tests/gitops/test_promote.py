"""`gitops promote` and `gitops diff` with real git: the whole path from a new digest in dev to prod, and every
refusal leaving the repository as it was.

FIRST, SECOND and THIRD are the repository's promotion order (dev, staging, prod), as tests/gitops/gitrepos.py reads
it from the overlays."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from gitops.diff import render_at
from gitops.layout import PROMOTED_FROM, release_path
from gitops.promote import next_environments, promote
from gitops.proposal import ProposalError
from gitops.rollback import rollback
from gitrepos import FIRST, IMAGE, ORDER, SECOND, THIRD, clone, digest, git, gitops

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


def _deploy_to_first(work: Path, image: str, source: str) -> None:
    result = gitops(work, "set-image", FIRST, image, "--push", "--source-commit", source)
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
    _deploy_to_first(work, IMAGE_1, first)
    branch, _ = _promote(work, FIRST, SECOND, "--push")
    _merge(work, branch)
    second = _source_commit(work, "b.py", "Fix the greeting's punctuation")
    third = _source_commit(work, "c.py", "Log the caller")
    _deploy_to_first(work, IMAGE_2, third)

    branch, pull_request = _promote(work, FIRST, SECOND, "--push")
    assert branch == f"promote/{SECOND}-{digest(2).removeprefix('sha256:')[:12]}"
    changed = git(work, "diff", "--name-only", f"origin/main...origin/{branch}").split()
    assert changed == [release_path(SECOND)]
    assert pull_request.startswith(f"# Promote microservice-demo@{digest(2)[:19]} to {SECOND}")
    assert f"| before | `{IMAGE_1}` |" in pull_request
    assert f"| after | `{IMAGE_2}` |" in pull_request
    assert f"- `gitops policy-check overlays/{SECOND}`: ok (13 admission policies" in pull_request
    commits = pull_request.split("### Source commits this image brings")[1].split("###")[0]
    assert f"{second[:7]} Fix the greeting's punctuation" in commits
    assert f"{third[:7]} Log the caller" in commits
    assert "Add the greeting" not in commits, "what the target already ran is not listed again"
    assert "[skip ci]" not in commits
    rendered = pull_request.split("```diff\n")[1].split("\n```")[0]
    reviewers_diff = gitops(work, "diff", SECOND, "origin/main", f"origin/{branch}")
    assert reviewers_diff.returncode == 0, reviewers_diff.stderr

    def hunks(diff: str) -> list[str]:
        return [line for line in diff.strip().splitlines() if not line.startswith(("--- ", "+++ "))]

    assert hunks(rendered) == hunks(reviewers_diff.stdout), "the body's diff is what `gitops diff` shows"
    assert rendered.startswith(f"--- overlays/{SECOND} @ main\n+++ overlays/{SECOND} @ {branch}\n")
    changed_lines = [line for line in rendered.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed_lines
    assert all(IMAGE_1 in line or IMAGE_2 in line or "app.kubernetes.io/version" in line for line in changed_lines), (
        "the render differs only where the image is"
    )
    _merge(work, branch)

    branch, pull_request = _promote(work, SECOND, THIRD, "--push")
    assert git(work, "diff", "--name-only", f"origin/main...origin/{branch}").split() == [release_path(THIRD)]
    _merge(work, branch)
    last = gitops(work, "diff", THIRD, "HEAD~1", "HEAD")
    assert IMAGE_2 in last.stdout
    assert git(work, "status", "--porcelain") == ""


def _state(work: Path) -> tuple[str, str, str]:
    """HEAD, the branches and the checked-out branch: what a refusal must leave as it found it."""
    return git(work, "rev-parse", "HEAD"), git(work, "branch", "--list"), git(work, "rev-parse", "--abbrev-ref", "HEAD")


def _assert_untouched(work: Path, before: tuple[str, str, str]) -> None:
    assert _state(work) == before
    assert git(work, "status", "--porcelain") == ""


def _refused(work: Path, *args: str) -> str:
    """Run the command (`promote ...`, `rollback ...`), which must refuse and leave the repository as it found it;
    what it says on stderr."""
    before = _state(work)
    result = gitops(work, *args)
    assert result.returncode == 2, result.stdout
    _assert_untouched(work, before)
    return result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((FIRST, THIRD), f"promotion goes {ORDER}, one step at a time: {FIRST} -> {THIRD} is not a step"),
        ((THIRD, SECOND), f"{THIRD} -> {SECOND} is not a step"),
        ((SECOND, SECOND), f"{SECOND} -> {SECOND} is not a step"),
        ((FIRST, "qa"), f"{FIRST} -> qa is not a step"),
        (("qa",), "unknown environment 'qa': expected one of "),
        ((FIRST, SECOND, "--image", f"{IMAGE}@{digest(9)}"), f"not {IMAGE}@{digest(9)}"),
    ],
)
def test_refusals_leave_nothing_behind(work: Path, args: tuple[str, ...], says: str) -> None:
    _deploy_to_first(work, IMAGE_1, _source_commit(work, "a.py", "Add the greeting"))
    assert says in _refused(work, "promote", *args)


def test_already_promoted(work: Path) -> None:
    _deploy_to_first(work, IMAGE_1, _source_commit(work, "a.py", "Add the greeting"))
    branch, _ = _promote(work, FIRST, SECOND, "--push")
    _merge(work, branch)
    assert f"already promoted: {SECOND} runs {IMAGE_1}" in _refused(work, "promote", FIRST, SECOND)


def test_a_dirty_work_tree(work: Path) -> None:
    _deploy_to_first(work, IMAGE_1, _source_commit(work, "a.py", "Add the greeting"))
    before = _state(work)
    (work / "overlays" / SECOND / "kustomization.yaml").write_text("# edited\n")
    result = gitops(work, "promote", FIRST, SECOND)
    assert result.returncode == 2
    assert "uncommitted changes" in result.stderr
    assert _state(work) == before
    assert git(work, "status", "--porcelain").split() == ["M", f"overlays/{SECOND}/kustomization.yaml"], (
        "the edit is kept"
    )


def _refused_promotion_to_edited_second(work: Path, edit: Callable[[str], str]) -> str:
    """Commit an edit of SECOND's overlay, deploy to FIRST, and try to promote: the refusal's message, once it is
    shown to have left nothing behind."""
    overlay = work / "overlays" / SECOND / "kustomization.yaml"
    overlay.write_text(edit(overlay.read_text()))
    git(work, "commit", "--quiet", "-am", f"edit {SECOND}")
    _deploy_to_first(work, IMAGE_1, _source_commit(work, "a.py", "Add the greeting"))
    stderr = _refused(work, "promote", FIRST, SECOND)
    assert git(work, "branch", "--list", "promote/*") == ""
    return stderr


def test_a_target_that_fails_its_checks(work: Path) -> None:
    stderr = _refused_promotion_to_edited_second(
        work, lambda text: text.replace("  - release\n", "  - release\n  - ../../components/missing\n")
    )
    assert f"overlays/{SECOND} fails the manifest check" in stderr
    assert "components/missing" in stderr


def test_a_target_the_admission_policies_would_refuse(work: Path) -> None:
    """A render that passes the schemas and scanners but would not be admitted: its route leaves the platform's
    Gateway."""
    patch = (
        "  - target:\n      kind: HTTPRoute\n    patch: |-\n"
        "      - op: replace\n        path: /spec/parentRefs/0/name\n        value: private\n"
    )
    stderr = _refused_promotion_to_edited_second(work, lambda text: text.replace("patches:\n", "patches:\n" + patch, 1))
    assert f"overlays/{SECOND} would be refused by the admission policies" in stderr
    assert f"HTTPRoute/microservice-demo-{SECOND}/microservice-demo: httproute-platform-gateway:" in stderr


def test_a_prepared_promotion_is_not_prepared_twice(work: Path) -> None:
    _deploy_to_first(work, IMAGE_1, _source_commit(work, "a.py", "Add the greeting"))
    branch, _ = _promote(work, FIRST, SECOND)
    assert f"branch {branch} already exists" in _refused(work, "promote", FIRST, SECOND)


def test_diff_against_the_work_tree(work: Path) -> None:
    assert gitops(work, "diff", FIRST).stdout == "", "nothing changed: no diff"
    assert gitops(work, "set-image", FIRST, IMAGE_2).returncode == 0
    result = gitops(work, "diff", FIRST, "origin/main", "HEAD")
    assert result.returncode == 0
    assert f"+        image: {IMAGE_2}" in result.stdout
    assert result.stdout.startswith(f"--- overlays/{FIRST} @ origin/main\n+++ overlays/{FIRST} @ HEAD\n")
    unknown = gitops(work, "diff", "qa")
    assert unknown.returncode == 2
    assert "unknown environment 'qa'" in unknown.stderr


def test_rollback_restores_the_previous_render_byte_for_byte(work: Path, tmp_path: Path) -> None:
    _deploy_to_first(work, IMAGE_1, _source_commit(work, "a.py", "Add the greeting"))
    branch, _ = _promote(work, FIRST, SECOND, "--push")
    _merge(work, branch)
    _deploy_to_first(work, IMAGE_2, _source_commit(work, "b.py", "Log the caller"))
    rendered_before = render_at(work, SECOND, "HEAD")
    branch, _ = _promote(work, FIRST, SECOND, "--push")
    _merge(work, branch)
    assert render_at(work, SECOND, "HEAD") != rendered_before

    result = gitops(work, "rollback", SECOND, "--push")
    assert result.returncode == 0, result.stderr
    rollback_branch = result.stderr.split()[1].rstrip(":")
    assert rollback_branch.startswith(f"rollback/{SECOND}-")
    assert git(work, "diff", "--name-only", f"origin/main...origin/{rollback_branch}").split() == [release_path(SECOND)]
    assert f"| after the rollback | `{IMAGE_1}` |" in result.stdout
    _merge(work, rollback_branch)
    assert render_at(work, SECOND, "HEAD") == rendered_before, "the revert restores the previous render exactly"


def test_rollback_refuses_when_there_is_nothing_to_roll_back(work: Path) -> None:
    assert f"no promotion of {THIRD} to roll back" in _refused(work, "rollback", THIRD)


def _annotate(work: Path, environment: str, source: str | None) -> None:
    """Name ``source`` as the environment's in its overlay's promotion annotation (None: drop the annotation)."""
    overlay = work / "overlays" / environment / "kustomization.yaml"
    lines = [line for line in overlay.read_text().splitlines(keepends=True) if PROMOTED_FROM not in line]
    if source is not None:
        if "  annotations:\n" not in lines:
            lines[2:2] = ["metadata:\n", "  annotations:\n"]
        at = lines.index("  annotations:\n") + 1
        lines.insert(at, f"    {PROMOTED_FROM}: {source}\n")
    overlay.write_text("".join(lines))


def test_the_promotion_order_is_what_the_overlays_declare(work: Path) -> None:
    """Declare FIRST -> THIRD, with SECOND set by the pipeline on its own: the tool follows the overlays."""
    _annotate(work, SECOND, None)
    _annotate(work, THIRD, FIRST)
    git(work, "commit", "--quiet", "-am", f"promote {THIRD} from {FIRST}")
    _deploy_to_first(work, IMAGE_1, _source_commit(work, "a.py", "Add the greeting"))

    refused = _refused(work, "promote", FIRST, SECOND)
    assert f"promotion goes {FIRST} -> {THIRD}, one step at a time: {FIRST} -> {SECOND} is not a step" in refused

    branch, pull_request = _promote(work, FIRST, THIRD)
    assert git(work, "diff", "--name-only", f"HEAD...{branch}").split() == [release_path(THIRD)]
    assert "Add the greeting" in pull_request.split("### Source commits this image brings")[1].split("###")[0], (
        f"the source commits come from what the pipeline recorded in {FIRST}"
    )


def test_without_a_target_it_promotes_to_each_environment_whose_overlay_names_the_source(work: Path) -> None:
    """A qa overlay between SECOND and THIRD (a copy of SECOND's, promoted from it; THIRD now promoted from qa):
    `promote SOURCE` finds its targets in the overlays, one branch each, and after the last one does nothing."""
    shutil.copytree(work / "overlays" / SECOND, work / "overlays" / "qa")
    _annotate(work, "qa", SECOND)
    _annotate(work, THIRD, "qa")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", f"qa between {SECOND} and {THIRD}")
    git(work, "push", "--quiet", "origin", "HEAD:main")
    assert next_environments(work, FIRST) == [SECOND]
    assert next_environments(work, SECOND) == ["qa"]
    assert next_environments(work, "qa") == [THIRD]
    assert next_environments(work, THIRD) == []
    _deploy_to_first(work, IMAGE_1, _source_commit(work, "a.py", "Add the greeting"))

    branch, _ = _promote(work, FIRST, "--push")
    assert branch == f"promote/{SECOND}-{digest(1).removeprefix('sha256:')[:12]}"
    _merge(work, branch)
    branch, pull_request = _promote(work, SECOND, "--push")
    assert branch == f"promote/qa-{digest(1).removeprefix('sha256:')[:12]}"
    assert git(work, "diff", "--name-only", f"origin/main...origin/{branch}").split() == [release_path("qa")]
    assert pull_request.startswith(f"# Promote microservice-demo@{digest(1)[:19]} to qa\n")
    assert pull_request.count("\n# Promote ") == 0, "one pull request"
    _merge(work, branch)

    before = _state(work)
    last = gitops(work, "promote", THIRD, "--push")
    assert last.returncode == 0, last.stderr
    assert last.stdout == ""
    assert last.stderr == (
        f"nothing to promote: no overlay names {THIRD} in {PROMOTED_FROM} "
        f"(promotion goes {FIRST} -> {SECOND} -> qa -> {THIRD})\n"
    )
    _assert_untouched(work, before)


def test_a_promotion_order_that_goes_round_is_refused_naming_the_overlay(work: Path) -> None:
    _annotate(work, FIRST, THIRD)
    git(work, "commit", "--quiet", "-am", "a circle")
    refused = _refused(work, "promote", FIRST, SECOND)
    assert f"overlays/{FIRST}/kustomization.yaml: {PROMOTED_FROM} goes round in a circle: " in refused


def test_promotion_and_rollback_refuse_with_the_same_error(work: Path) -> None:
    """One error type for both: the command reports either the same way."""
    with pytest.raises(ProposalError, match=f"{THIRD} -> {FIRST} is not a step"):
        promote(work, THIRD, FIRST)
    with pytest.raises(ProposalError, match=f"no promotion of {THIRD} to roll back"):
        rollback(work, THIRD)
    (work / "overlays" / SECOND / "kustomization.yaml").write_text("# edited\n")
    with pytest.raises(ProposalError, match="uncommitted changes: commit or stash them before preparing a promotion"):
        promote(work, FIRST, SECOND)
    with pytest.raises(ProposalError, match="uncommitted changes: commit or stash them before preparing a rollback"):
        rollback(work, THIRD)
