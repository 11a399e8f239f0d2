"""`gitops check` names every value of settings/site.yaml that is still a placeholder: a warning, or with --strict
a failure."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from gitops.placeholders import find_placeholders
from gitops.repository import repo_root

ROOT = repo_root(Path(__file__))


def _site(root: Path, **values: str) -> Path:
    (root / "settings").mkdir(parents=True, exist_ok=True)
    (root / "settings" / "site.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "site-settings"}, "data": values})
    )
    return root


def test_every_shipped_address_is_named_as_a_placeholder() -> None:
    """As shipped, every address (repository, registry, host names, mail) names a reserved domain or your-org and
    is reported; group and channel names are plain names that no reserved word marks, so they are not."""
    data = yaml.safe_load((ROOT / "settings" / "site.yaml").read_text())["data"]
    reported = {p.key for p in find_placeholders(ROOT)}
    assert reported == {key for key in data if not key.startswith(("group", "slack"))}


@pytest.mark.parametrize(
    ("value", "placeholder"),
    [
        ("https://github.com/your-org/microservice-demo.git", True),
        ("grafana.example.com", True),
        ("oncall@example.org", True),
        ("ci.acme.example", True),
        ("sso:your-org:admins", True),
        ("https://github.com/acme/microservice-demo.git", False),
        ("registry.acme.io/platform", False),
        ("my-example.com", False),
        ("your-organisation-admins", False),
    ],
)
def test_reserved_names_are_placeholders_and_real_ones_are_not(tmp_path: Path, value: str, placeholder: bool) -> None:
    found = find_placeholders(_site(tmp_path, key=value))
    assert bool(found) is placeholder
    if found:
        assert str(found[0]) == f"settings/site.yaml: key is still a placeholder ({value})"


def test_check_warns_and_strict_fails(tmp_path: Path) -> None:
    """On the shipped repository `check --strict` exits 1 naming each placeholder; without --strict they are
    warnings and do not change the verdict."""
    gitops = shutil.which("gitops") or str(ROOT / ".venv" / "bin" / "gitops")
    args = [gitops, "check", "--no-scan", "policies"]
    plain = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    strict = subprocess.run([*args, "--strict"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "warning: settings/site.yaml: imageRegistry is still a placeholder (ghcr.io/your-org)" in plain.stdout
    assert strict.returncode == 1
    assert "error: settings/site.yaml: gitRepoURL is still a placeholder" in strict.stdout
