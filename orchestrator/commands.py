"""Host build commands: the one door to them, and how they are stopped.

Each command runs in its own process group with an explicit environment; the runner
tracks them so that Ctrl-C (or a timeout) can stop them all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from orchestrator.errors import BuildError, tail
from orchestrator.plan import command_text

# The only variables a build command inherits from the caller: enough to find tools,
# reach Docker and proxies; nothing like CONTAINER_NAME or GO_BUILD_VER that
# Makefiles read and that would make the build depend on who runs it.
PASSTHROUGH = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR", "TERM",
    "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "SSH_AUTH_SOCK",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
)


class CommandRunner:
    """The one door to host build commands. Tracks running processes so that Ctrl-C
    can stop them all (each runs in its own process group, children included)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self.cancelled = threading.Event()

    def run(self, argv: list[str], *, cwd: Path, env: Mapping[str, str], log: Callable[[str], None],
            name: str) -> None:
        if self.cancelled.is_set():
            raise BuildError(f"{name}: cancelled before it started")
        lines: list[str] = []
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            raise BuildError(f"{name}: cannot run {argv[0]!r}: {e.strerror}") from e
        with self._lock:
            self._running.add(proc)
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                lines.append(line)
                del lines[:-200]
                log(line)
            code = proc.wait()
        finally:
            with self._lock:
                self._running.discard(proc)
        if self.cancelled.is_set():
            raise BuildError(f"{name}: stopped (interrupted)")
        if code != 0:
            raise BuildError(
                f"{name}: command failed with exit code {code}: {command_text(tuple(argv))}\n"
                + tail("\n".join(lines))
            )

    def cancel_all(self, grace: float = 5.0) -> None:
        """Stop every running command: SIGTERM to its group, SIGKILL after ``grace``."""
        self.cancelled.set()
        with self._lock:
            procs = list(self._running)
        for proc in procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen[Any], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
