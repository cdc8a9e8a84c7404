"""Real orchestrator processes to interrupt, and ways to see what outlived them.

``make_workspace`` makes a one-repository release whose binary artifacts run host
commands of the test's choosing (``sh`` scripts); ``Workspace.start`` runs the real
``orchestrator`` (or ``invoke``) executable in a session of its own, as a terminal runs
a foreground job, so that ``Running.signal`` reaches it the way Ctrl-C does: through
``os.killpg``. Commands mark their processes with a unique word in their command
line, which ``alive`` finds with pgrep.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import textwrap
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.cli import BIN, ROOT
from tests.helpers.gitrepos import git

RELEASE = "v1"


def marker() -> str:
    """A word that appears in no other process's command line."""
    return f"mark{uuid.uuid4().hex[:12]}"


def alive(word: str) -> list[int]:
    """Live processes whose command line holds ``word`` (zombies excluded)."""
    found = subprocess.run(["pgrep", "-f", word], capture_output=True, text=True).stdout.split()
    pids = []
    for pid in map(int, found):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            pids.append(pid)
    return pids


def kill_marked(word: str) -> None:
    """Cleanup for a test that failed: nothing it started may outlive it."""
    for pid in alive(word):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def wait_until(check: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    """Poll ``check`` until it is true; the timeout is a safety bound, not a measurement."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class Running:
    """An orchestrator process in its own session; its output goes to files."""

    process: subprocess.Popen[bytes]
    out: Path
    err: Path

    def signal(self, sig: int = signal.SIGINT) -> None:
        os.killpg(self.process.pid, sig)  # the whole foreground group, as a terminal does

    def finish(self, timeout: float = 90.0) -> tuple[int, str, str]:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError(f"the orchestrator did not exit; stderr so far:\n{self.err.read_text()}") from None
        return code, self.out.read_text(), self.err.read_text()


@dataclass
class Workspace:
    root: Path
    path: Path
    manifest: Path
    env: dict[str, str] = field(default_factory=dict)

    def args(self, *args: str) -> list[str]:
        return [*args, "--manifest", str(self.manifest), "--workspace", str(self.path)]

    def start(self, *args: str, program: str = "orchestrator", env: Mapping[str, str] | None = None,
              name: str | None = None) -> Running:
        name = name or uuid.uuid4().hex[:8]
        out, err = self.root / f"{name}.out", self.root / f"{name}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen([str(BIN / program), *args], cwd=ROOT if program == "invoke" else self.root,
                                       env={**self.env, **(env or {})}, stdin=subprocess.DEVNULL, stdout=stdout,
                                       stderr=stderr, start_new_session=True)
        return Running(process, out, err)

    def run(self, *args: str, program: str = "orchestrator", timeout: float = 120.0) -> tuple[int, str, str]:
        return self.start(*args, program=program).finish(timeout)

    def rewrite(self, commands: Mapping[str, str], *, extra: Mapping[str, str] | None = None) -> None:
        """The same repository and workspace, other commands."""
        write_manifest(self.manifest, self.root / "upstream", commands, extra=extra)

    def log(self, artifact: str) -> str:
        path = self.path / ".build" / "logs" / RELEASE / f"{artifact}.log"
        return path.read_text() if path.exists() else ""


def make_workspace(root: Path, commands: Mapping[str, str], *, extra: Mapping[str, str] | None = None,
                   env: Mapping[str, str] | None = None) -> Workspace:
    """A git repository, a manifest (see ``write_manifest``) and an empty workspace, all under ``root``."""
    upstream = root / "upstream"
    upstream.mkdir(parents=True)
    (upstream / "README").write_text("fixture\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "fixture"]):
        git(*args, cwd=upstream)
    manifest = root / "manifest.yaml"
    write_manifest(manifest, upstream, commands, extra=extra)
    workspace = root / "ws"
    workspace.mkdir()
    base = {**os.environ, "XDG_CACHE_HOME": str(root / "cache"), "HOME": str(root)}
    return Workspace(root=root, path=workspace, manifest=manifest, env={**base, **(env or {})})


def write_manifest(path: Path, upstream: Path, commands: Mapping[str, str], *,
                   extra: Mapping[str, str] | None = None) -> None:
    """One binary artifact per command, with output ``out/<name>``; ``extra`` adds YAML
    lines to an artifact (``builder: ...``)."""
    artifacts = ""
    for name, command in commands.items():
        artifacts += f"      {name}:\n        type: binary\n        command: |\n"
        artifacts += textwrap.indent(textwrap.dedent(command).strip() + "\n", " " * 10)
        artifacts += f"        outputs: [out/{name}]\n"
        artifacts += "".join(f"        {line}\n" for line in (extra or {}).get(name, "").splitlines())
    path.write_text(f"schema: 1\nrelease: {RELEASE}\ndefaults: {{network: none}}\nrepos:\n  app:\n"
                    f"    url: file://{upstream}\n    ref: main\n    artifacts:\n{artifacts}")
