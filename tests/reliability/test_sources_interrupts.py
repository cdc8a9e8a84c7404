"""Ctrl-C and kill -9 during a fetch, through the real CLI, against a remote that stalls.

Ctrl-C must stop at once: running git processes killed, nothing retried, exit 130.
A run killed with SIGKILL leaves git processes behind; the next run that takes their
lock stops them before it touches what they were writing, and succeeds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import gitcmd, procs
from orchestrator.errors import Interrupted
from orchestrator.gitfailure import GitKilledError
from orchestrator.sources import FetchFailed, FetchOptions, fetch, mirror_name
from tests.helpers.gitrepos import RepoSpec, Upstream, build_upstream, git
from tests.reliability.sources_helpers import (
    StallingRemote,
    cli_env,
    run_token_of,
    stalling_remote,
    start_cli,
    wait_for,
    write_manifest,
)
from tests.sources.conftest import Events

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    return build_upstream(tmp_path_factory.mktemp("upstream"))


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[StallingRemote]:
    remote = stalling_remote(tmp_path)
    tokens: list[str] = []
    yield remote
    # Whatever the outcome, nothing a test started may outlive it.
    for pid in remote.relays():
        with contextlib.suppress(OSError, AssertionError):
            tokens.append(run_token_of(pid))
    for token in tokens:
        procs.kill(procs.RUN_VARIABLE, token)
    for pid in remote.relays():
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def test_ctrl_c_during_a_fetch_kills_git_retries_nothing_and_exits_130(
    upstream: Upstream, remote: StallingRemote, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "manifest.yaml", {
        "felix": (remote.url(upstream.path), "v1.0"),
        "calicoctl": (remote.url(upstream.path), "v1.1"),
    })
    remote.stall()
    workspace = tmp_path / "ws"
    env = cli_env(workspace, GIT_SSH_COMMAND=str(remote.ssh))
    cli = start_cli(workspace, "fetch", "--all", "--jobs", "2", "--manifest", str(manifest), env=env)
    try:
        wait_for(remote.stalled, what="a git fetch stalled on the remote")
        token = run_token_of(remote.stalled()[0])
        assert procs.find(procs.RUN_VARIABLE, token)

        os.killpg(cli.pid, signal.SIGINT)  # what a terminal sends to its foreground job
        _, err = cli.communicate(timeout=60)  # a safety bound: the point is that it returns
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(cli.pid, signal.SIGKILL)
        cli.wait()

    assert cli.returncode == 130, err
    assert "interrupted" in err
    assert "retrying" not in err
    assert "cannot reach" not in err
    assert "Traceback" not in err
    assert procs.find(procs.RUN_VARIABLE, token) == []
    assert subprocess.run(["pgrep", "-f", str(remote.ssh)], capture_output=True).stdout == b""


def test_the_run_after_a_kill_9_during_a_fetch_stops_the_orphans_and_succeeds(
    upstream: Upstream, remote: StallingRemote, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "manifest.yaml", {"felix": (remote.url(upstream.path), "v1.0")})
    remote.stall()
    workspace = tmp_path / "ws"
    env = cli_env(workspace, GIT_SSH_COMMAND=str(remote.ssh))
    cli = start_cli(workspace, "fetch", "--all", "--manifest", str(manifest), env=env)
    try:
        wait_for(remote.stalled, what="a git fetch stalled on the remote")
        dead = run_token_of(remote.stalled()[0])
    finally:
        cli.kill()  # SIGKILL to the orchestrator alone, as the OOM killer would
        cli.communicate()
    mirror = workspace / "cache" / "orchestrator" / "git" / mirror_name(remote.url(upstream.path))
    orphans = procs.find(procs.RUN_VARIABLE, dead)
    assert orphans, "the killed run's git should still be running: the fault this test is about"
    assert (mirror / "shallow.lock").exists(), "the orphaned git holds its lock in the mirror"

    remote.stall(False)
    again = start_cli(workspace, "fetch", "--all", "--manifest", str(manifest), env=env)
    out, err = again.communicate(timeout=120)

    assert again.returncode == 0, err
    assert procs.find(procs.RUN_VARIABLE, dead) == []
    # The workspace lock's clean-up finds the dead run first (its token is in the lock's owner
    # record); in another workspace sharing the cache, the mirror lock's record would.
    assert "stopped" in err and ("left by a killed run" in err or "a run that died holding this workspace" in err)
    assert git("rev-parse", "HEAD", cwd=workspace / ".build" / "src" / "felix") == upstream.commits["c2"]
    assert list(mirror.glob("*.lock")) == []


# Library-level checks of the same guarantees: faster, and each aims at one rule.

def _options(tmp_path: Path, **changes: object) -> FetchOptions:
    return dataclasses.replace(
        FetchOptions(cache_dir=tmp_path / "cache", checkout_dir=tmp_path / "src", backoff=0.0), **changes)


def test_a_git_killed_by_a_signal_from_outside_is_not_retried_as_a_network_failure(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An ssh that kills the git that started it, as the OOM killer or a stray kill would.
    ssh = tmp_path / "killer-ssh"
    ssh.write_text("#!/bin/sh\nkill -9 $PPID\nsleep 5\n")
    ssh.chmod(0o755)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(ssh))
    events = Events()

    with pytest.raises(FetchFailed) as caught:
        fetch([RepoSpec(name="felix", url=f"ssh://fixture.invalid{upstream.path}", ref="v1.0")],
              _options(tmp_path, retries=2), on_event=events)

    error = caught.value.failures["felix"]
    assert isinstance(error, GitKilledError)
    assert str(error).startswith("felix: git was killed while fetching from ssh://fixture.invalid")
    assert "SIGKILL" in str(error)
    assert not [m for m in events.messages() if m.startswith("retrying")]


@pytest.mark.parametrize(("status", "stderr", "kind"), [
    (-2, "", "killed"),
    (-9, "fatal: the remote end hung up unexpectedly", "killed"),
    (130, "", "killed"),
    (137, "", "killed"),
    (143, "", "killed"),
    (128, "error: index-pack died of signal 9\nfatal: index-pack failed", "killed"),
    (128, "fatal: the remote end hung up unexpectedly", "network"),
    (129, "usage: git fetch", "network"),
    (128, "fatal: write error: No space left on device", "no-space"),
    (128, "error: unable to create temporary file: Disk quota exceeded", "no-space"),
    (128, "fatal: sha1 file '.git/objects/pack/tmp_pack_x' write error. Out of diskspace", "no-space"),
    (128, "fatal: loose object 7f9b (stored in ./objects/7f/9b) is corrupt", "corrupt"),
    (128, "error: packfile ./objects/pack/pack-1.pack does not match index\nfatal: not our ref 7f9b", "corrupt"),
    (128, "remote: aborting due to possible repository corruption on the remote side.", "corrupt"),
])
def test_failures_are_classified_by_status_first_then_by_gits_words(status: int, stderr: str, kind: str) -> None:
    assert gitcmd.classify(stderr, status) == kind


def test_a_cancel_during_a_retry_backoff_ends_the_wait_and_starts_no_new_git(tmp_path: Path) -> None:
    events = Events()

    def on_event(name: str, message: str) -> None:
        events(name, message)
        if message.startswith("retrying"):
            gitcmd.cancel()  # as Ctrl-C would, while the worker waits to retry

    started = []
    real_run = gitcmd.run

    def counting(args: list[str], **kwargs: object) -> gitcmd.GitResult:
        started.append(args[0])
        return real_run(args, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gitcmd, "run", counting)
        with pytest.raises(Interrupted):
            fetch([RepoSpec(name="felix", url="https://127.0.0.1:1/felix.git", ref="v1.0")],
                  _options(tmp_path, retries=5, backoff=600.0), on_event=on_event)
        with pytest.raises(gitcmd.Cancelled):
            real_run(["version"])  # no git starts once cancelled
    gitcmd.reset_cancellation()

    retries = [m for m in events.messages() if m.startswith("retrying")]
    assert len(retries) == 1 and re.match(r"retrying in [0-9.]+s \(try 2 of 6\)", retries[0])
    assert 300 <= float(retries[0].split()[2].rstrip("s")) <= 600
    assert started.count("ls-remote") == 1


def _orphan(token: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "300"], env={**os.environ, procs.RUN_VARIABLE: token},
                            start_new_session=True)


def test_a_lock_left_by_a_dead_run_first_stops_that_runs_orphans(upstream: Upstream, tmp_path: Path) -> None:
    options = _options(tmp_path)
    mirror = options.cache_dir / mirror_name(upstream.url)
    token = procs.new_token()
    orphan = _orphan(token)
    dead = subprocess.Popen(["true"])
    dead.wait()
    record = mirror.with_name(mirror.name + ".lock.owner")
    record.parent.mkdir(parents=True)
    procs.write_owner(record, procs.Owner(pid=dead.pid, started=1, token=token, command="orchestrator fetch",
                                          since=0.0))
    events = Events()
    try:
        checkout = fetch([RepoSpec(name="felix", url=upstream.url, ref="v1.0")], options, on_event=events)
        stopped = orphan.poll()
    finally:
        orphan.kill()
        orphan.wait()

    assert checkout["felix"].commit == upstream.commits["c2"]
    assert stopped == -signal.SIGKILL
    assert any(m.startswith("stopped 1 process(es) left by a killed run (pid ") for m in events.messages())
    assert not record.exists()


def test_a_lock_record_naming_a_live_process_never_gets_its_processes_killed(
    upstream: Upstream, tmp_path: Path
) -> None:
    options = _options(tmp_path)
    mirror = options.cache_dir / mirror_name(upstream.url)
    token = procs.new_token()
    live = _orphan(token)
    record = mirror.with_name(mirror.name + ".lock.owner")
    record.parent.mkdir(parents=True)
    procs.write_owner(record, procs.Owner(pid=live.pid, started=procs.start_time(live.pid), token=token,
                                          command="sleep", since=0.0))
    try:
        fetch([RepoSpec(name="felix", url=upstream.url, ref="v1.0")], options)
        assert live.poll() is None
    finally:
        live.kill()
        live.wait()


def test_ctrl_c_during_a_builds_lazy_checkout_stops_its_git_and_exits_130(
    upstream: Upstream, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    manifest = write_manifest(tmp_path / "manifest.yaml", {"felix": (upstream.url, "v1.0")})
    env = cli_env(workspace)
    first = start_cli(workspace, "build", "--all", "--manifest", str(manifest), env=env)
    assert first.wait(timeout=120) == 0, first.communicate()[1]
    # A blob of the mirror that blocks whoever opens it: the checkout's fetch from the
    # mirror hangs in upload-pack, as a very large or slow repository would.
    mirror = workspace / "cache" / "orchestrator" / "git" / mirror_name(upstream.url)
    blob = git("rev-parse", f"{upstream.commits['c2']}:VERSION", git_dir=mirror)
    loose = mirror / "objects" / blob[:2] / blob[2:]
    loose.unlink()
    os.mkfifo(loose)
    subprocess.run(["rm", "-rf", str(workspace / ".build" / "src")], check=True)

    cli = start_cli(workspace, "build", "--all", "--force", "--manifest", str(manifest), env=env)
    token = ""
    try:
        def stuck_on_the_blob() -> bool:
            nonlocal token
            for pid in _working_in(mirror):
                with contextlib.suppress(OSError, AssertionError):
                    token = run_token_of(pid)
            return bool(token)

        wait_for(stuck_on_the_blob, what="a checkout's git blocked reading the mirror")
        os.killpg(cli.pid, signal.SIGINT)
        _, err = cli.communicate(timeout=60)  # a safety bound: the point is that it returns
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(cli.pid, signal.SIGKILL)
        cli.wait()
        if token:
            procs.kill(procs.RUN_VARIABLE, token)
        loose.unlink()

    assert cli.returncode == 130, err
    assert "Traceback" not in err
    assert procs.find(procs.RUN_VARIABLE, token) == []


def _working_in(directory: Path) -> list[int]:
    """Processes whose working directory is ``directory`` (upload-pack works in the repository it serves)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "cwd") == str(directory):
                    found.append(int(entry.name))
    return found


