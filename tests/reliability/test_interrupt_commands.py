"""Host commands stop, all of them: what a command starts never outlives its step.

The CommandRunner against real processes: children that ignore SIGTERM, children that
leave the process group, background children that hold the output pipe open.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import procs
from orchestrator.commands import CommandRunner
from orchestrator.errors import BuildError
from tests.reliability.interrupt_helpers import alive, kill_marked, marker, wait_until

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")


class Step:
    """One ``runner.run`` in a thread, its log lines and its outcome."""

    def __init__(self, runner: CommandRunner, script: str, cwd: Path) -> None:
        self.lines: list[str] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(runner, script, cwd), daemon=True)
        self.thread.start()

    def _run(self, runner: CommandRunner, script: str, cwd: Path) -> None:
        try:
            runner.run(["sh", "-c", script], cwd=cwd, env={"PATH": "/usr/bin:/bin"}, log=self.lines.append,
                       name="step")
        except BaseException as e:  # noqa: BLE001 - handed to the test
            self.error = e

    def started(self) -> None:
        wait_until(lambda: "started" in self.lines, "the command to start")

    def join(self, timeout: float = 60.0) -> None:
        self.thread.join(timeout)  # a safety bound: the step must have ended by itself
        assert not self.thread.is_alive(), f"the step is still running; log: {self.lines}"


@pytest.fixture
def word() -> Iterator[str]:
    word = marker()
    yield word
    kill_marked(word)


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period_though_its_parent_exited(
        tmp_path: Path, word: str) -> None:
    runner = CommandRunner(grace=0.5)
    # The shell (the group's leader) dies of SIGTERM at once; its child ignores it and writes on.
    step = Step(runner, f"(trap '' TERM; while :; do echo {word} >> ticks; sleep 0.1; done) & echo started; wait",
                tmp_path)
    step.started()
    wait_until(lambda: alive(word), "the child to run")

    runner.cancel_all()

    assert alive(word) == [], "nothing of the command runs after cancel_all returned"
    step.join()
    assert isinstance(step.error, BuildError) and "stopped (interrupted)" in str(step.error)
    assert any("still running after SIGTERM" in line for line in step.lines), step.lines


def test_a_child_that_left_the_process_group_is_stopped_through_its_step_token(tmp_path: Path, word: str) -> None:
    runner = CommandRunner(grace=0.5)
    step = Step(runner, f"setsid sh -c 'trap \"\" TERM; while :; do sleep 0.1; done; echo {word}' "
                        "</dev/null >/dev/null 2>&1 & echo started; wait", tmp_path)
    step.started()
    wait_until(lambda: alive(word), "the setsid child to run")

    runner.cancel_all()

    assert alive(word) == []
    step.join()


def test_a_background_child_holding_the_output_pipe_does_not_hang_the_step_and_is_stopped(
        tmp_path: Path, word: str) -> None:
    runner = CommandRunner()
    # The leader exits 0 at once; its background child keeps the output pipe open.
    step = Step(runner, f"(sleep 30; echo {word}; touch late) & echo started", tmp_path)

    step.join(timeout=20)

    assert step.error is None, step.error
    assert "started" in step.lines
    assert alive(word) == [] and alive("sleep 30; echo") == []
    assert any("left running" in line for line in step.lines), step.lines
    assert not (tmp_path / "late").exists()


def test_a_setsid_daemon_left_by_a_successful_step_is_stopped_when_the_step_ends(tmp_path: Path,
                                                                                  word: str) -> None:
    runner = CommandRunner()
    step = Step(runner, f"setsid sh -c 'sleep 30; echo {word}' </dev/null >/dev/null 2>&1 & echo started",
                tmp_path)

    step.join()

    assert step.error is None, step.error
    assert alive(word) == []


def test_kill_all_kills_everything_at_once_without_a_grace_period(tmp_path: Path, word: str) -> None:
    runner = CommandRunner(grace=600)  # a graceful stop would outlast the test's safety bounds
    step = Step(runner, f"trap '' TERM; (trap '' TERM; while :; do sleep 0.1; done; echo {word}) & "
                        "echo started; wait", tmp_path)
    step.started()
    wait_until(lambda: alive(word), "the child to run")

    runner.kill_all()

    assert alive(word) == []
    step.join(timeout=30)
    assert isinstance(step.error, BuildError)


def test_every_host_command_carries_the_run_token_and_a_token_of_its_own(tmp_path: Path) -> None:
    runner = CommandRunner()
    tokens = []
    for name in ("a", "b"):
        runner.run(["sh", "-c", f"env > {name}.env"], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"},
                   log=lambda line: None, name=name)
        env = dict(line.split("=", 1) for line in (tmp_path / f"{name}.env").read_text().splitlines() if "=" in line)
        assert env[procs.RUN_VARIABLE] == procs.run_token()
        tokens.append(env[procs.STEP_VARIABLE])
    assert tokens[0] != tokens[1]


def test_a_command_that_cannot_start_is_a_build_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="cannot run '/nonexistent/tool'"):
        CommandRunner().run(["/nonexistent/tool"], cwd=tmp_path, env={}, log=lambda line: None, name="x")


def test_a_failing_command_reports_its_exit_code_and_the_tail_of_its_output(tmp_path: Path) -> None:
    lines: list[str] = []
    with pytest.raises(BuildError) as caught:
        CommandRunner().run(["sh", "-c", "printf 'one\\ntwo'; exit 3"], cwd=tmp_path, env={}, log=lines.append,
                            name="x")
    assert "exit code 3" in str(caught.value) and "    two" in str(caught.value)
    assert lines == ["one", "two"], "a last line without a newline is logged too"
