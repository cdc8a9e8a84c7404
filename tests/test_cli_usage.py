"""The command line never surprises: only our options, one set of short flags, errors that
say what to do, through the real `orchestrator` and `invoke` executables."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import run_cli

INVOKE_RUNNER_FLAGS = ("--pty", "--sudo", "--echo", "--warn-only", "--command-timeout", "--config", "--dry",
                       "--hide", "--prompt-for-sudo-password", "--write-pyc")


def test_the_console_script_shows_only_its_own_options() -> None:
    result = run_cli("--help", program="orchestrator")
    assert result.returncode == 0
    for flag in INVOKE_RUNNER_FLAGS:
        assert flag not in result.stdout, flag
    for task in ("manifest", "build", "fetch", "demo", "publish", "verify"):
        assert f"\n  {task} " in result.stdout


def test_the_console_script_refuses_invoke_runner_flags_with_exit_2() -> None:
    result = run_cli("--pty", "build", "felix", "--dry-run", program="orchestrator")
    assert result.returncode == 2
    assert "unknown flag '--pty'" in result.stderr
    assert "Traceback" not in result.stderr


def test_task_help_shows_value_placeholders() -> None:
    result = run_cli("--help", "build", program="orchestrator")
    assert result.returncode == 0
    assert "-j N, --jobs=N" in result.stdout
    assert "--mirror=FROM=TO" in result.stdout and "(repeatable)" in result.stdout
    assert "-m PATH, --manifest=PATH" in result.stdout
    assert "--force[=NAMES]" in result.stdout
    assert "STRING" not in result.stdout


@pytest.mark.parametrize("program", ["orchestrator", "invoke"])
def test_several_names_may_be_given_space_separated(program: str) -> None:
    result = run_cli("build", "felix", "calicoctl", "--dry-run", program=program)
    assert result.returncode == 0, result.stderr
    assert "2 artifacts from 2 repos" in result.stdout


@pytest.mark.parametrize("program", ["orchestrator", "invoke"])
def test_force_with_its_value_may_come_before_the_names(program: str) -> None:
    result = run_cli("build", "--force=felix", "felix", "--dry-run", program=program)
    assert result.returncode == 0, result.stderr
    assert "1 artifact from 1 repo" in result.stdout


@pytest.mark.parametrize("dry_run", [True, False])
def test_force_naming_what_the_build_does_not_include_is_refused(dry_run: bool, tmp_path: Path) -> None:
    # calicoctl does not need felix: --force=felix would rebuild nothing, silently.
    result = run_cli("build", "calicoctl", "--force=felix", *(["--dry-run"] if dry_run else []),
                     "--workspace", str(tmp_path), program="orchestrator")
    assert result.returncode == 2, result.stderr
    assert "--force=felix names what this build does not include: felix" in result.stderr
    assert not (tmp_path / ".build").exists(), "refused before any work"


@pytest.mark.parametrize("program", ["orchestrator", "invoke"])
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("build", "felix", "--dryrun"), "did you mean '--dry-run'?"),
        (("biuld", "felix"), "unknown task 'biuld'; did you mean 'build'?"),
        (("verify", "felix"), "verify takes no names, got 'felix'"),
        (("build", "--force", "felix"), "build felix --force` or `--force=felix` with the names"),
        (("--bogus", "build"), "unknown flag '--bogus'"),  # before the task name too (README: Exit codes)
    ],
)
def test_malformed_command_lines_exit_2_with_a_hint(program: str, argv: tuple[str, ...], message: str) -> None:
    result = run_cli(*argv, program=program)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("task", ["build", "fetch", "publish"])
def test_neither_names_nor_all_says_so_and_shows_both_forms(task: str) -> None:
    result = run_cli(task, program="orchestrator")
    assert result.returncode == 2
    assert f"{task}: name what to {task}, or pass --all" in result.stderr
    assert f"`{task} felix calico/node`" in result.stderr and f"`{task} --all`" in result.stderr


def test_invokes_dry_means_dry_run_for_build() -> None:
    result = run_cli("--dry", "build", "felix")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("plan for release v3.2.0: 1 artifact from 1 repo")


@pytest.mark.parametrize("task", [("publish", "--all"), ("fetch", "--all"), ("demo",), ("verify",)])
def test_invokes_dry_is_refused_where_it_cannot_mean_a_dry_run(task: tuple[str, ...]) -> None:
    result = run_cli("--dry", *task)
    assert result.returncode == 2
    assert f"invoke's --dry does not apply to {task[0]}" in result.stderr


def test_completion_offers_tasks_flags_and_the_manifests_names() -> None:
    names = run_cli("--complete", "--", "orchestrator", "build", "fel", program="orchestrator")
    assert names.returncode == 0
    assert {"felix", "calico/node", "node", "build", "verify"} <= set(names.stdout.split())
    flags = run_cli("--complete", "--", "orchestrator", "build", "--", program="orchestrator")
    assert "--dry-run" in flags.stdout.split() and "--pty" not in flags.stdout
    assert "--names" not in flags.stdout.split(), "names are typed as words, not as a flag"
    after_manifest = run_cli("--complete", "--", "orchestrator", "build", "--manifest", program="orchestrator")
    assert after_manifest.stdout == "", "a file name comes next: the shell completes it"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_call_back_the_console_script(shell: str) -> None:
    result = run_cli("--print-completion-script", shell, program="orchestrator")
    assert result.returncode == 0
    assert "--complete" in result.stdout and "orchestrator" in result.stdout


@pytest.mark.parametrize("value", ["UPPER/", "http://x/", "x y/", "no-slash"])
def test_demo_registry_is_judged_like_defaults_registry(value: str) -> None:
    result = run_cli("demo", "--registry", value, program="orchestrator")
    assert result.returncode == 2 and f"--registry {value!r} cannot start image names" in result.stderr
