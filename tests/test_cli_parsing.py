"""How command lines parse: pinned on invoke 3.0's parser plus our normalize step."""

from __future__ import annotations

import pytest
from invoke.parser import Parser

from orchestrator_cli.parsing import UsageError, normalize
from orchestrator_cli.program import _core
from orchestrator_cli.tasks import namespace

CONTEXTS = {ctx.name: ctx for ctx in namespace.to_contexts()}


def parse(*argv: str) -> list[tuple[str, dict[str, object]]]:
    core = _core()
    tokens = normalize(argv, CONTEXTS, core.flags, "orchestrator")
    result = Parser(initial=core, contexts=list(CONTEXTS.values())).parse_argv(tokens)
    return [(ctx.name, dict(ctx.as_kwargs)) for ctx in result[1:]]


def only(*argv: str) -> dict[str, object]:
    [(_, args)] = parse(*argv)
    return args


def test_a_name_fills_the_positional() -> None:
    args = only("build", "felix")
    assert args["names"] == "felix" and args["all_"] is False


def test_space_separated_names_are_one_list() -> None:
    assert only("build", "felix", "calicoctl", "calico/node")["names"] == "felix,calicoctl,calico/node"


def test_names_may_surround_flags_and_flag_values_stay_values() -> None:
    args = only("build", "felix", "--jobs", "3", "calicoctl", "-k", "-m", "other.yaml", "calico/node")
    assert args["names"] == "felix,calicoctl,calico/node"
    assert args["jobs"] == "3" and args["keep_going"] is True and args["manifest"] == "other.yaml"


def test_all_alone_leaves_names_empty() -> None:
    args = only("build", "--all", "--dry-run")
    assert args["names"] == "" and args["all_"] is True and args["dry_run"] is True


def test_no_names_at_all_parses_so_that_the_task_can_say_what_it_needs() -> None:
    assert only("build")["names"] == ""


def test_names_and_all_are_both_kept_so_the_task_can_refuse_both() -> None:
    assert only("build", "felix", "--all")["names"] == "felix"
    args = only("build", "--all", "felix")
    assert args["names"] == "felix" and args["all_"] is True


def test_short_flags_mean_the_same_in_every_task() -> None:
    for task in ("build", "fetch", "publish", "verify", "manifest"):
        assert CONTEXTS[task].flags["-m"].name == "manifest", task
    for task in ("build", "fetch", "demo"):
        assert CONTEXTS[task].flags["-j"].name == "jobs", task
    assert "-r" not in CONTEXTS["fetch"].flags, "-r is --registry wherever it exists, never --retries"


def test_attached_short_values_and_clusters_parse() -> None:
    args = only("build", "felix", "-j4", "-kn")
    assert args["jobs"] == "4" and args["keep_going"] is True and args["dry_run"] is True


def test_an_optional_value_after_its_flag_stays_the_flags_value() -> None:
    args = only("build", "calicoctl", "--force", "felix")
    assert args["names"] == "calicoctl" and args["force"] == "felix"
    assert only("build", "--all", "--force=felix")["force"] == "felix"


def test_an_attached_optional_value_may_come_before_the_names() -> None:
    # invoke's parser alone calls 'felix' "ambiguous" here: the names were still missing.
    args = only("build", "--force=felix", "-m", "other.yaml", "felix", "calicoctl")
    assert args["names"] == "felix,calicoctl" and args["force"] == "felix" and args["manifest"] == "other.yaml"
    args = only("build", "-a", "--force", "felix")
    assert args["names"] == "" and args["all_"] is True and args["force"] == "felix"


def test_a_task_name_after_names_starts_the_next_task() -> None:
    assert [name for name, _ in parse("build", "felix", "verify", "--offline")] == ["build", "verify"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("build", "--dryrun"), "unknown flag '--dryrun' for orchestrator build; did you mean '--dry-run'?"),
        (("biuld", "felix"), "unknown task 'biuld'; did you mean 'build'?"),
        (("verify", "felix"), "orchestrator verify takes no names, got 'felix'"),
        (("build", "felix", "--jobs"), "--jobs needs a value, e.g. --jobs=N"),
        (("build", "--zzz"), "`orchestrator --help build` lists them"),
        (("build", "--force", "felix"),
         "'felix' after --force could be a name or --force's value; write `orchestrator build felix --force` or "
         "`--force=felix` with the names"),
    ],
)
def test_malformed_command_lines_say_what_to_do(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(*argv)
    assert message in str(caught.value)
