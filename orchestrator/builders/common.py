"""What every builder shares: the job, its explicit environment, running its command
(on the host or in a builder container), staging inputs and publishing outputs.

Kinds (``orchestrator.kinds``) decide what to build; these functions do it."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import stat
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from orchestrator.commands import PASSTHROUGH, CommandRunner
from orchestrator.confined import UnsafePath, copy_file, resolve_inside
from orchestrator.errors import BuildError
from orchestrator.model import Artifact, Manifest, command_text
from orchestrator.outputs import FileRecord, Source

if TYPE_CHECKING:
    from orchestrator.engine.protocol import ContainerEngine
    from orchestrator.kinds.running import RunSettings

# A newline in a published name would let a file write its own line into SHA256SUMS.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\\]")


class Claims:
    """Which artifact publishes each path of dist/<release>/ in this run (thread-safe).

    Two outputs that would land on one path (two patterns giving ``bin/tool``, in one
    artifact or in two) must not silently overwrite each other: the later one fails,
    naming both, so SHA256SUMS never lists a path twice.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[str, tuple[str, str]] = {}

    def claim(self, relative: str, artifact: str, source: str) -> bool:
        """Claim ``relative`` for ``artifact``'s ``source``: True when new, False when
        that very source claimed it already (one file matched by two patterns)."""
        with self._lock:
            owner = self._owners.get(relative)
            if owner is None:
                self._owners[relative] = (artifact, source)
                return True
        if owner == (artifact, source):
            return False
        raise BuildError(
            f"{artifact}: output {source!r} would be published as {relative}, where {owner[0]}'s output "
            f"{owner[1]!r} is published already",
            hint="outputs are published by file name; rename one of them or drop one from `outputs`",
        )


