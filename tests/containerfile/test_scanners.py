"""The Containerfile passes hadolint, trivy and checkov, each suppression carries its reason, and each scanner
rejects a deliberately insecure Containerfile (so none of these checks passes by being switched off)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = REPO_ROOT / "Containerfile"
INSECURE = Path(__file__).parent / "fixtures" / "insecure.Containerfile"
TRIVY_IGNORE = REPO_ROOT / ".trivyignore.yaml"
SCANNERS = REPO_ROOT / ".tools" / "scanners" / "bin"


def _tool(name: str) -> str:
    path = SCANNERS / name
    if not path.exists():
        pytest.fail(f"{path} is missing: ./scripts/test installs the scanners (tools/scanners)")
    return str(path)


def hadolint(containerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_tool("hadolint"), str(containerfile)], capture_output=True, text=True, check=False)


def trivy(containerfile: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    shutil.copy(containerfile, tmp_path / "Containerfile")  # trivy knows the name Containerfile
    return subprocess.run(
        [
            _tool("trivy"), "config", "--skip-check-update", "--quiet", "--exit-code", "1",
            "--ignorefile", str(TRIVY_IGNORE), "--cache-dir", str(tmp_path / "trivy-cache"), str(tmp_path),
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def checkov(containerfile: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    shutil.copy(containerfile, tmp_path / "Dockerfile")  # checkov recognises only Dockerfile-like names
    return subprocess.run(
        [_tool("checkov"), "--skip-download", "--quiet", "--compact", "--framework", "dockerfile",
         "-f", str(tmp_path / "Dockerfile")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_hadolint_passes() -> None:
    result = hadolint(CONTAINERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_an_insecure_containerfile() -> None:
    result = hadolint(INSECURE)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # :latest


def test_trivy_passes(tmp_path: Path) -> None:
    result = trivy(CONTAINERFILE, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_trivy_rejects_an_insecure_containerfile(tmp_path: Path) -> None:
    result = trivy(INSECURE, tmp_path)
    assert result.returncode == 1
    assert "DS-0002" in result.stdout  # runs as root


def test_checkov_passes(tmp_path: Path) -> None:
    result = checkov(CONTAINERFILE, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Failed checks: 0" in result.stdout


def test_checkov_rejects_an_insecure_containerfile(tmp_path: Path) -> None:
    result = checkov(INSECURE, tmp_path)
    assert result.returncode == 1
    assert "CKV_DOCKER_3" in result.stdout  # no USER


def test_every_suppression_states_its_reason() -> None:
    text = CONTAINERFILE.read_text()
    hadolint_ignores = re.findall(r"^# hadolint ignore=(\S+)(.*)$", text, re.M)
    checkov_skips = re.findall(r"^# checkov:skip=(CKV_\w+):?(.*)$", text, re.M)
    assert hadolint_ignores, "the Containerfile's suppressions are expected here; update this test with them"
    assert checkov_skips
    for rule, reason in [*hadolint_ignores, *checkov_skips]:
        assert len(reason.strip(" #:")) >= 20, f"{rule} is suppressed without a reason"
    for entry in yaml.safe_load(TRIVY_IGNORE.read_text())["misconfigurations"]:
        assert len(entry.get("statement", "")) >= 20, f"{entry['id']} is ignored without a statement"


def test_python_paths_match_between_stages() -> None:
    """The venv's interpreter link made in the build stage must resolve in the runtime stage."""
    text = CONTAINERFILE.read_text()
    assert "UV_PYTHON=/usr/bin/python3.11" in text
    for arg in ("BUILDER_IMAGE", "RUNTIME_IMAGE"):
        default = re.search(rf"^ARG {arg}=(\S+)$", text, re.M)
        assert default is not None
        assert re.search(r":[\w.-]+@sha256:[0-9a-f]{64}$", default.group(1)), f"{arg} must pin a tag and a digest"
    assert "debian12" in text and "debian:12" in text, "both stages must be Debian 12 (Python 3.11 at /usr/bin)"
    assert sys.version_info >= (3, 11)
