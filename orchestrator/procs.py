"""Processes the orchestrator starts, found again even after the run that started them died.

Every child process (git, host build commands, and everything they start) carries the
run's token in its environment (``ORCHESTRATOR_RUN_TOKEN``); a build command also
carries its own step token. Environments are inherited and survive re-parenting, so
``find`` can list a dead run's orphans by reading ``/proc/<pid>/environ``, and ``kill``
can stop them before a later run touches what they were writing.

An orchestrator started by a build command of another one (a nested run) gives its own
children an environment of its own making, in sessions of their own: they also carry the
tokens the nested run inherited (``ORCHESTRATOR_ENCLOSING_TOKENS``), and ``find`` matches
those too, so the outer run still finds what the inner one started.

A lock holder is recorded as an ``Owner`` (pid, the pid's start time, token, command):
the start time tells a live holder from a new process that reuses its pid.

Linux only (``/proc``); elsewhere ``find`` returns nothing and owners always look alive.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

RUN_VARIABLE = "ORCHESTRATOR_RUN_TOKEN"
STEP_VARIABLE = "ORCHESTRATOR_STEP_TOKEN"
ENCLOSING_VARIABLE = "ORCHESTRATOR_ENCLOSING_TOKENS"  # the runs and steps this run runs inside
_TOKEN = re.compile(r"[0-9a-f]{32}")
_MAX_ENCLOSING = 64  # nesting is shallow; the caller's environment is bounded all the same
_PROC = Path("/proc")
_token: str | None = None


def run_token() -> str:
    """This process's token: random, made once, never inherited from the caller."""
    global _token
    if _token is None:
        _token = secrets.token_hex(16)
    return _token


def new_token() -> str:
    """A fresh token, e.g. for one build step."""
    return secrets.token_hex(16)


def child_environment() -> dict[str, str]:
    """The variables every child process of this run carries."""
    enclosing = _enclosing()
    return {RUN_VARIABLE: run_token(), **({ENCLOSING_VARIABLE: " ".join(enclosing)} if enclosing else {})}


def _enclosing() -> list[str]:
    """The tokens of the runs and steps this process runs inside, when a build command
    started it (the tokens it inherited, and those they inherited)."""
    inherited = " ".join(os.environ.get(name, "") for name in (ENCLOSING_VARIABLE, RUN_VARIABLE, STEP_VARIABLE))
    tokens = [token for token in inherited.split() if _TOKEN.fullmatch(token)]
    return list(dict.fromkeys(tokens))[-_MAX_ENCLOSING:]


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), or None when there is no such process."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and ')': fields after the last ')' are fixed.
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[19]) if len(fields) > 19 else None


def _state(pid: int) -> str | None:
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split(" ", 1)[0]


def alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie."""
    state = _state(pid)
    return state is not None and state not in ("Z", "X")


def find(variable: str, value: str) -> list[int]:
    """Live processes whose environment has ``variable=value``, or ``value`` among the
    enclosing tokens of a nested run's processes (never this process)."""
    if not _PROC.is_dir():
        return []
    wanted = f"{variable}={value}".encode()
    enclosing = f"{ENCLOSING_VARIABLE}=".encode()
    found: list[int] = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or another user's
            continue
        variables = environ.split(b"\0")
        if (wanted in variables or any(v.startswith(enclosing) and value.encode() in v[len(enclosing):].split()
                                       for v in variables)) and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def kill(variable: str, value: str, *, wait: float = 5.0) -> list[int]:
    """SIGKILL every process carrying ``variable=value``; wait (bounded) until they are gone.

    Repeats the scan until nothing is left, so that a child forked while its parent was
    being killed is caught too. Returns the pids killed.
    """
    killed: list[int] = []
    deadline = time.monotonic() + wait
    while True:
        pids = find(variable, value)
        if not pids:
            return killed
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            if pid not in killed:
                killed.append(pid)
        if time.monotonic() >= deadline:
            return killed
        time.sleep(0.02)


@dataclass(frozen=True, slots=True, kw_only=True)
class Owner:
    """Who holds a lock: enough to tell whether it is still alive, and to name it."""

    pid: int
    started: int | None  # start_time(pid) when it took the lock
    token: str
    command: str
    since: float  # unix time

    @property
    def alive(self) -> bool:
        if not _PROC.is_dir():
            return True
        return alive(self.pid) and start_time(self.pid) == self.started

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"pid {self.pid} ({self.command}), since {when}"


def me() -> Owner:
    """This process as a lock owner."""
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python"
    return Owner(pid=os.getpid(), started=start_time(os.getpid()), token=run_token(), command=command[:200],
                 since=time.time())


def write_owner(path: Path, owner: Owner) -> None:
    """Record ``owner`` at ``path`` (a small JSON file next to the lock it describes)."""
    from orchestrator.fileops import replace_file

    replace_file(path, (json.dumps(asdict(owner)) + "\n").encode())


def read_owner(path: Path) -> Owner | None:
    """The owner recorded at ``path``; None when there is none, or it is unreadable, not a
    regular file (a planted FIFO or /dev/zero is refused unread) or too big to be one."""
    from orchestrator.fileops import read_limited

    try:
        data = json.loads(read_limited(path, limit=65536))
        return Owner(pid=int(data["pid"]), started=data.get("started"), token=str(data["token"]),
                     command=str(data.get("command", "?")), since=float(data.get("since", 0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None