@pytest.mark.parametrize("planted", ["symlink to /dev/zero", "fifo", "directory"])
def test_a_lock_record_that_is_no_small_file_is_removed_unread(
    upstream: Upstream, tmp_path: Path, planted: str
) -> None:
    options = _options(tmp_path)
    mirror = options.cache_dir / mirror_name(upstream.url)
    record = mirror.with_name(mirror.name + ".lock.owner")
    record.parent.mkdir(parents=True)
    if planted == "fifo":
        os.mkfifo(record)
    elif planted == "directory":
        (record / "x").mkdir(parents=True)
    else:
        record.symlink_to("/dev/zero")

    checkout = fetch([RepoSpec(name="felix", url=upstream.url, ref="v1.0")], options)

    assert checkout["felix"].commit == upstream.commits["c2"]
    assert not os.path.lexists(record)


def test_git_dies_with_the_orchestrator_when_its_whole_process_group_is_killed(
    upstream: Upstream, remote: StallingRemote, tmp_path: Path
) -> None:
    # What a CI timeout does. git has a session of its own (so that Ctrl-C is ours to
    # handle); the kernel's parent-death signal still takes it down with us.
    manifest = write_manifest(tmp_path / "manifest.yaml", {"felix": (remote.url(upstream.path), "v1.0")})
    remote.stall()
    workspace = tmp_path / "ws"
    cli = start_cli(workspace, "fetch", "--all", "--manifest", str(manifest),
                    env=cli_env(workspace, GIT_SSH_COMMAND=str(remote.ssh)))
    try:
        wait_for(remote.stalled, what="a git fetch stalled on the remote")
        token = run_token_of(remote.stalled()[0])
    finally:
        os.killpg(cli.pid, signal.SIGKILL)
        cli.communicate()

    def gits() -> list[int]:
        found = []
        for pid in procs.find(procs.RUN_VARIABLE, token):
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().startswith("git"):
                    found.append(pid)
        return found

    wait_for(lambda: not gits(), timeout=30, what="the killed run's git processes to die")


