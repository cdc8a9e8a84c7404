"""Helpers for the git fault tests: a remote that stalls mid-fetch, small manifests,
the real CLI started in its own process group, and processes found by run token.

The stalling remote is a fake ssh client (see tests/helpers/gitrepos.py FAKE_SSH):
git runs it as ``GIT_SSH_COMMAND``; it runs the server side (``git-upload-pack``)
locally and relays both directions. While a ``stall`` file exists in its state
directory, it stops relaying just before the pack data, when the fetching git has
taken its lock files (``shallow.lock``) and waits for objects, and sleeps. Each relay
records its pid, so a test can read the run token from its environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator import procs
from tests.helpers.cli import BIN

RELAY = """#!{python}
import os, subprocess, sys, threading, time
from pathlib import Path

STATE = Path({state!r})
args = sys.argv[1:]
while args and args[0].startswith("-"):
    args = args[2:] if args[0] in ("-o", "-p", "-l", "-i") else args[1:]
command = " ".join(args[1:])  # args[0] is the host name
(STATE / "pids").mkdir(exist_ok=True)
(STATE / "pids" / str(os.getpid())).touch()
child = subprocess.Popen(["sh", "-c", command], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

def pump():
    while True:
        chunk = os.read(0, 65536)
        if not chunk:
            break
        child.stdin.write(chunk)
        child.stdin.flush()
    child.stdin.close()

threading.Thread(target=pump, daemon=True).start()
while True:
    chunk = os.read(child.stdout.fileno(), 65536)
    if not chunk:
        break
    if b"PACK" in chunk and (STATE / "stall").exists():
        os.write(1, chunk[: chunk.index(b"PACK")])
        (STATE / "stalled").mkdir(exist_ok=True)
        (STATE / "stalled" / str(os.getpid())).touch()
        time.sleep(3600)
    os.write(1, chunk)
sys.exit(child.wait())
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class StallingRemote:
    """A fake ssh that serves local repositories and can stall mid-fetch."""

    ssh: Path  # the program for GIT_SSH_COMMAND
    state: Path

    def stall(self, on: bool = True) -> None:
        if on:
            (self.state / "stall").touch()
        else:
            (self.state / "stall").unlink(missing_ok=True)

    def url(self, repo: Path) -> str:
        return f"ssh://fixture.invalid{repo}"

    def stalled(self) -> list[int]:
        """Pids of relays stalled right now."""
        folder = self.state / "stalled"
        return [int(p.name) for p in folder.iterdir()] if folder.is_dir() else []

    def relays(self) -> list[int]:
        folder = self.state / "pids"
        return [int(p.name) for p in folder.iterdir()] if folder.is_dir() else []


def stalling_remote(root: Path) -> StallingRemote:
    state = root / "ssh-state"
    state.mkdir(parents=True)
    ssh = root / "fake-ssh"
    ssh.write_text(RELAY.format(python=sys.executable, state=str(state)))
    ssh.chmod(0o755)
    return StallingRemote(ssh=ssh, state=state)


def write_manifest(path: Path, repos: dict[str, tuple[str, str]]) -> Path:
    """A manifest of repos, each with one source-archive artifact: name -> (url, ref)."""
    lines = ["schema: 1", "release: v1.0.0", "repos:"]
    for name, (url, ref) in repos.items():
        lines += [f"  {name}:", f"    url: {url}", f"    ref: {ref}", "    artifacts:",
                  f"      {name}-src: {{type: library}}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def cli_env(workspace: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "XDG_CACHE_HOME": str(workspace / "cache"), "HOME": str(workspace), **extra}


def start_cli(workspace: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """The `orchestrator` console script in its own process group (a terminal's job)."""
    workspace.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([str(BIN / "orchestrator"), *args, "--workspace", str(workspace)], cwd=workspace,
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def wait_for(condition: Callable[[], object], *, timeout: float = 60.0, what: str = "condition") -> None:
    """Poll ``condition`` until it is true; the timeout is only a safety bound."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def run_token_of(pid: int) -> str:
    """The orchestrator run token in the environment of process ``pid``."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    prefix = f"{procs.RUN_VARIABLE}=".encode()
    tokens = [entry[len(prefix):].decode() for entry in environ if entry.startswith(prefix)]
    assert tokens, f"process {pid} carries no run token"
    return tokens[0]
