"""The ``docker`` shim: labels every container that a host build command starts.

Every real Calico Makefile runs ``docker run ...``. On Ctrl-C, docker's sig-proxy
forwards SIGTERM to the container, where PID 1 ignores it, and killing the docker
client leaves the container running. So host commands get a directory first on their
PATH holding an executable ``docker`` that runs the real one (found on the rest of
PATH) with ``--label`` options added to ``docker run``/``create`` and ``docker container
run``/``create``: the run token, the step token and the workspace. The orchestrator
then finds those containers through the Engine API by label and stops them: on
Ctrl-C, after each step, and after a killed run.

The shim is a two-line sh script that hands over to ``orchestrator_cli.docker_shim``
with this interpreter (``-I``: a repository's ``orchestrator/`` directory or
PYTHONPATH cannot stand in for ours). It also leaves a marker per step that used it,
so steps that never ran docker cost no call to the engine.

Limits: a command that runs docker by absolute path, or talks to another engine than
the one DOCKER_HOST names, starts containers the orchestrator cannot find.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import stat
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import OrchestratorError
from orchestrator.fileops import write_atomic
from orchestrator.procs import RUN_VARIABLE, STEP_VARIABLE
from orchestrator.workspace import refuse_links

RUN_LABEL = "orchestrator.run"  # the run token of the orchestrator process that started it
STEP_LABEL = "orchestrator.step"  # the token of the build step whose host command started it
WORKSPACE_LABEL = "orchestrator.workspace"  # the absolute workspace path

# docker's global options that take a value (docker 20.10 to 28): skipped, with their
# value, to find the subcommand. Everything else before it is a flag on its own.
_VALUE_LONG = frozenset({"--config", "--context", "--host", "--log-level", "--tlscacert", "--tlscert", "--tlskey"})
_VALUE_SHORT = frozenset("cHl")
_CREATING = (("run",), ("create",), ("container", "run"), ("container", "create"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Shim:
    """A workspace's shim directory (``.build/shim``): ``docker``, and ``used/<step token>`` markers."""

    directory: Path

    def path_for(self, path: str | None) -> str:
        """``PATH`` for a host command: the shim first, then ``path`` (or the system default)."""
        return f"{self.directory}{os.pathsep}{path if path is not None else os.defpath}"

    def used(self, step_token: str) -> bool:
        """Whether the command of that step ran ``docker`` through the shim."""
        return (self.directory / "used" / step_token).exists()

    def forget(self, step_token: str) -> None:
        (self.directory / "used" / step_token).unlink(missing_ok=True)


def write_shim(build_dir: Path, workspace: Path) -> Shim:
    """Write (or rewrite: the interpreter may have moved) the shim under ``build_dir``."""
    directory = (build_dir / "shim").absolute()
    command = [sys.executable, "-I", "-m", "orchestrator_cli.docker_shim", str(directory),
               str(workspace.resolve())]
    script = ("#!/bin/sh\n# Written by the orchestrator: labels the containers build commands start "
              "(orchestrator/shim.py).\nexec " + shlex.join(command) + ' "$@"\n')
    path = directory / "docker"
    refuse_links(directory, directory / "used")  # .build/shim/used -> ~/x would have ~/x emptied below
    try:
        _own_directory(directory)
        _own_directory(directory / "used")
        for stale in (directory / "used").iterdir():  # markers of runs that ended or died: never ours
            stale.unlink(missing_ok=True)
        write_atomic(path, script.encode())
        path.chmod(0o755)
    except OSError as e:
        raise OrchestratorError(f"cannot write the docker shim for build commands at {path}: {e.strerror}",
                                hint="check free space and permissions of the workspace's .build/") from e
    return Shim(directory=directory)


def _own_directory(path: Path) -> None:
    """Make ``path`` a directory of its own. .build/ is not trusted: a symlink planted
    there (``used -> ~/Documents``) is removed, never followed and emptied."""
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            path.unlink()
    path.mkdir(parents=True, exist_ok=True)


def labels_for(env: Mapping[str, str], workspace: str) -> dict[str, str]:
    """The labels for a container started with environment ``env``; none outside a build step."""
    run, step = env.get(RUN_VARIABLE), env.get(STEP_VARIABLE)
    if not run or not step:
        return {}
    return {RUN_LABEL: run, STEP_LABEL: step, WORKSPACE_LABEL: workspace}


def add_labels(argv: Sequence[str], labels: Mapping[str, str]) -> list[str]:
    """docker's arguments (without ``docker`` itself) with ``labels`` added when they create a container.

    The labels go right after the subcommand, so the global options before it (``-H``,
    ``--context``, ``--config``, ``-l``, ``--tls*``, in every spelling) stay in place and
    the image and its command after it are untouched. Anything else passes unchanged.
    """
    index = _subcommand_index(argv)
    if index is None or not labels:
        return list(argv)
    for words in _CREATING:
        if tuple(argv[index : index + len(words)]) == words:
            at = index + len(words)
            return [*argv[:at], *(f"--label={key}={value}" for key, value in labels.items()), *argv[at:]]
    return list(argv)


def _subcommand_index(argv: Sequence[str]) -> int | None:
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            # The end of docker's own options: `docker -- run img` runs img (CLI 20.10 to 28).
            return index + 1 if index + 1 < len(argv) else None
        if arg.startswith("--"):
            takes_value = "=" not in arg and arg in _VALUE_LONG
            index += 2 if takes_value else 1
        elif arg.startswith("-") and len(arg) > 1:
            # A cluster of shorthands (-D, -Dl debug, -Htcp://x, -H=tcp://x): the first one
            # that takes a value takes the rest of the word, or the next word if none is left.
            index += 1
            for position, letter in enumerate(arg[1:], start=1):
                if letter in _VALUE_SHORT:
                    if position == len(arg) - 1:
                        index += 1
                    break
        else:
            return index
    return None


def find_docker(path: str, shim_dir: Path) -> str | None:
    """The first executable ``docker`` on ``path`` that is not the shim itself."""
    shim = (shim_dir / "docker").resolve()
    for entry in path.split(os.pathsep):
        candidate = Path(entry or ".") / "docker"
        try:
            if candidate.resolve() == shim or not candidate.is_file() or not os.access(candidate, os.X_OK):
                continue
        except OSError:
            continue
        return str(candidate)
    return None