def test_a_cancel_ends_a_wait_for_a_lock_another_run_holds(upstream: Upstream, tmp_path: Path) -> None:
    from filelock import FileLock

    options = _options(tmp_path)
    mirror = options.cache_dir / mirror_name(upstream.url)
    mirror.parent.mkdir(parents=True)
    held = FileLock(mirror.with_name(mirror.name + ".lock"))
    held.acquire()
    waiting = threading.Event()
    outcome: list[BaseException] = []

    def on_event(name: str, message: str) -> None:
        if message.startswith("waiting for the lock"):
            waiting.set()

    def run() -> None:
        try:
            fetch([RepoSpec(name="felix", url=upstream.url, ref="v1.0")], options, on_event=on_event)
        except BaseException as error:  # noqa: BLE001  (handed to the test thread)
            outcome.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert waiting.wait(timeout=30)
        gitcmd.cancel()
        worker.join(timeout=30)  # a safety bound: without the cancel it would wait 30 minutes
    finally:
        held.release()
        worker.join()
        gitcmd.reset_cancellation()

    assert len(outcome) == 1 and isinstance(outcome[0], Interrupted)


def test_a_dead_holders_processes_that_cannot_be_stopped_block_the_lock_and_keep_its_record(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = _options(tmp_path)
    mirror = options.cache_dir / mirror_name(upstream.url)
    token = procs.new_token()
    orphan = _orphan(token)  # stands for a process we may not kill (another user's, in a shared cache)
    record = mirror.with_name(mirror.name + ".lock.owner")
    record.parent.mkdir(parents=True)
    procs.write_owner(record, procs.Owner(pid=orphan.pid + 10**6, started=1, token=token, command="fetch",
                                          since=0.0))
    repo = RepoSpec(name="felix", url=upstream.url, ref="v1.0")
    try:
        with monkeypatch.context() as patch:
            patch.setattr(procs, "kill", lambda *args, **kwargs: [])
            with pytest.raises(FetchFailed) as caught:
                fetch([repo], options)
        assert f"processes {orphan.pid} of a killed run" in str(caught.value)
        assert "hint: stop them" in str(caught.value)
        assert record.exists()
        assert fetch([repo], options)["felix"].commit == upstream.commits["c2"]
        assert orphan.wait(timeout=10) == -signal.SIGKILL
    finally:
        orphan.kill()
        orphan.wait()
