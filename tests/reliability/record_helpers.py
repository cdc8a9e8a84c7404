"""Helpers for the release-record tests: a small real workspace built through the real
CLI, recipes that say when they are running and then wait, and the one invariant.

The invariant (DESIGN.md): at every instant, a release.json that says ``ok`` matches
the bytes next to it. ``record_lies`` checks it with nothing of the orchestrator's own
code: raw JSON and ``sha256sum -c``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.cli import BIN, ROOT, run_cli
from tests.helpers.gitrepos import build_upstream

# Each step writes a fresh output (nanosecond clock: a rebuild changes the bytes), says
# it is running by writing its shell's pid into <control>/<name>.ready, and waits while
# <control>/<name>.block exists.
RECIPE = ("mkdir -p out && date +%s%N > out/{name} && echo $$ > {control}/{name}.ready.tmp && "
          "mv {control}/{name}.ready.tmp {control}/{name}.ready && "
          "while [ -e {control}/{name}.block ]; do sleep 0.05; done")

MANIFEST = """\
schema: 1
release: r1
defaults: {{network: none}}
repos:
  app:
    url: {url}
    ref: v1.0
    commit: {commit}
    artifacts:
      first:
        type: binary
        command: "{first}"
        outputs: [out/first]
      second:
        type: binary
        requires: [first]
        command: "{second}"
        outputs: [out/second]
"""
LIBRARY = """\
      lib:
        type: library
        requires: [second]
"""


@dataclass(frozen=True)
class Workspace:
    root: Path  # --workspace
    manifest: Path
    control: Path  # ready and block files of the recipes

    @property
    def release_dir(self) -> Path:
        return self.root / "dist" / "r1"

    def args(self, *args: str) -> list[str]:
        """``args`` with this workspace, and its manifest unless ``args`` name another."""
        manifest = [] if "--manifest" in args else ["--manifest", str(self.manifest)]
        return [*args, *manifest, "--workspace", str(self.root)]

    def env(self) -> dict[str, str]:
        return {"XDG_CACHE_HOME": str(self.root / "cache"), "HOME": str(self.root)}

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``orchestrator ARGS --manifest M --workspace W``, to the end."""
        return run_cli(*self.args(*args), program="orchestrator", cwd=self.root, env=self.env(), timeout=timeout)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """The same, started in a process group of its own (as a shell starts a job), not waited for."""
        return subprocess.Popen([str(BIN / "orchestrator"), *self.args(*args)], cwd=self.root,
                                env={**os.environ, **self.env()}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)

    def block(self, name: str) -> None:
        (self.control / f"{name}.block").touch()

    def wait_ready(self, name: str, process: subprocess.Popen[str], timeout: float = 60) -> int:
        """The pid of step ``name``'s shell once it runs (its outputs written)."""
        ready = self.control / f"{name}.ready"
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if process.poll() is not None:
                out, err = process.communicate()
                raise AssertionError(f"the build ended before {name} ran: {process.returncode}\n{out}\n{err}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} did not start within {timeout}s")
            time.sleep(0.02)
        return int(ready.read_text())

    def release(self) -> None:
        """Unblock every recipe and forget which ran."""
        for path in self.control.iterdir():
            path.unlink()


def make_workspace(root: Path, *, first: str = "", second: str = "", library: bool = True) -> Workspace:
    """A workspace with the manifest above over a real upstream repository; ``first`` and
    ``second`` replace the blocking recipes of those steps; ``library`` adds ``lib``."""
    upstream = build_upstream(root / "upstream")
    control = root / "control"
    control.mkdir(parents=True)
    workspace = root / "ws"
    workspace.mkdir()
    manifest = root / "manifest.yaml"
    manifest.write_text(MANIFEST.format(
        url=upstream.url, commit=upstream.commits["c2"],
        first=first or RECIPE.format(name="first", control=control),
        second=second or RECIPE.format(name="second", control=control)) + (LIBRARY if library else ""))
    return Workspace(root=workspace, manifest=manifest, control=control)


@contextlib.contextmanager
def cleanup(workspace: Workspace, process: subprocess.Popen[str] | None = None) -> Iterator[None]:
    """Whatever happens: unblock the recipes, kill their groups and the build's."""
    try:
        yield
    finally:
        pids = [int(p.read_text()) for p in workspace.control.glob("*.ready")]
        workspace.release()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate(timeout=30)


def record_lies(release_dir: Path) -> str | None:
    """Why the record on disk says ok over bytes that do not match it, or None.

    Reads raw JSON and runs ``sha256sum -c``: nothing of the code under test.
    """
    path = release_dir / "release.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return None  # not a record anyone would believe
    if data.get("status") != "ok":
        return None
    sums = release_dir / "SHA256SUMS"
    if not sums.is_file():
        return "release.json says ok, SHA256SUMS is missing"
    check = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=release_dir, capture_output=True,
                           text=True)
    if check.returncode != 0:
        return f"release.json says ok, sha256sum -c fails:\n{check.stdout}{check.stderr}"
    listed = {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in sums.read_text().splitlines()}
    for name, artifact in data["artifacts"].items():
        if artifact["status"] not in ("ok", "cached"):
            return f"release.json says ok, but {name} is {artifact['status']}"
        for file in artifact["files"]:
            actual = hashlib.sha256((release_dir / file["path"]).read_bytes()).hexdigest()
            if actual != file["sha256"] or listed.get(file["path"]) != actual:
                return f"release.json says ok, {file['path']} has sha256 {actual}"
    return None


def assert_one_clean_message(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """No traceback; the message names every fragment."""
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


__all__ = ["ROOT", "Workspace", "assert_one_clean_message", "cleanup", "make_workspace", "record_lies"]
