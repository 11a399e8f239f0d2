"""`gitops set-image` against real git repositories: a bare one as the remote, clones as the pipeline's checkouts.

FIRST is the environment the pipeline sets (dev), SECOND the one promoted from it (staging): tests/gitops/gitrepos.py
reads them from the overlays."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from gitops.layout import OVERLAYS, release_path
from gitops.render import render
from gitrepos import ENVIRONMENTS, FIRST, GIT_ENV, GITOPS, IMAGE, SECOND, clone, digest, git, gitops

pytestmark = pytest.mark.process

SOURCE = "0123456789abcdef0123456789abcdef01234567"


def test_changes_exactly_the_release_file_and_still_renders(remote: Path, tmp_path: Path) -> None:
    work = clone(remote, tmp_path / "work")
    image = f"{IMAGE}:1.2.3@{digest(10)}"
    result = gitops(work, "set-image", FIRST, image, "--push", "--source-commit", SOURCE)
    assert result.returncode == 0, result.stderr
    assert "pushed (attempt 1)" in result.stdout
    check = clone(remote, tmp_path / "check")
    assert git(check, "show", "--name-only", "--format=", "HEAD").split() == [release_path(FIRST)]
    message = git(check, "log", "-1", "--format=%B")
    subject = f"deploy({FIRST}): microservice-demo@{digest(10)[:19]} from {SOURCE[:12]} [skip ci]"
    assert message.splitlines()[0] == subject
    assert f"Source-Commit: {SOURCE}" in message
    assert f"Image: {image}" in message
    objects = render(check / OVERLAYS / FIRST, check)[1]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == image
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "1.2.3"
    release = (check / release_path(FIRST)).read_text()
    assert release.startswith(f"# The release {FIRST} runs"), "comments are kept"


def test_the_same_image_again_commits_nothing(remote: Path, tmp_path: Path) -> None:
    work = clone(remote, tmp_path / "work")
    image = f"{IMAGE}@{digest(11)}"
    assert gitops(work, "set-image", FIRST, image, "--push").returncode == 0
    before = git(work, "rev-parse", "HEAD")
    again = gitops(work, "set-image", FIRST, image, "--push")
    assert again.returncode == 0
    assert again.stdout.strip() == f"overlays/{FIRST} already runs {image}: nothing to commit"
    assert git(work, "ls-remote", str(remote), "main").split()[0] == before.strip()


def test_without_push_it_commits_locally_only(remote: Path, tmp_path: Path) -> None:
    work = clone(remote, tmp_path / "work")
    result = gitops(work, "set-image", SECOND, f"{IMAGE}:2.0.0@{digest(12)}")
    assert result.returncode == 0, result.stderr
    assert "pushed" not in result.stdout
    assert git(work, "rev-parse", "HEAD") != git(work, "rev-parse", "origin/main")


def test_eight_concurrent_runs_land_or_fail_loudly_and_history_stays_linear(remote: Path, tmp_path: Path) -> None:
    workers = [clone(remote, tmp_path / f"pipeline-{n}") for n in range(8)]
    images = {n: f"{IMAGE}:build-{n}@{digest(n + 1)}" for n in range(8)}
    processes = {
        n: subprocess.Popen(
            [GITOPS, "set-image", FIRST, images[n], "--push", "--attempts", "5"],
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
    final = yaml.safe_load((check / release_path(FIRST)).read_text())
    last_image = git(check, "log", "-1", "--format=%B").split("Image: ")[1].split()[0]
    assert (
        f"{final['images'][0]['newName']}:{final['images'][0]['newTag']}@{final['images'][0]['digest']}" == last_image
    )
    assert render(check / OVERLAYS / FIRST, check)[1]


@pytest.mark.parametrize(
    ("environment", "image", "says"),
    [
        (FIRST, f"{IMAGE}:1.0.0", f"image reference '{IMAGE}:1.0.0' has no digest"),
        (FIRST, f"{IMAGE}@sha256:abc", f"'{IMAGE}@sha256:abc' is not an image reference"),
        (FIRST, f"{IMAGE}:1 0@{digest(3)}", "is not an image reference"),
        ("qa", f"{IMAGE}@{digest(3)}", f"unknown environment 'qa': expected one of {', '.join(ENVIRONMENTS)}"),
    ],
)
def test_what_is_no_pinned_reference_or_no_environment_is_refused(
    remote: Path, tmp_path: Path, environment: str, image: str, says: str
) -> None:
    work = clone(remote, tmp_path / "work")
    before = git(work, "rev-parse", "HEAD")
    result = gitops(work, "set-image", environment, image, "--push")
    assert result.returncode == 2
    assert says in result.stderr
    assert git(work, "rev-parse", "HEAD") == before
    assert git(work, "status", "--porcelain") == ""


UPPERCASE_DIGEST = f"{IMAGE}@sha256:{'A' * 64}"


@pytest.mark.parametrize(
    ("environment", "image", "policy", "says"),
    [
        # The first environment's binding of images-pinned-by-digest only warns: set-image refuses warnings too.
        (FIRST, UPPERCASE_DIGEST, "images-pinned-by-digest", f'runs image "{UPPERCASE_DIGEST}" without a digest'),
        (SECOND, UPPERCASE_DIGEST, "images-pinned-by-digest", f'runs image "{UPPERCASE_DIGEST}" without a digest'),
        (FIRST, f"{IMAGE}@sha512:{'1' * 128}", "images-pinned-by-digest", "without a digest"),
        (FIRST, f"{IMAGE}:latest@{digest(3)}", "no-latest-or-untagged-images", "with the tag latest or no tag"),
    ],
)
def test_what_the_admission_policies_refuse_is_refused_saying_where_which_object_and_why(
    remote: Path, tmp_path: Path, environment: str, image: str, policy: str, says: str
) -> None:
    work = clone(remote, tmp_path / "work")
    before = git(work, "rev-parse", "HEAD")
    result = gitops(work, "set-image", environment, image, "--push")
    assert result.returncode == 2
    assert f"{release_path(environment)} left unchanged: with {image}, the admission policies" in result.stderr
    objection = next(line for line in result.stderr.splitlines() if f": {policy}: " in line)
    assert objection.startswith(f"  overlays/{environment}: Deployment/"), "the overlay and the object"
    assert says in objection
    assert git(work, "rev-parse", "HEAD") == before
    assert git(work, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    "image",
    [
        f"microservice-demo@{digest(3)}",
        f"docker.io/someone/microservice-demo@{digest(3)}",
        f"ghcr.io/your-org-evil/microservice-demo@{digest(3)}",
    ],
)
def test_an_image_from_elsewhere_is_refused(remote: Path, tmp_path: Path, image: str) -> None:
    """Either the policy trusted-registries refuses it or, where the overlay renders the site's registry in its place
    (settings/), set-image does: the release file would not say what runs."""
    work = clone(remote, tmp_path / "work")
    result = gitops(work, "set-image", FIRST, image, "--push")
    assert result.returncode == 2
    assert f"{release_path(FIRST)} left unchanged" in result.stderr
    objection = next(
        line for line in result.stderr.splitlines() if f"overlays/{FIRST}" in line and "Deployment/" in line
    )
    assert "trusted-registries: " in objection or f"would not run {image} once rendered" in objection
    assert "not from a trusted registry" in objection or "rewrites the image" in objection
    assert git(work, "status", "--porcelain") == ""


def test_a_release_file_that_would_not_say_what_runs_is_refused(remote: Path, tmp_path: Path) -> None:
    """A patch after the release file that pins another image: the release file would no longer say what runs."""
    work = clone(remote, tmp_path / "work")
    overlay = work / OVERLAYS / FIRST / "kustomization.yaml"
    pinned = f"{IMAGE}:pinned@{digest(7)}"
    patch = (
        "  - target:\n      kind: Deployment\n      name: microservice-demo\n    patch: |-\n"
        f"      - op: replace\n        path: /spec/template/spec/containers/0/image\n        value: {pinned}\n"
    )
    overlay.write_text(overlay.read_text().replace("patches:\n", "patches:\n" + patch, 1))
    git(work, "commit", "--quiet", "-am", "pin the image in the overlay")
    image = f"{IMAGE}:1.0.0@{digest(8)}"
    result = gitops(work, "set-image", FIRST, image)
    assert result.returncode == 2
    assert f"{release_path(FIRST)} left unchanged: overlays/{FIRST} would not run {image} once rendered (" in (
        result.stderr
    )
    assert f"Deployment/microservice-demo-{FIRST}/microservice-demo runs {pinned}" in result.stderr
    assert git(work, "status", "--porcelain") == ""


def test_an_objection_the_environment_already_had_is_not_the_images_doing(remote: Path, tmp_path: Path) -> None:
    """The admission policies judge the new render against the old one: what they already objected to (here, a
    Deployment without a readiness probe) neither stops a good image nor is blamed on a bad one."""
    work = clone(remote, tmp_path / "work")
    overlay = work / OVERLAYS / FIRST / "kustomization.yaml"
    no_probe = (
        "  - target:\n      kind: Deployment\n      name: microservice-demo\n    patch: |-\n"
        "      - op: remove\n        path: /spec/template/spec/containers/0/readinessProbe\n"
    )
    overlay.write_text(overlay.read_text().replace("patches:\n", "patches:\n" + no_probe, 1))
    git(work, "commit", "--quiet", "-am", "drop the readiness probe")
    assert "probes-required" in gitops(work, "policy-check", f"overlays/{FIRST}").stdout

    assert gitops(work, "set-image", FIRST, f"{IMAGE}:1.0.0@{digest(6)}").returncode == 0
    refused = gitops(work, "set-image", FIRST, UPPERCASE_DIGEST)
    assert refused.returncode == 2
    assert "images-pinned-by-digest" in refused.stderr
    assert "probes-required" not in refused.stderr


def test_a_modified_release_file_is_not_overwritten(remote: Path, tmp_path: Path) -> None:
    work = clone(remote, tmp_path / "work")
    release = work / release_path(FIRST)
    release.write_text(release.read_text() + "# a local edit\n")
    result = gitops(work, "set-image", FIRST, f"{IMAGE}@{digest(4)}")
    assert result.returncode == 2
    assert f"{release_path(FIRST)} has uncommitted changes" in result.stderr
    assert release.read_text().endswith("# a local edit\n")


def test_an_overlay_that_no_longer_renders_is_left_unchanged(remote: Path, tmp_path: Path) -> None:
    work = clone(remote, tmp_path / "work")
    overlay = work / OVERLAYS / FIRST / "kustomization.yaml"
    overlay.write_text(overlay.read_text().replace("  - release\n", "  - release\n  - missing-component\n"))
    git(work, "commit", "--quiet", "-am", f"break {FIRST}")
    release = work / release_path(FIRST)
    before = release.read_text()
    result = gitops(work, "set-image", FIRST, f"{IMAGE}@{digest(5)}")
    assert result.returncode == 2
    assert f"overlays/{FIRST} no longer renders with {IMAGE}@{digest(5)}, {release_path(FIRST)} left unchanged" in (
        result.stderr
    )
    assert "missing-component" in result.stderr
    assert release.read_text() == before
