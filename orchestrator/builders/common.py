"""What every builder shares: the job, its explicit environment, running its command
(on the host or in a builder container), staging inputs and publishing outputs."""

from __future__ import annotations

import glob
import os
import shutil
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.commands import PASSTHROUGH, CommandRunner
from orchestrator.errors import BuildError
from orchestrator.fileops import copy_atomic, sha256_file
from orchestrator.manifest import DEFAULT_PYTHON_COMMAND, Artifact, Manifest
from orchestrator.outputs import FileRecord, Source
from orchestrator.plan import command_text

if TYPE_CHECKING:
    from orchestrator.engine import Engine

@dataclass(kw_only=True)
class Job:
    """Everything one artifact's build needs. Built by execute.py."""

    manifest: Manifest
    artifact: Artifact
    source: Source
    release_dir: Path  # dist/<release>/
    log: Callable[[str], None]
    runner: CommandRunner
    engine: Engine | None = None
    staged: Mapping[str, tuple[Path, ...]] = field(default_factory=dict)  # dest -> files to copy in
    cache_key: str | None = None

    def environment(self, *, container: bool = False) -> dict[str, str]:
        """The explicit environment of this artifact's command."""
        env = {} if container else {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
        env.update(dict(self.artifact.env))
        env.update(
            RELEASE=self.manifest.release,
            GIT_COMMIT=self.source.commit,
            GIT_REF=self.source.ref,
            SOURCE_DATE_EPOCH=str(self.source.commit_time),
            ORCHESTRATOR_ARTIFACT=self.artifact.name,
        )
        return env


def publish(source: Path, release_dir: Path, relative: str) -> FileRecord:
    """Copy ``source`` to ``release_dir/relative`` atomically, so a reader never sees a half-written file."""
    dest = release_dir / relative
    copy_atomic(source, dest)
    info = dest.lstat()
    return FileRecord(path=relative, sha256=sha256_file(dest), size=info.st_size, mode=stat.S_IMODE(info.st_mode))


def collect_outputs(job: Job) -> list[Path]:
    """The files the artifact's ``outputs`` name; a pattern matching nothing fails."""
    found: list[Path] = []
    for pattern in job.artifact.outputs:
        matches = sorted(glob.glob(str(job.source.path / pattern)))
        files = [Path(m) for m in matches if Path(m).is_file()]
        if not files:
            raise BuildError(
                f"{job.artifact.name}: declared output {pattern!r} does not exist in "
                f"{job.source.path} after the command",
                hint="fix `outputs` in the manifest or the build command",
            )
        found.extend(files)
    return found


def stage_inputs(job: Job) -> None:
    """Copy staged artifacts' files into this checkout at their declared paths."""
    for dest, files in job.staged.items():
        target = job.source.path / dest
        if len(files) > 1 or dest.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
            for file in files:
                shutil.copy2(file, target / file.name)
                job.log(f"staged {file.name} -> {dest.rstrip('/')}/{file.name}")
        elif files:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(files[0], target)
            job.log(f"staged {files[0].name} -> {dest}")


def run_command(job: Job) -> None:
    """Run the artifact's command in its checkout: on the host, or in ``builder``."""
    artifact = job.artifact
    command = artifact.command
    if command is None:
        return
    if artifact.builder:
        if job.engine is None:
            raise BuildError(f"{artifact.name}: needs Docker to run in {artifact.builder}")
        job.log(f"$ {command_text(command)}  (in {artifact.builder})")
        job.engine.run(image=artifact.builder, command=command, workdir=job.source.path,
                       env=job.environment(container=True), network_mode=artifact.network, log=job.log)
        return
    if command == DEFAULT_PYTHON_COMMAND:
        # The default sdist/wheel recipe uses the `build` front end installed
        # alongside the orchestrator, not whichever python3 is first on PATH.
        command = (sys.executable, *command[1:])
    job.log(f"$ {command_text(command)}")
    argv = list(command) if isinstance(command, tuple) else ["sh", "-c", command]
    job.runner.run(argv, cwd=job.source.path, env=job.environment(), log=job.log, name=artifact.name)
