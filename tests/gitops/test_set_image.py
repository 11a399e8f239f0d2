"""`gitops set-image` against real git repositories: a bare one as the remote, clones as the pipeline's checkouts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from gitops.render import render
from gitrepos import GIT_ENV, GITOPS, IMAGE, clone, digest, git, gitops

pytestmark = pytest.mark.process

SOURCE = "0123456789abcdef0123456789abcdef01234567"


def test_changes_exactly_the_release_file_and_still_renders(remote: Path, tmp_path: Path) -> None:
    work = clone(remote, tmp_path / "work")
    image = f"{IMAGE}:1.2.3@{digest(10)}"
    result = gitops(work, "set-image", "dev", image, "--push", "--source-commit", SOURCE)
    assert result.returncode == 0, result.stderr
    assert "pushed (attempt 1)" in result.stdout
    check = clone(remote, tmp_path / "check")
    assert git(check, "show", "--name-only", "--format=", "HEAD").split() == ["overlays/dev/release/kustomization.yaml"]
    message = git(check, "log", "-1", "--format=%B")
    assert message.splitlines()[0] == f"deploy(dev): microservice-demo@{digest(10)[:19]} from {SOURCE[:12]} [skip ci]"
    assert f"Source-Commit: {SOURCE}" in message
    assert f"Image: {image}" in message
    objects = render(check / "overlays" / "dev", check)[1]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == image
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "1.2.3"
    release = (check / "overlays" / "dev" / "release" / "kustomization.yaml").read_text()
    assert release.startswith("# The release dev runs"), "comments are kept"


def test_the_same_image_again_commits_nothing(remote: Path, tmp_path: Path) -> None:
    work = clone(remote, tmp_path / "work")
    image = f"{IMAGE}@{digest(11)}"
    assert gitops(work, "set-image", "dev", image, "--push").returncode == 0
    before = git(work, "rev-parse", "HEAD")
    again = gitops(work, "set-image", "dev", image, "--push")
    assert again.returncode == 0
    assert again.stdout.strip() == f"overlays/dev already runs {image}: nothing to commit"
    assert git(work, "ls-remote", str(remote), "main").split()[0] == before.strip()


def test_without_push_it_commits_locally_only(remote: Path, tmp_path: Path) -> None:
    work = clone(remote, tmp_path / "work")
    result = gitops(work, "set-image", "staging", f"{IMAGE}:2.0.0@{digest(12)}")
    assert result.returncode == 0, result.stderr
    assert "pushed" not in result.stdout
    assert git(work, "rev-parse", "HEAD") != git(work, "rev-parse", "origin/main")


def test_eight_concurrent_runs_land_or_fail_loudly_and_history_stays_linear(remote: Path, tmp_path: Path) -> None:
    workers = [clone(remote, tmp_path / f"pipeline-{n}") for n in range(8)]
    images = {n: f"{IMAGE}:build-{n}@{digest(n + 1)}" for n in range(8)}
    processes = {
        n: subprocess.Popen(
            [GITOPS, "set-image", "dev", images[n], "--push", "--attempts", "5"],
            cwd=work, env=GIT_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for n, work in enumerate(workers)
    }  # fmt: skip
    outcomes = {n: (p.wait(timeout=600), p.stdout.read(), p.stderr.read()) for n, p in processes.items()}  # type: ignore[union-attr]

    check = clone(remote, tmp_path / "check")
    assert git(check, "log", "--merges", "--format=%H") == "", "the remote history is linear"
    landed_messages = git(check, "log", "--format=%B%x00", "main").split("\x00")
    landed = {n for n in images if any(f"Image: {images[n]}" in m for m in landed_messages)}
    for n, (code, out, err) in outcomes.items():
        if code == 0:
            assert n in landed, f"run {n} said it pushed but its commit is not on main: {out}"
            assert sum(f"Image: {images[n]}" in m for m in landed_messages) == 1
        else:
            assert n not in landed
            assert "gave up after 5 attempts" in err, f"run {n} failed without saying why: {err}"
    assert landed, "at least one run lands"
    assert len(git(check, "rev-list", "main").split()) == 1 + len(landed)
    final = yaml.safe_load((check / "overlays" / "dev" / "release" / "kustomization.yaml").read_text())
    last_image = git(check, "log", "-1", "--format=%B").split("Image: ")[1].split()[0]
    assert (
        f"{final['images'][0]['newName']}:{final['images'][0]['newTag']}@{final['images'][0]['digest']}" == last_image
    )
    assert render(check / "overlays" / "dev", check)[1]


@pytest.mark.parametrize(
    ("environment", "image", "says"),
    [
        ("dev", f"{IMAGE}:1.0.0", "is not registry/name@sha256:<64 hex digits>"),
        ("dev", f"{IMAGE}@sha256:abc", "is not registry/name@sha256:<64 hex digits>"),
        ("dev", f"{IMAGE}@sha256:{'A' * 64}", "is not registry/name@sha256:<64 hex digits>"),
        ("dev", f"microservice-demo@{digest(3)}", "is not registry/name@sha256:<64 hex digits>"),
        ("qa", f"{IMAGE}@{digest(3)}", "unknown environment 'qa': expected one of dev, prod, staging"),
        (
            "dev",
            f"docker.io/someone/microservice-demo@{digest(3)}",
            "is not from a trusted registry (ghcr.io/your-org/",
        ),
        ("dev", f"ghcr.io/your-org-evil/microservice-demo@{digest(3)}", "is not from a trusted registry"),
    ],
)
def test_refusals_say_which_and_why_and_change_nothing(
    remote: Path, tmp_path: Path, environment: str, image: str, says: str
) -> None:
    work = clone(remote, tmp_path / "work")
    before = git(work, "rev-parse", "HEAD")
    result = gitops(work, "set-image", environment, image, "--push")
    assert result.returncode == 2
    assert says in result.stderr
    assert git(work, "rev-parse", "HEAD") == before
    assert git(work, "status", "--porcelain") == ""


def test_a_modified_release_file_is_not_overwritten(remote: Path, tmp_path: Path) -> None:
    work = clone(remote, tmp_path / "work")
    release = work / "overlays" / "dev" / "release" / "kustomization.yaml"
    release.write_text(release.read_text() + "# a local edit\n")
    result = gitops(work, "set-image", "dev", f"{IMAGE}@{digest(4)}")
    assert result.returncode == 2
    assert "overlays/dev/release/kustomization.yaml has uncommitted changes" in result.stderr
    assert release.read_text().endswith("# a local edit\n")


def test_an_overlay_that_no_longer_renders_is_left_unchanged(remote: Path, tmp_path: Path) -> None:
    work = clone(remote, tmp_path / "work")
    overlay = work / "overlays" / "dev" / "kustomization.yaml"
    overlay.write_text(overlay.read_text().replace("  - release\n", "  - release\n  - missing-component\n"))
    git(work, "commit", "--quiet", "-am", "break dev")
    release = work / "overlays" / "dev" / "release" / "kustomization.yaml"
    before = release.read_text()
    result = gitops(work, "set-image", "dev", f"{IMAGE}@{digest(5)}")
    assert result.returncode == 2
    assert "overlays/dev no longer renders" in result.stderr
    assert "missing-component" in result.stderr
    assert release.read_text() == before
