"""The ApplicationSet controller's model (gitops.applicationsets) on small, made-up repositories: what the git
directory generator lists, how the template renders, and that whatever the model does not know fails loudly."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from gitops.applicationsets import Unmodelled, expand, generate, sanitize_name

REPO = "https://git.example.test/org/repo.git"


def _appset(**changes: Any) -> dict[str, Any]:
    appset: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": "envs", "namespace": "argocd"},
        "spec": {
            "goTemplate": True,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [{"git": {"repoURL": REPO, "revision": "main", "directories": [{"path": "overlays/*"}]}}],
            "template": {
                "metadata": {
                    "name": "svc-{{.path.basename}}",
                    "labels": {"environment": "{{ .path.basename }}"},
                    "annotations": {"{{.path.basename}}.example.test/key": "{{index .path.segments 0}}"},
                },
                "spec": {"project": "svc", "source": {"repoURL": REPO, "path": "{{.path.path}}"}},
            },
        },
    }
    appset["spec"].update(changes)
    return appset


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    for folder in ("overlays/dev", "overlays/dev/release", "overlays/prod", "overlays/.hidden", "other/x"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "kustomization.yaml").write_text("{}\n")
    (tmp_path / "overlays" / "empty").mkdir()  # git records no empty directory
    return tmp_path


def _names(applications: list[dict[str, Any]]) -> list[str]:
    return [a["metadata"]["name"] for a in applications]


def test_one_application_per_directory_the_pattern_matches(checkout: Path) -> None:
    # `*` never crosses a slash (Go's path.Match): overlays/dev/release is not a match; hidden and empty are left out.
    applications = generate(_appset(), checkout, REPO)
    assert _names(applications) == ["svc-dev", "svc-prod"]
    dev = applications[0]
    assert dev["metadata"]["labels"] == {"environment": "dev"}
    assert dev["metadata"]["annotations"] == {"dev.example.test/key": "overlays"}  # keys are templates too
    assert dev["metadata"]["namespace"] == "argocd"  # always the ApplicationSet's
    assert dev["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]  # added when none is given
    assert dev["spec"]["source"] == {"repoURL": REPO, "path": "overlays/dev"}


def test_an_excluded_directory_wins_over_an_included_one(checkout: Path) -> None:
    appset = _appset()
    appset["spec"]["generators"][0]["git"]["directories"].append({"path": "overlays/prod", "exclude": True})
    assert _names(generate(appset, checkout, REPO)) == ["svc-dev"]


def test_the_finalizer_is_not_added_when_resources_are_preserved(checkout: Path) -> None:
    appset = _appset(syncPolicy={"preserveResourcesOnDeletion": True})
    assert all("finalizers" not in a["metadata"] for a in generate(appset, checkout, REPO))


def test_expand_pairs_each_application_with_its_applicationset(checkout: Path) -> None:
    other = {"kind": "AppProject", "metadata": {"name": "svc"}}
    pairs = expand([other, _appset()], checkout, REPO)
    names = [(s["metadata"]["name"], a["metadata"]["name"]) for s, a in pairs]
    assert names == [("envs", "svc-dev"), ("envs", "svc-prod")]


def test_names_are_normalized_as_the_controller_does() -> None:
    assert sanitize_name("Directory_2") == "directory-2"
    assert sanitize_name("-a.b-") == "a.b"


def _break(change: Any) -> dict[str, Any]:
    appset = _appset()
    change(appset["spec"])
    return appset


@pytest.mark.parametrize(
    ("appset", "expected"),
    [
        (_break(lambda s: s["template"]["metadata"].update(name="{{.path.filename}}")), "{{.path.filename}}"),
        (_break(lambda s: s["template"]["metadata"].update(name="{{.path.basename | upper}}")), "upper"),
        (_break(lambda s: s["template"]["metadata"].update(name="{{- .path.basename}}")), "{{- .path.basename}}"),
        (_break(lambda s: s["template"]["metadata"].update(name="{{if .path}}x{{end}}")), "{{if .path}}"),
        (_break(lambda s: s["template"]["metadata"].update(name="{{index .path.segments 5}}")), "out of range"),
        (_break(lambda s: s.update(generators=[{"list": {"elements": []}}])), "generator ['list']"),
        (_break(lambda s: s["generators"][0]["git"].update(files=[{"path": "*.json"}])), "files"),
        (_break(lambda s: s["generators"][0]["git"].update(pathParamPrefix="p")), "pathParamPrefix"),
        (_break(lambda s: s["generators"][0]["git"].update(repoURL="https://elsewhere.test/r.git")), "reads"),
        (_break(lambda s: s["generators"][0]["git"]["directories"][0].update(path="overlays/[dp]*")), "`*`, `?`"),
        (_break(lambda s: s.update(templatePatch="{}")), "templatePatch"),
        (_break(lambda s: s.update(goTemplateOptions=[])), "missingkey=error"),
        (_break(lambda s: s.pop("goTemplate")), "missingkey=error"),
        (_break(lambda s: s["template"]["metadata"].update(ownerReferences=[])), "template metadata"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_what_the_model_does_not_know_fails_loudly(checkout: Path, appset: dict[str, Any], expected: str) -> None:
    with pytest.raises(Unmodelled) as raised:
        generate(copy.deepcopy(appset), checkout, REPO)
    assert expected in str(raised.value)
