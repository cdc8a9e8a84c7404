"""What every builder shares: the job, the explicit build environment, running a
command (on the host or in a builder container), and publishing files atomically."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import BuildError, tail
from orchestrator.manifest import DEFAULT_PYTHON_COMMAND, Artifact, Manifest
from orchestrator.plan import command_text

if TYPE_CHECKING:
    from orchestrator.engine import Engine

# The only variables a build command inherits from the caller: enough to find tools,
# reach Docker and proxies; nothing like CONTAINER_NAME or GO_BUILD_VER that
# Makefiles read and that would make the build depend on who runs it.
PASSTHROUGH = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR", "TERM",
    "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "SSH_AUTH_SOCK",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class FileRecord:
    path: str  # relative to dist/<release>/
    sha256: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageRecord:
    id: str
    refs: tuple[str, ...]
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ArtifactOutput:
    files: tuple[FileRecord, ...] = ()
    images: tuple[ImageRecord, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """The pinned checkout an artifact builds from."""

    repo: str
    url: str  # redacted
    ref: str
    commit: str
    commit_time: int
    path: Path
    # Brings ``path`` to the commit, clean; None when it is there already. Called
    # once, only before an artifact of the repo is really built (not when cached).
    prepare: Callable[[], None] | None = None


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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def first_damaged(release_dir: Path, files: Iterable[FileRecord]) -> str | None:
    """The path of the first recorded file that is missing or changed, or None."""
    for record in files:
        published = release_dir / record.path
        if not published.is_file() or sha256_file(published) != record.sha256:
            return record.path
    return None


def publish(source: Path, release_dir: Path, relative: str) -> FileRecord:
    """Copy ``source`` to ``release_dir/relative`` atomically: a temp name in the same
    directory, then rename, so a reader never sees a half-written file."""
    dest = release_dir / relative
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}-{threading.get_ident()}"
    try:
        shutil.copy2(source, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return FileRecord(path=relative, sha256=sha256_file(dest), size=dest.stat().st_size)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}"
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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
