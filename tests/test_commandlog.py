"""The debug log: one line per git (and docker) command with its exit code and seconds,
shown only with --verbose or ORCHESTRATOR_LOG=debug, never with a URL's password."""

from __future__ import annotations

import logging
import re
import subprocess
from pathlib import Path

import pytest

from orchestrator import commandlog, gitcmd
from orchestrator.sandbox import create_demo
from orchestrator_cli import debugging
from tests.helpers.cli import run_cli

_GIT_LINE = re.compile(r"^debug: git .+ -> exit [0-9]+ in [0-9]+\.[0-9]{2}s$")


@pytest.fixture(scope="module")
def demo_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_demo(tmp_path_factory.mktemp("demo"))


def fetch(workspace: Path, manifest: Path, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
    workspace.mkdir(parents=True, exist_ok=True)
    return run_cli("fetch", "felix", "-m", str(manifest), "-w", str(workspace), "--progress", "plain", *extra,
                   program="orchestrator", cwd=workspace,
                   env={"XDG_CACHE_HOME": str(workspace / "cache"), "HOME": str(workspace), **env})


def test_orchestrator_log_debug_shows_every_git_command_with_exit_code_and_seconds(
    demo_manifest: Path, tmp_path: Path
) -> None:
    result = fetch(tmp_path / "ws", demo_manifest, ORCHESTRATOR_LOG="debug")

    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("debug: ")]
    assert lines and all(_GIT_LINE.match(line) for line in lines), lines
    assert any(" fetch " in line for line in lines) and any(" checkout " in line for line in lines)


def test_verbose_shows_them_too_and_neither_shows_nothing(demo_manifest: Path, tmp_path: Path) -> None:
    verbose = fetch(tmp_path / "a", demo_manifest, "--verbose", ORCHESTRATOR_LOG="")
    quiet = fetch(tmp_path / "b", demo_manifest, ORCHESTRATOR_LOG="info")

    assert verbose.returncode == quiet.returncode == 0
    assert any(_GIT_LINE.match(line) for line in verbose.stderr.splitlines())
    assert "debug:" not in quiet.stderr


def test_a_log_level_it_cannot_mean_is_refused(demo_manifest: Path, tmp_path: Path) -> None:
    result = fetch(tmp_path / "ws", demo_manifest, ORCHESTRATOR_LOG="loud")

    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: ORCHESTRATOR_LOG='loud' is not a log level",
                                          "  hint: use debug, or info (the default)"]


def test_a_url_password_never_reaches_the_log(tmp_path: Path) -> None:
    lines: list[str] = []
    debugging.switch_on(lines.append)
    try:
        gitcmd.run(["ls-remote", "https://user:s3cret@127.0.0.1:1/x.git"], cwd=tmp_path,
                   env={"GIT_TERMINAL_PROMPT": "0"})
    finally:
        debugging.switch_off()

    assert len(lines) == 1 and "s3cret" not in lines[0] and "127.0.0.1:1/x.git" in lines[0]
    assert re.search(r"-> exit [1-9][0-9]* in ", lines[0])


def test_nothing_is_logged_or_formatted_while_the_log_is_off(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    debugging.switch_off()
    with caplog.at_level(logging.INFO, logger=commandlog.LOGGER.name):
        gitcmd.run(["version"], cwd=tmp_path)
    assert caplog.records == [] and not commandlog.enabled()


def test_a_timed_block_says_how_it_ended() -> None:
    lines: list[str] = []
    debugging.switch_on(lines.append)
    try:
        with commandlog.timed("docker", "tagging a as b"):
            pass
        with pytest.raises(KeyError), commandlog.timed("docker", "inspecting image x"):
            raise KeyError("x")
    finally:
        debugging.switch_off()

    assert re.fullmatch(r"debug: docker tagging a as b -> ok in [0-9.]+s", lines[0])
    assert re.fullmatch(r"debug: docker inspecting image x -> failed \(KeyError\) in [0-9.]+s", lines[1])
