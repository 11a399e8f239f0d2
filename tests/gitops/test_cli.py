"""The command line: options that several commands take are declared once and mean the same in each; what a
promotion and a rollback print is made the same way."""

from __future__ import annotations

import argparse

import pytest
from gitops.cli import parser
from gitops.proposal import MAX_DIFF_LINES, rendered_change


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    (commands,) = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


def _options(command: str) -> dict[str, tuple[object, str | None]]:
    """Each option's default and help text."""
    return {
        a.dest: (a.default, a.help) for a in _subcommands()[command]._actions if not isinstance(a, argparse._HelpAction)
    }


def test_the_pushing_options_are_the_same_in_every_command_that_commits() -> None:
    shared = {name: _options(name) for name in ("set-image", "promote", "rollback")}
    for name in ("push", "remote"):
        assert len({options[name] for options in shared.values()}) == 1, f"--{name} differs between {list(shared)}"
    assert shared["rollback"]["push"][0] is False
    assert shared["rollback"]["remote"][0] == "origin"


def test_the_environment_argument_is_the_same_in_every_command_on_one_environment() -> None:
    helps = {_options(name)["environment"] for name in ("set-image", "diff", "rollback")}
    assert len(helps) == 1
    ((_, text),) = helps
    assert text is not None and "overlays/ENVIRONMENT/" in text
    assert not {"dev", "staging", "prod"} & set(str(text).replace(",", " ").split()), "read from overlays/, not named"


@pytest.mark.parametrize(
    "argv",
    [
        ["set-image", "qa", "ghcr.io/x/y@sha256:" + "0" * 64, "--push", "--remote", "upstream"],
        ["promote", "a", "b", "--push", "--remote", "upstream"],
        ["rollback", "qa", "--push", "--remote", "upstream"],
    ],
)
def test_every_command_that_commits_reads_the_pushing_options(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    assert (args.push, args.remote) == (True, "upstream")


def test_check_without_versions_validates_against_every_supported_one() -> None:
    assert parser().parse_args(["check"]).kubernetes_version is None  # the command reads None as all of them


def test_a_long_rendered_change_is_shortened_with_a_note_in_promotions_and_rollbacks_alike() -> None:
    diff = "".join(f"+line {n}\n" for n in range(MAX_DIFF_LINES + 50))
    section = rendered_change("staging", diff)
    shown = section.split("```diff\n")[1].split("\n```")[0].splitlines()
    assert shown == [f"+line {n}" for n in range(MAX_DIFF_LINES)]
    assert f"_The diff has {MAX_DIFF_LINES + 50} lines; the first {MAX_DIFF_LINES} are shown." in section
    short = rendered_change("staging", "+one\n")
    assert short == "### Rendered change to staging\n\n```diff\n+one\n```\n"


def test_promote_takes_the_target_or_leaves_it_to_the_overlays() -> None:
    explicit = parser().parse_args(["promote", "dev", "staging"])
    assert (explicit.source, explicit.target) == ("dev", "staging")
    found = parser().parse_args(["promote", "--ref", "0" * 40, "--open-pr", "--", "staging"])
    assert (found.source, found.target, found.open_pr) == ("staging", None, True)
    dashed = parser().parse_args(["promote", "--", "--push"])
    assert (dashed.source, dashed.target, dashed.push) == ("--push", None, False), "after --, never an option"
