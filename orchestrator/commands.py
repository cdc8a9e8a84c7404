"""Host build commands: the one door to them, and how they are stopped, all of them.

Each command runs in its own session and process group with an explicit environment
that carries the run's token and a token of its own (``orchestrator.procs``), and,
when the workspace has one, the docker shim first on PATH, which labels the containers
it starts with the same tokens (``orchestrator.shim``).

A step ends when its leader (the process started here) exits. Whatever it left behind
is then killed: the rest of its process group, anything carrying its step token (a
child that called setsid left the group, not its environment), and the containers it
started. Until then the leader stays unreaped, a zombie, so that its pid, which is also
the group's id, cannot be reused by a stranger we would signal. Output is read until
the leader exits and the rest is gone, so a background child holding the pipe open
cannot hang the build.

``cancel_all`` is the graceful stop of a first Ctrl-C: SIGTERM to everything, then
SIGKILL to everything GRACE_SECONDS later, whatever the leaders did. ``kill_all`` is
the stop of a second one: SIGKILL at once.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from orchestrator import procs
from orchestrator.errors import BuildError, OrchestratorError, TimedOut, tail
from orchestrator.model import command_text
from orchestrator.shim import STEP_LABEL, Shim

# The only variables a build command inherits from the caller: enough to find tools,
# reach Docker and proxies; nothing like CONTAINER_NAME or GO_BUILD_VER that
# Makefiles read and that would make the build depend on who runs it.
PASSTHROUGH = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR", "TERM",
    "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "SSH_AUTH_SOCK",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
)
GRACE_SECONDS = 3.0  # SIGTERM, then SIGKILL: long enough for make to clean up, short enough to wait for
_POLL_SECONDS = 0.1
_GONE_SECONDS = 5.0  # how long SIGKILLed processes get to disappear from /proc
_DRAIN_SECONDS = 2.0  # output still in the pipe once everything of the step is dead
_PROC = Path("/proc")


class ContainerControl(Protocol):
    """What stops the containers a step started (the Engine)."""

    def stop_labelled(self, label: str, value: str) -> list[str]: ...


class CommandRunner:
    """The one door to host build commands; tracks them so that Ctrl-C can stop them all.

    ``shim`` puts the docker shim on every command's PATH; ``containers`` gives what
    stops the containers a step started (asked only once a step has used docker).
    """

    def __init__(self, *, shim: Shim | None = None, containers: Callable[[], ContainerControl] | None = None,
                 grace: float = GRACE_SECONDS) -> None:
        self._lock = threading.RLock()  # re-entrant: kill_all runs in a signal handler, maybe on a holder
        self._running: set[_Step] = set()
        self._shim = shim
        self._containers = containers
        self.grace = grace
        self.cancelled = threading.Event()
        self._stopped = threading.Event()  # cancel_all or kill_all has finished with every step

    def run(self, argv: list[str], *, cwd: Path, env: Mapping[str, str], log: Callable[[str], None],
            name: str, shown: str | None = None, deadline: float | None = None) -> None:
        """Run ``argv`` in ``cwd`` with exactly ``env``, each output line to ``log``; BuildError
        when it fails, naming the command as ``shown`` (as the manifest wrote it) or argv.

        ``deadline`` (a ``time.monotonic()`` value): past it the command is stopped as Ctrl-C
        stops it (SIGTERM to all of it, SIGKILL after the grace) and TimedOut is raised."""
        started = time.monotonic()
        token = procs.new_token()
        full = {**env, **procs.child_environment(), procs.STEP_VARIABLE: token}
        if self._shim is not None:
            full["PATH"] = self._shim.path_for(env.get("PATH"))
        with self._lock:  # so that cancel_all either sees this step or it never starts
            if self.cancelled.is_set():
                raise BuildError(f"{name}: cancelled before it started")
            try:
                proc = subprocess.Popen(argv, cwd=cwd, env=full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as e:
                raise BuildError(f"{name}: cannot run {argv[0]!r}: {e.strerror}") from e
            step = _Step(proc, token)
            self._running.add(step)
        out = _Lines(log)
        try:
            code = self._supervise(step, out, deadline)
        finally:
            step.close()
            with self._lock:
                self._running.discard(step)
        if self.cancelled.is_set():
            raise BuildError(f"{name}: stopped (interrupted)")
        shown = _one_line(shown or command_text(tuple(argv)))
        if step.timed_out:
            raise TimedOut(f"{name}: command `{shown}` timed out after "
                           f"{time.monotonic() - started:.0f}s and was stopped\n" + tail("\n".join(out.lines)),
                           hint="raise the artifact's `timeout:` (or defaults.timeout), or find out why it hangs")
        if code != 0:
            raise BuildError(
                f"{name}: command `{shown}` failed with exit code {code}\n"
                + tail("\n".join(out.lines))
            )

    def _supervise(self, step: _Step, out: _Lines, deadline: float | None = None) -> int:
        """Follow the step until its leader exits; kill what it left; its exit code. Past
        ``deadline`` the step is stopped: SIGTERM, then SIGKILL after the grace."""
        assert step.proc.stdout is not None
        fd = step.proc.stdout.fileno()
        os.set_blocking(fd, False)
        exit_fd = _exit_fd(step.proc.pid)  # readable once the leader exits: no polling delay
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            if exit_fd is not None:
                selector.register(exit_fd, selectors.EVENT_READ)
            open_ = True
            patience: float | None = None
            kill_at: float | None = None
            try:
                while True:
                    now = time.monotonic()
                    if deadline is not None and not step.timed_out and now >= deadline:
                        step.timed_out = True
                        out.note(f"timed out: stopping the command (SIGKILL in {self.grace:g}s if it lingers)")
                        step.terminate()
                        kill_at = now + self.grace
                    if kill_at is not None and now >= kill_at:
                        step.kill()
                        kill_at = None
                    if step.leader_exited():
                        if exit_fd is not None and exit_fd in selector.get_map():
                            selector.unregister(exit_fd)
                        if not self.cancelled.is_set():
                            break
                        # Cancelled: cancel_all gives the rest of the group its grace; wait (bounded).
                        patience = patience or time.monotonic() + self.grace + _GONE_SECONDS + 30
                        if self._stopped.is_set() or time.monotonic() > patience:
                            break
                    if not selector.get_map():
                        time.sleep(_POLL_SECONDS)
                        continue
                    for key, _ in selector.select(_POLL_SECONDS):
                        if key.fd == fd and not out.read(fd):
                            selector.unregister(fd)
                            open_ = False
                left = step.kill()
                if left:
                    out.note(f"stopped {len(left)} process(es) the command left running: {', '.join(left)}")
                if open_ and not out.drain(fd, selector, _DRAIN_SECONDS):
                    out.note("a process outside the command's group still holds its output open; not waiting for it")
            finally:
                if exit_fd is not None:
                    os.close(exit_fd)
        code = step.reap()
        self._stop_containers(step)
        for note in step.notes:
            out.note(note)
        return code

    def _stop_containers(self, step: _Step) -> None:
        """Stop the containers a step started through the shim (none if it never ran docker)."""
        if self._shim is None or not self._shim.used(step.token) or self._containers is None:
            return
        try:
            stopped = self._containers().stop_labelled(STEP_LABEL, step.token)
        except OrchestratorError as e:
            step.notes.append(f"could not stop the containers the command started: {str(e).splitlines()[0]}")
            return
        self._shim.forget(step.token)
        if stopped:
            step.notes.append("stopped and removed the container(s) the command left: " + ", ".join(stopped))

    def cancel_all(self, grace: float | None = None) -> None:
        """Stop every running command: SIGTERM to all of it, SIGKILL to all of it ``grace`` seconds later.

        "All of it" is each command's process group, the processes carrying its step token,
        and the containers it started. Returns once everything is gone.
        """
        self.cancelled.set()
        with self._lock:
            steps = list(self._running)
        for step in steps:
            step.terminate()
        deadline = time.monotonic() + (self.grace if grace is None else grace)
        while any(step.busy() for step in steps) and time.monotonic() < deadline:
            time.sleep(_POLL_SECONDS)
        self._kill(steps)

    def kill_all(self) -> None:
        """Stop every running command at once: SIGKILL, no grace (a second Ctrl-C)."""
        self.cancelled.set()
        with self._lock:
            steps = list(self._running)
        self._kill(steps)

    def _kill(self, steps: list[_Step]) -> None:
        for step in steps:
            left = step.kill()
            if left:
                step.notes.append(f"killed {len(left)} process(es) still running after SIGTERM: {', '.join(left)}")
            self._stop_containers(step)
        self._stopped.set()


def _one_line(command: str) -> str:
    """A command as one line of a message: a multi-line script shows its first line."""
    lines = command.strip().splitlines() or [""]
    return lines[0] + (f" ... ({len(lines)} lines)" if len(lines) > 1 else "")


class _Step:
    """One running command: its leader, whose pid is its process group's id, and its token.

    The group is signalled only while the leader is unreaped: until then no other
    process can have its pid, hence its group id.
    """

    def __init__(self, proc: subprocess.Popen[bytes], token: str) -> None:
        self.proc = proc
        self.token = token
        self.notes: list[str] = []  # what was stopped, for the step's log
        self.timed_out = False
        self._lock = threading.RLock()
        self._reaped = False

    def signal(self, sig: int) -> None:
        with self._lock:
            if not self._reaped:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, sig)

    def terminate(self) -> None:
        """SIGTERM to the group and to the step's processes that left it."""
        self.signal(signal.SIGTERM)
        for pid in procs.find(procs.STEP_VARIABLE, self.token):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)

    def leader_exited(self) -> bool:
        with self._lock:
            if self._reaped:
                return True
            try:
                # WNOWAIT: look, but leave the zombie, so that the group id stays ours.
                return os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
            except ChildProcessError:
                return True

    def busy(self) -> bool:
        """Anything of the step still running: the leader, its group, or a process with its token."""
        return (not self.leader_exited() or bool(_group_members(self.proc.pid))
                or bool(procs.find(procs.STEP_VARIABLE, self.token)))

    def kill(self) -> list[str]:
        """SIGKILL whatever is left of the step (not the leader's zombie); describes what was left."""
        left = sorted(set(_group_members(self.proc.pid)) | set(procs.find(procs.STEP_VARIABLE, self.token)))
        if not left:
            return []
        described = [f"{pid} ({_name(pid)})" for pid in left]
        self.signal(signal.SIGKILL)
        procs.kill(procs.STEP_VARIABLE, self.token, wait=_GONE_SECONDS)
        deadline = time.monotonic() + _GONE_SECONDS
        while _group_members(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        return described

    def reap(self) -> int:
        with self._lock:
            code = self.proc.wait()
            self._reaped = True
            return code

    def close(self) -> None:
        """After an unexpected error too: nothing of the step survives, the leader is reaped, the pipe closed."""
        if not self._reaped:
            self.signal(signal.SIGKILL)
            self.kill()
            self.reap()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class _Lines:
    """Bytes from the pipe -> complete lines for ``log``; keeps the last 200 for error messages."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self._log = log
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._partial = ""
        self.lines: deque[str] = deque(maxlen=200)

    def read(self, fd: int) -> bool:
        """Read what is there; False at end of file."""
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return True
        if not data:
            self._feed(self._decoder.decode(b"", final=True))
            if self._partial:
                self._emit(self._partial)
                self._partial = ""
            return False
        self._feed(self._decoder.decode(data))
        return True

    def drain(self, fd: int, selector: selectors.BaseSelector, seconds: float) -> bool:
        """Read to the end of file, for at most ``seconds``; True when it was reached."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if selector.select(_POLL_SECONDS) and not self.read(fd):
                return True
        return False

    def note(self, text: str) -> None:
        self._log(f"[orchestrator] {text}")

    def _feed(self, text: str) -> None:
        *complete, self._partial = (self._partial + text).split("\n")
        for line in complete:
            self._emit(line)

    def _emit(self, line: str) -> None:
        self.lines.append(line)
        self._log(line)


def _exit_fd(pid: int) -> int | None:
    """A pidfd for ``pid`` (Linux 5.3+), readable once it exits; None where there is none."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``; empty without /proc."""
    found: list[int] = []
    if not _PROC.is_dir():
        return found
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces and ')'): state, ppid, pgrp, ...
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def _name(pid: int) -> str:
    try:
        return (_PROC / str(pid) / "comm").read_text().strip() or "?"
    except OSError:
        return "?"
