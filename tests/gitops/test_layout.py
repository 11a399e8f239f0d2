"""The repository's layout as the tool reads it: the environments are the overlays with a release file, and the
promotion order is what each overlay's kustomization declares; a mistake in either is named with its file."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitops.layout import PROMOTED_FROM, RepositoryError, environments, overlay, release_file, release_path
from gitops.promotion_order import PromotionOrder
from gitrepos import ROOT


def _repository(tmp_path: Path, sources: dict[str, str | None]) -> Path:
    """Overlays with a release file each, promoted from the given environments (None: set by the pipeline)."""
    for environment, source in sources.items():
        (tmp_path / "overlays" / environment / "release").mkdir(parents=True)
        (tmp_path / "overlays" / environment / "release" / "kustomization.yaml").write_text("kind: Component\n")
        metadata = f"metadata:\n  annotations:\n    {PROMOTED_FROM}: {source}\n" if source else ""
        (tmp_path / "overlays" / environment / "kustomization.yaml").write_text(f"kind: Kustomization\n{metadata}")
    return tmp_path


def test_the_environments_are_the_overlays_with_a_release_file(tmp_path: Path) -> None:
    root = _repository(tmp_path, {"qa": None, "dev": None})
    (root / "overlays" / "no-release").mkdir()
    assert environments(root) == ["dev", "qa"]
    assert release_file(root, "qa") == root / "overlays" / "qa" / "release" / "kustomization.yaml"
    assert release_path("qa") == "overlays/qa/release/kustomization.yaml"
    assert environments(ROOT) == sorted(p.name for p in (ROOT / "overlays").iterdir() if (p / "release").is_dir())


@pytest.mark.parametrize("name", ["no-release", "missing", "../overlays/dev", ""])
def test_anything_else_is_an_unknown_environment_saying_which_there_are(tmp_path: Path, name: str) -> None:
    root = _repository(tmp_path, {"qa": None, "dev": None})
    (root / "overlays" / "no-release").mkdir()
    with pytest.raises(RepositoryError) as refused:
        overlay(root, name)
    assert str(refused.value) == (
        f"unknown environment {name!r}: expected one of dev, qa "
        "(a folder overlays/<env>/ with release/kustomization.yaml)"
    )


def test_the_repositorys_promotion_order_is_one_line_through_every_environment() -> None:
    order = PromotionOrder.read(ROOT)
    assert str(order) == "dev -> staging -> prod", "as docs/promote.md and the promotion EventListener have it"
    assert sorted(order.lines()[0]) == environments(ROOT)


def test_the_order_reads_each_overlays_source(tmp_path: Path) -> None:
    order = PromotionOrder.read(
        _repository(tmp_path, {"dev": None, "test": "dev", "live": "test", "preview": None, "demo": "preview"})
    )
    assert order.lines() == [["dev", "test", "live"], ["preview", "demo"]]
    assert str(order) == "dev -> test -> live; preview -> demo"
    assert order.is_step("dev", "test")
    assert order.is_step("test", "live")
    assert not order.is_step("dev", "live")
    assert not order.is_step("live", "test")
    assert order.start("live") == "dev"
    assert order.start("dev") == "dev"
    assert order.back("live") == ["live", "test", "dev"]


def test_the_next_environments_are_the_overlays_that_name_the_source(tmp_path: Path) -> None:
    """What `gitops promote SOURCE` without a target promotes to: with qa between staging and prod, staging goes to
    qa, qa to prod, and prod nowhere."""
    order = PromotionOrder.read(
        _repository(tmp_path, {"dev": None, "staging": "dev", "qa": "staging", "prod": "qa", "preview": None})
    )
    assert order.targets("dev") == ["staging"]
    assert order.targets("staging") == ["qa"]
    assert order.targets("qa") == ["prod"]
    assert order.targets("prod") == []
    assert order.targets("preview") == [], "set by the pipeline, promoted nowhere"
    repository = PromotionOrder.read(ROOT)
    (line,) = repository.lines()
    assert [repository.targets(e) for e in line] == [[e] for e in line[1:]] + [[]]


def test_no_source_anywhere_is_an_order_with_no_step(tmp_path: Path) -> None:
    order = PromotionOrder.read(_repository(tmp_path, {"dev": None, "prod": None}))
    assert str(order) == "nowhere (no overlay names a source)"
    assert not order.is_step("dev", "prod")


@pytest.mark.parametrize(
    ("sources", "says"),
    [
        (
            {"dev": None, "prod": "qa"},
            f"overlays/prod/kustomization.yaml: metadata.annotations {PROMOTED_FROM}: 'qa' is not another "
            "environment (dev)",
        ),
        (
            {"dev": "dev"},
            f"overlays/dev/kustomization.yaml: metadata.annotations {PROMOTED_FROM}: 'dev' is not another "
            "environment (none)",
        ),
        (
            {"dev": None, "prod": "dev", "staging": "dev"},
            f"overlays/prod/kustomization.yaml and overlays/staging/kustomization.yaml both name dev in "
            f"{PROMOTED_FROM}: an environment is promoted to one other at the most",
        ),
        (
            {"a": "c", "b": "a", "c": "b"},
            f"overlays/a/kustomization.yaml: {PROMOTED_FROM} goes round in a circle: a <- c <- b <- a",
        ),
        (
            {"dev": None, "a": "b", "b": "a"},
            f"overlays/a/kustomization.yaml: {PROMOTED_FROM} goes round in a circle: a <- b <- a",
        ),
    ],
)
def test_an_order_that_is_no_line_is_refused_naming_the_overlay(
    tmp_path: Path, sources: dict[str, str | None], says: str
) -> None:
    with pytest.raises(RepositoryError) as refused:
        PromotionOrder.read(_repository(tmp_path, sources))
    assert str(refused.value) == says


def test_an_overlay_that_is_not_yaml_or_names_no_environment_is_named(tmp_path: Path) -> None:
    root = _repository(tmp_path, {"dev": None, "prod": None})
    kustomization = root / "overlays" / "prod" / "kustomization.yaml"
    for text, says in [
        (
            f"metadata:\n  annotations:\n    {PROMOTED_FROM}: [dev]\n",
            f"overlays/prod/kustomization.yaml: metadata.annotations {PROMOTED_FROM} must be an environment's name",
        ),
        ("metadata: [unclosed\n", "overlays/prod/kustomization.yaml: not valid YAML"),
        (None, "overlays/prod: no kustomization"),
    ]:
        if text is None:
            kustomization.unlink()
        else:
            kustomization.write_text(text)
        with pytest.raises(RepositoryError) as refused:
            PromotionOrder.read(root)
        assert str(refused.value).startswith(says)