@dataclass(kw_only=True)
class Job:
    """Everything one artifact's build needs. Built by execute.py."""

    manifest: Manifest
    artifact: Artifact
    source: Source
    release_dir: Path  # dist/<release>/
    log: Callable[[str], None]
    runner: CommandRunner
    engine: ContainerEngine | None = None
    staged: Mapping[str, tuple[Path, ...]] = field(default_factory=dict)  # dest -> files to copy in
    cache_key: str | None = None
    claims: Claims = field(default_factory=Claims)  # shared by all jobs of a run
    deadline: float | None = None  # time.monotonic() past which the build is stopped (the artifact's timeout)

    def environment(self, env_pairs: Sequence[tuple[str, str]] = (), *, container: bool = False) -> dict[str, str]:
        """The explicit environment of this artifact's command, with its own ``env_pairs``."""
        env = {} if container else {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
        env.update(dict(env_pairs))
        env.update(
            RELEASE=self.manifest.release,
            GIT_COMMIT=self.source.commit,
            GIT_REF=self.source.ref,
            SOURCE_DATE_EPOCH=str(self.source.commit_time),
            ORCHESTRATOR_ARTIFACT=self.artifact.name,
        )
        return env


@dataclass(frozen=True, slots=True, kw_only=True)
class Output:
    """A declared output found in the checkout: ``shown`` as matched, ``real`` with
    symlinks resolved (both relative to the checkout); published as ``name``."""

    shown: str
    real: PurePosixPath

    @property
    def name(self) -> str:
        return PurePosixPath(self.shown).name


def publish(job: Job, output: Output, relative: str) -> FileRecord:
    """Copy ``output`` to ``release_dir/relative``, whole or not at all, no symlink
    followed on either side, with mode 0o755 or 0o644."""
    try:
        copied = copy_file(job.source.path, output.real, job.release_dir, relative)
    except UnsafePath as e:
        raise BuildError(f"{job.artifact.name}: cannot publish {output.shown!r} as {relative}: {e}",
                         hint="nothing in a release directory is a symlink; delete what is in the way") from e
    return FileRecord(path=relative, sha256=copied.sha256, size=copied.size, mode=copied.mode)


def publish_all(job: Job, outputs: list[Output], folder: str) -> list[FileRecord]:
    """Claim every destination first, then publish: a collision overwrites nothing."""
    wanted = [(output, f"{folder}/{output.name}") for output in outputs]
    fresh = [(output, relative) for output, relative in wanted
             if job.claims.claim(relative, job.artifact.name, output.shown)]
    job.release_dir.mkdir(parents=True, exist_ok=True)
    return [publish(job, output, relative) for output, relative in fresh]


def collect_outputs(job: Job, patterns: Sequence[str]) -> list[Output]:
    """The files ``patterns`` (the artifact's ``outputs``) name; a pattern matching nothing
    fails, and so does a match whose real path (symlinks resolved) leaves the checkout."""
    root = job.source.path
    found: list[Output] = []
    for pattern in patterns:
        files = []
        for match in sorted(glob.glob(pattern, root_dir=root)):
            try:
                real = resolve_inside(root, match, where="the checkout")
            except UnsafePath as e:
                raise BuildError(f"{job.artifact.name}: output {match!r} {e.why}",
                                 hint="an output must be a file inside the checkout; "
                                      "a symlink may only point inside it") from e
            try:
                match.encode("utf-8")
            except UnicodeEncodeError:
                shown = os.fsencode(match).decode("ascii", "backslashreplace")
                raise BuildError(f"{job.artifact.name}: output '{shown}' has a name that is not valid UTF-8, "
                                 "which release.json and SHA256SUMS cannot record",
                                 hint="rename the file, or narrow the pattern in `outputs`") from None
            if _UNPRINTABLE.search(match):
                raise BuildError(f"{job.artifact.name}: output {match!r} has a control character or backslash "
                                 "in its name, which SHA256SUMS cannot list as it is",
                                 hint="rename the file, or narrow the pattern in `outputs`")
            with contextlib.suppress(FileNotFoundError):  # a dangling symlink is no file
                if stat.S_ISREG(os.stat(root / real, follow_symlinks=False).st_mode):
                    files.append(Output(shown=match, real=real))
        if not files:
            raise BuildError(
                f"{job.artifact.name}: declared output {pattern!r} does not exist in "
                f"{job.source.path} after the command",
                hint="fix `outputs` in the manifest or the build command",
            )
        found.extend(files)
    return found


def stage_inputs(job: Job) -> None:
    """Copy staged artifacts' files into this checkout at their declared paths.

    A destination's parent may be a symlink only when it resolves inside the checkout;
    a symlink at the destination itself is replaced, never written through.
    """
    for dest, files in job.staged.items():
        into_dir = len(files) > 1 or dest.endswith("/")
        for file in files:
            target = f"{dest.rstrip('/')}/{file.name}" if into_dir else dest
            _stage_one(job, file, target)
            job.log(f"staged {file.name} -> {target}")


def _stage_one(job: Job, file: Path, target: str) -> None:
    root = job.source.path
    parent, name = os.path.split(target)
    try:
        real_parent = resolve_inside(root, parent or ".", where="the checkout")
        copy_file(job.release_dir, str(file.relative_to(job.release_dir)), root, real_parent / name)
    except UnsafePath as e:
        raise BuildError(f"{job.artifact.name}: cannot stage {file.name} at {target!r}: {e}",
                         hint="staging writes only inside the checkout, never through a symlink") from e


def run_command(job: Job, settings: RunSettings, *, own_interpreter: bool = False) -> None:
    """Run the artifact's command in its checkout: on the host, or in ``builder``.

    ``own_interpreter``: the command is ``python3 ...`` and runs, on the host, with the
    orchestrator's own interpreter (which has the `build` front end), not whichever
    python3 comes first on PATH.
    """
    name = job.artifact.name
    command = settings.command
    if command is None:
        return
    if settings.builder:
        if job.engine is None:
            raise BuildError(f"{name}: needs Docker to run in {settings.builder}")
        job.log(f"$ {command_text(command)}  (in {settings.builder})")
        job.engine.run(image=settings.builder, command=command, workdir=job.source.path,
                       env=job.environment(settings.env, container=True), network_mode=settings.network,
                       log=job.log, deadline=job.deadline)
        return
    if own_interpreter and isinstance(command, tuple):
        command = (sys.executable, *command[1:])
    job.log(f"$ {command_text(command)}")
    argv = list(command) if isinstance(command, tuple) else ["sh", "-c", command]
    job.runner.run(argv, cwd=job.source.path, env=job.environment(settings.env), log=job.log, name=name,
                   shown=command_text(settings.command), deadline=job.deadline)
