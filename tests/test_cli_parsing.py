"""`build` has an optional positional: this pins how it parses on invoke 3.0."""

from __future__ import annotations

import pytest
from invoke import ParseError
from invoke.parser import Parser

from orchestrator_cli.tasks import namespace


def parse(*argv: str) -> dict[str, object]:
    parser = Parser(contexts=namespace.to_contexts())
    result = parser.parse_argv(list(argv))
    return dict(result[0].as_kwargs)


def test_a_name_fills_the_positional() -> None:
    args = parse("build", "felix")
    assert args["names"] == "felix" and args["all_"] is False


def test_all_alone_satisfies_the_positional() -> None:
    args = parse("build", "--all", "--dry-run")
    assert args["names"] == "" and args["all_"] is True and args["dry_run"] is True


def test_names_before_all_are_kept_so_the_task_can_refuse_both() -> None:
    args = parse("build", "felix", "--all")
    assert args["names"] == "felix" and args["all_"] is True


def test_neither_names_nor_all_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="names"):
        parse("build")


def test_flags_after_the_name_still_parse() -> None:
    args = parse("build", "calico/node", "--jobs", "3", "--keep-going")
    assert args["names"] == "calico/node" and args["jobs"] == "3" and args["keep_going"] is True
