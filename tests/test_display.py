"""Progress a person can follow, and a summary that reads well."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.execute import Event, Result
from orchestrator.outputs import ArtifactOutput, FileRecord
from orchestrator_cli.display import Progress, summary
from tests.helpers.cli import run_cli

BIN = Path(sys.executable).parent


def test_plain_progress_prints_one_line_per_state_change_and_skips_queued() -> None:
    out = io.StringIO()
    progress = Progress("plain", stream=out)
    for state in ("queued", "running", "ok"):
        progress(Event(artifact="felix", state=state))
    progress(Event(artifact="node", state="skipped", detail="skipped: dependency felix failed"))
    progress.fetch_event("felix", "retrying in 1s (try 2 of 3): connection reset")
    lines = out.getvalue().splitlines()
    assert lines[0] == "[running] felix"
    assert lines[1].startswith("[ok] felix (")
    assert lines[2] == "[skipped] node: dependency felix failed"
    assert lines[3] == "[fetch] felix: retrying in 1s (try 2 of 3): connection reset"


def test_plain_progress_gives_a_shared_reason_once() -> None:
    out = io.StringIO()
    progress = Progress("plain", stream=out)
    stopped = "not started: stopped after felix failed (use --keep-going to build what does not depend on it)"
    progress(Event(artifact="felix", state="failed", detail="felix: command failed with exit code 3"))
    for name in ("a", "b", "c"):
        progress(Event(artifact=name, state="not-started", detail=stopped))
    progress(Event(artifact="d", state="skipped", detail="skipped: dependency felix failed"))
    progress(Event(artifact="e", state="skipped", detail="skipped: dependency calicoctl failed"))
    assert out.getvalue().splitlines() == [
        "[failed] felix",
        "[not-started] a: stopped after felix failed (use --keep-going to build what does not depend on it)",
        "[not-started] b",
        "[not-started] c",
        "[skipped] d: dependency felix failed",
        "[skipped] e: dependency calicoctl failed",
    ]


def test_quiet_shows_no_progress_and_verbose_streams_log_lines_with_their_step() -> None:
    quiet, verbose = io.StringIO(), io.StringIO()
    for stream, progress in ((quiet, Progress("plain", quiet=True, stream=quiet)),
                             (verbose, Progress("plain", verbose=True, stream=verbose))):
        progress(Event(artifact="felix", state="running"))
        progress.fetch_event("felix", "cached, no network")
        progress.log_line("felix", "compiling felix")
        assert (stream.getvalue() == "") is (stream is quiet)
    assert "felix | compiling felix" in verbose.getvalue()


def test_the_live_table_shows_repositories_and_artifacts_then_clears_itself() -> None:
    out = io.StringIO()
    progress = Progress("tty", stream=out)
    with progress.showing():
        progress.fetch_event("felix", "fetching v3.2.0 from file:///x")
        progress(Event(artifact="felix", state="queued"))
        progress(Event(artifact="calico/node", state="failed"))
        time.sleep(0.4)  # one refresh of the live display
    text = out.getvalue()
    assert "fetching v3.2.0" in text and "calico/node" in text and "failed" in text
    assert text.endswith("\x1b[2K"), "the table is erased at the end (transient): the summary does not repeat it"


def result(name: str, status: str, error: str | None = None, files: tuple[str, ...] = ()) -> Result:
    records = tuple(FileRecord(path=p, sha256="0" * 64, size=1) for p in files)
    return Result(artifact=name, status=status, error=error, output=ArtifactOutput(files=records))  # type: ignore[arg-type]


def test_the_summary_groups_what_was_not_started_and_names_each_failure_once(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    monkeypatch.chdir(tmp_path)
    log = tmp_path / ".build/logs/v1/felix.log"
    log.parent.mkdir(parents=True)
    log.write_text(f"cache key {'ab' * 32}\nbuilding: no earlier build recorded\nstaged a -> b\n"
                   "$ make felix\nerror: felix.go:3: undefined: x\nFAILED: felix: command failed with exit code 2: "
                   "make felix\n    error: felix.go:3: undefined: x\n")
    stopped = "not started: stopped after felix failed (use --keep-going to build what does not depend on it)"
    results = {
        "felix": Result(artifact="felix", status="failed", error="felix: command failed with exit code 2: make felix",
                        log=log),
        "calicoctl": result("calicoctl", "ok", files=("bin/calicoctl",)),
        **{name: result(name, "not-started", stopped) for name in ("a", "b", "c")},
    }
    outcome = SimpleNamespace(results=results, failed=[results["felix"]], release_dir=tmp_path / "dist/v1",
                              record=SimpleNamespace(release="v1", status="failed"))
    text = summary(outcome)  # type: ignore[arg-type]
    assert "3 artifacts not started, stopped after felix failed" in text and ": a, b, c" in text
    assert text.count("not started") == 1
    assert "felix: felix:" not in text and "FAILED felix: command failed with exit code 2: make felix" in text
    assert text.count("undefined: x") == 1, "the failed command's output is shown once"
    assert "$ make felix" in text and "cache key" not in text and "staged" not in text, "the command's, not ours"
    assert "full log: .build/logs/v1/felix.log" in text, "a path that works from the current directory"


def test_fetch_shows_live_progress_on_a_terminal(tmp_path: Path) -> None:
    """The real console script on a pseudo-terminal: the fetch phase is not silent."""
    from orchestrator.sandbox import create_demo

    manifest = create_demo(tmp_path / "demo")
    pid, fd = pty.fork()
    if pid == 0:  # the child: the orchestrator, its stdout and stderr on the terminal
        os.chdir(tmp_path)
        os.execve(str(BIN / "orchestrator"), ["orchestrator", "fetch", "--all", "-m", str(manifest)],
                  {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "TERM": "xterm", "COLUMNS": "120"})
    output = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    text = output.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "fetching" in text and "felix" in text and "kube-controllers" in text
    assert "\x1b[" in text, "a live display, redrawn in place"


def test_json_results_are_one_document_on_stdout(tmp_path: Path) -> None:
    from orchestrator.sandbox import create_demo

    manifest = create_demo(tmp_path / "demo")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    fetched = run_cli("fetch", "felix", "--json", "-m", str(manifest), program="orchestrator", cwd=tmp_path, env=env)
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(fetched.stdout)["repos"]["felix"]["commit"]
    built = run_cli("demo", "--json", program="orchestrator", cwd=tmp_path, env=env)
    data = json.loads(built.stdout)  # the whole of stdout is the document
    assert data["artifacts"]["felix"]["status"] == "ok" and data["artifacts"]["felix"]["files"][0]["path"]
    assert data["artifacts"]["calico/node"]["status"] == "skipped"
    plan = run_cli("build", "--all", "--dry-run", "--json", "-m", str(manifest), program="orchestrator",
                   cwd=tmp_path, env=env)
    assert [step["artifact"] for step in json.loads(plan.stdout)["steps"]][:2] == ["felix", "calicoctl"]
    verified = run_cli("verify", "--offline", "--json", "--release-dir", "dist/v3.2.0-demo", program="orchestrator",
                       cwd=tmp_path, env=env)
    assert verified.returncode == 1, "images were not built: the release is incomplete"
    report = json.loads(verified.stdout)
    assert report["ok"] is False and any(check["ok"] is False for check in report["checks"])


def test_quiet_prints_only_the_result(tmp_path: Path) -> None:
    from orchestrator.sandbox import create_demo

    manifest = create_demo(tmp_path / "demo")
    result = run_cli("build", "felix", "--quiet", "-m", str(manifest), program="orchestrator", cwd=tmp_path,
                     env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.strip().startswith("release v3.2.0-demo: ok ->")


def test_a_bad_progress_mode_is_refused() -> None:
    result = subprocess.run([str(BIN / "orchestrator"), "build", "--all", "--progress", "fancy"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "--progress 'fancy' is not a progress mode" in result.stderr


def test_a_failed_command_is_named_as_the_manifest_wrote_it_without_shell_quoting(tmp_path: Path) -> None:
    from orchestrator.sandbox import create_demo

    manifest = create_demo(tmp_path / "demo")
    text = manifest.read_text().replace("command: sh build.sh", "command: echo 'felix is broken' >&2; exit 3", 1)
    broken = tmp_path / "broken.yaml"
    broken.write_text(text)
    result = run_cli("build", "felix", "-m", str(broken), program="orchestrator", cwd=tmp_path,
                     env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert result.returncode == 1
    assert "FAILED felix: command `echo 'felix is broken' >&2; exit 3` failed with exit code 3" in result.stdout
    assert "'\"'\"'" not in result.stdout and "sh -c" not in result.stdout
    assert result.stdout.count("felix is broken\n") == 1, "the command's output, once"
