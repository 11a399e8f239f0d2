"""The promote Task runs `./scripts/gitops promote` in a fresh clone, in a Debian Python image, as root: so
`scripts/gitops` must install everything `gitops promote` needs (it runs `gitops check` on the target), with
nothing but what the image has. Tested the way the Task runs it: a copy of the repository with no .venv, no
.tools and no node_modules, and `gitops check` on an overlay through `scripts/gitops`."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from gitops.cli import parser
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))
TASK = ROOT / "tekton" / "ci-cd" / "tasks" / "promote.yaml"


def test_the_task_runs_the_repositorys_own_launcher_in_a_debian_image_as_root() -> None:
    (step,) = yaml.safe_load(TASK.read_text())["spec"]["steps"]
    assert "./scripts/gitops promote " in step["script"]
    # scripts/bootstrap.sh installs Node.js with apt-get, which needs Debian and root.
    assert "bookworm" in step["image"] or "trixie" in step["image"]
    assert (step.get("securityContext") or {}).get("runAsNonRoot") is not True


def _command(step: dict[str, object], variables: dict[str, str]) -> list[str]:
    """The step's `./scripts/gitops promote ...` line as the shell splits it, with the step's variables set."""
    (line,) = [line for line in str(step["script"]).splitlines() if line.lstrip().startswith("./scripts/gitops ")]
    words = shlex.split(line)
    assert all(word.count("$") == (word in {f"${name}" for name in variables}) for word in words), (
        "each variable is a word of its own, quoted"
    )
    return [variables.get(word[1:], word) if word.startswith("$") else word for word in words]


@pytest.mark.parametrize("source", ["staging", "qa", "--push", "-h", "prod staging"])
def test_the_task_gives_the_tool_the_source_alone_and_lets_the_overlays_name_the_targets(source: str) -> None:
    """Only the deployed environment and its revision come in, through the environment (no $(params.…) in the
    script, where a value would be spliced into the shell): the command line has SOURCE as the source whatever it
    spells, and no target, so `gitops promote` reads the targets from the overlays."""
    spec = yaml.safe_load(TASK.read_text())["spec"]
    assert [p["name"] for p in spec["params"]] == ["source", "revision"]
    (step,) = spec["steps"]
    assert "$(params." not in step["script"]
    given = {e["name"]: e["value"] for e in step["env"] if "value" in e}
    assert {name for name, value in given.items() if "$(params." in value} == {"SOURCE_ENV", "REVISION"}
    assert (given["SOURCE_ENV"], given["REVISION"]) == ("$(params.source)", "$(params.revision)")
    revision = "0123456789abcdef" * 2 + "01234567"
    argv = _command(step, {"SOURCE_ENV": source, "REVISION": revision})
    assert argv[:2] == ["./scripts/gitops", "promote"]
    args = parser().parse_args(argv[1:])
    assert (args.source, args.target, args.ref) == (source, None, revision)
    assert (args.open_pr, args.base, args.push) == (True, "main", False)


@pytest.mark.process
def test_scripts_gitops_installs_what_check_needs_in_a_fresh_clone(tmp_path: Path) -> None:
    if os.geteuid() != 0 and os.environ.get("CI") != "true":
        pytest.skip("installs Node.js from Debian's packages when it is missing: run as root")
    clone = tmp_path / "repo"
    shutil.copytree(
        ROOT, clone,
        ignore=shutil.ignore_patterns(".git", ".venv", ".tools", "node_modules", ".cache", "__pycache__"),
    )  # fmt: skip
    git = ["git", "-C", str(clone), "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", "init", "-q", str(clone)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "--no-verify", "-m", "fresh clone"], check=True)
    # Nothing of this checkout's environments: not its .venv on PATH, not its virtual environment.
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not p.startswith(str(ROOT)))
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}}
    result = subprocess.run(
        ["./scripts/gitops", "check", "overlays/staging"],
        cwd=clone, env={**env, "PATH": path}, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (clone / "tools" / "crd-schemas" / "node_modules").is_dir()
    assert (clone / ".tools" / "scanners" / "bin" / "checkov").exists()
