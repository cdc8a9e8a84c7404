"""What a run starts and may have to stop: host commands, git, containers; and what a
dead run left running.

One ``Children`` per writer task. The first Ctrl-C (or SIGTERM, SIGHUP) stops the
run gracefully through the normal code paths (``execute`` cancels its runner and
engine); ``sweep`` then catches any straggler, and ``kill_now`` is a second Ctrl-C:
everything at once.

Everything is found again by the run token (``orchestrator.procs``): in the
environment of every child process, and as the ``orchestrator.run`` label of every
container (builder containers, and those host commands start through the docker shim).
A run killed with kill -9 leaves its token in the workspace's owner record, which is
how the next run finds its orphans (``stop_dead_run``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator import procs
from orchestrator.commands import GRACE_SECONDS, CommandRunner
from orchestrator.errors import OrchestratorError
from orchestrator.redact import redact
from orchestrator.shim import RUN_LABEL, WORKSPACE_LABEL, write_shim

if TYPE_CHECKING:
    from orchestrator.engine.protocol import ContainerEngine


class Children:
    """A run's host command runner and (lazily) its Docker engine, and how to stop them."""

    def __init__(self, *, workspace: Path | None = None, build_dir: Path | None = None,
                 engine_factory: Callable[[], ContainerEngine] | None = None, grace: float = GRACE_SECONDS) -> None:
        """``build_dir``: write the docker shim there for host commands; ``engine_factory``:
        how to reach Docker (default: DOCKER_HOST, labelling containers with ``workspace``);
        ``grace``: seconds between SIGTERM and SIGKILL when a command is stopped."""
        self.workspace = workspace
        self._factory = engine_factory
        self._engine: ContainerEngine | None = None
        self._lock = threading.RLock()  # re-entrant: kill_now runs in a signal handler
        shim = write_shim(build_dir, workspace or Path(".")) if build_dir is not None else None
        self.runner = CommandRunner(shim=shim, containers=self.engine, grace=grace)

    def engine(self) -> ContainerEngine:
        """The run's engine, connected on first use; DockerUnavailableError when there is none."""
        with self._lock:
            if self._engine is None:
                if self._factory is not None:
                    self._engine = self._factory()
                else:
                    from orchestrator.engine.dockerpy import Engine

                    self._engine = Engine.connect(workspace=self.workspace)
            return self._engine

    def sweep(self) -> list[str]:
        """After an interrupted run: SIGKILL any process of this run still alive, and remove
        any container still labelled with its token. Describes what was stopped."""
        self.runner.kill_all()
        stopped = [f"process {pid} ({name})" for pid, name in _described(procs.RUN_VARIABLE, procs.run_token())]
        procs.kill(procs.RUN_VARIABLE, procs.run_token())
        engine = self._engine  # never connect just for this: no engine, no container of ours
        if engine is not None:
            with contextlib.suppress(OrchestratorError):
                stopped += engine.stop_labelled(RUN_LABEL, procs.run_token())
        return stopped

    def kill_now(self) -> None:
        """A second Ctrl-C: kill everything of this run at once, waiting for nothing."""
        self.runner.kill_all()
        engine = self._engine
        if engine is not None:
            engine.cancel_all(wait=0)
        procs.kill(procs.RUN_VARIABLE, procs.run_token(), wait=1.0)
        if engine is not None:
            with contextlib.suppress(Exception):  # best effort on the way out
                engine.stop_labelled(RUN_LABEL, procs.run_token())


def stop_dead_run(dead: procs.Owner, workspace: Path, engine: Callable[[], ContainerEngine]) -> list[str]:
    """Stop what a run that died holding ``workspace`` left running; describes each thing stopped.

    Its processes carry its run token; its containers (builder containers, and those
    its host commands started) carry the workspace label and a run token not ours.
    Called with the workspace lock held, so nothing else can be using them.
    """
    stopped = [f"process {pid} ({name})" for pid, name in _described(procs.RUN_VARIABLE, dead.token)]
    procs.kill(procs.RUN_VARIABLE, dead.token)
    try:
        client = engine()
        leftovers = [c for c in client.labelled(WORKSPACE_LABEL, str(workspace.resolve()))
                     if c.labels.get(RUN_LABEL) != procs.run_token()]
        stopped += client.remove(leftovers)
    except OrchestratorError:
        pass  # no engine here: no container of this workspace is running on it either
    return stopped


def _described(variable: str, value: str) -> list[tuple[int, str]]:
    found = []
    for pid in procs.find(variable, value):
        try:
            name = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            name = "?"
        found.append((pid, redact(name, mask="***@")[:80] or "?"))
    return found
