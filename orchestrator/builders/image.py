"""Docker images, built through the Engine API with OCI labels."""

from __future__ import annotations

import datetime
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.builders.common import Job, run_command, stage_inputs
from orchestrator.confined import UnsafePath, resolve_inside
from orchestrator.errors import BuildError
from orchestrator.fileops import MAX_INPUT_BYTES
from orchestrator.outputs import ArtifactOutput, ImageRecord

if TYPE_CHECKING:
    from orchestrator.kinds.image import Settings

# Every image carries the cache key it was built for: a cached image is trusted only
# when the engine still has it with this label (orchestrator.cache).
KEY_LABEL = "io.github.release-orchestrator.cache-key"


def oci_labels(job: Job) -> dict[str, str]:
    """The OCI annotations every image carries; ``created`` is the commit time
    (SOURCE_DATE_EPOCH), so the labels are the same on every rebuild."""
    created = datetime.datetime.fromtimestamp(job.source.commit_time, tz=datetime.UTC)
    return {
        "org.opencontainers.image.source": job.source.url,
        "org.opencontainers.image.revision": job.source.commit,
        "org.opencontainers.image.version": job.manifest.release,
        "org.opencontainers.image.created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "org.opencontainers.image.title": job.artifact.name,
    }


def _check_dockerignore(job: Job, context: Path) -> None:
    """docker-py reads ``<context>/.dockerignore`` whole with a plain open(): one that leads
    out of the checkout (``-> /dev/zero``, a FIFO, a host file) or is not a small regular
    file is refused before docker-py sees it."""
    name = job.artifact.name
    relative = (context / ".dockerignore").relative_to(job.source.path).as_posix()
    if not os.path.lexists(job.source.path / relative):
        return
    try:
        real = resolve_inside(job.source.path, relative, where="the checkout")
    except UnsafePath as e:
        raise BuildError(f"{name}: {e}", hint="a .dockerignore must be a file inside the checkout") from e
    try:
        info = os.stat(job.source.path / real, follow_symlinks=False)
    except FileNotFoundError:
        return  # a dangling symlink inside the checkout: docker-py finds no .dockerignore either
    if not stat.S_ISREG(info.st_mode):
        raise BuildError(f"{name}: {relative} in the build context is not a regular file",
                         hint="make it a file of patterns, or remove it")
    if info.st_size > MAX_INPUT_BYTES:
        raise BuildError(f"{name}: {relative} in the build context is larger than {MAX_INPUT_BYTES} bytes",
                         hint="a .dockerignore holds patterns; the build wrote something else there")


def build_image(job: Job, settings: Settings, refs: Sequence[str]) -> ArtifactOutput:
    """Optional command first, then ``docker build`` of the declared Dockerfile, tagged ``refs``."""
    artifact = job.artifact
    if job.engine is None:
        raise BuildError(f"{artifact.name}: an image build needs Docker", hint="start Docker or set DOCKER_HOST")
    stage_inputs(job)
    run_command(job, settings)
    # docker-py walks the context from its real path: a committed `ctx -> /home/me`
    # would send that directory to the engine, and a COPY could put it in the image.
    try:
        context = job.source.path / resolve_inside(job.source.path, settings.context, where="the checkout")
        dockerfile = job.source.path / resolve_inside(job.source.path, settings.dockerfile, where="the checkout")
    except UnsafePath as e:
        hint = "the build context and the Dockerfile must be inside the checkout"
        raise BuildError(f"{artifact.name}: {e}", hint=hint) from e
    _check_dockerignore(job, context)
    if not dockerfile.is_file():
        raise BuildError(f"{artifact.name}: Dockerfile {settings.dockerfile!r} not found in {job.source.path}",
                         hint="fix `dockerfile` in the manifest")
    relative = os.path.relpath(dockerfile, context)
    refs = tuple(refs)
    if clamped := clamp_times(context, job.source.commit_time):
        job.log(f"set the time of {clamped} build context entries newer than the commit to the commit time")
    labels = oci_labels(job)
    if job.cache_key:
        labels[KEY_LABEL] = job.cache_key
    job.log(f"docker build -f {settings.dockerfile} {' '.join('-t ' + r for r in refs)} {settings.context}")
    built = job.engine.build_image(
        context=context,
        dockerfile=relative if not relative.startswith("..") else str(dockerfile),
        tags=refs,
        buildargs=dict(settings.buildargs),
        target=settings.target,
        labels=labels,
        network_mode=settings.network,
        log=job.log,
        deadline=job.deadline,
    )
    job.log(f"built image {built.id} as {', '.join(refs)}")
    layers = job.engine.image_layers(built.id)
    return ArtifactOutput(images=(ImageRecord(id=built.id, refs=refs, labels=tuple(sorted(labels.items())),
                                              layers=layers),))


def clamp_times(context: Path, epoch: int) -> int:
    """Give every entry of the build context newer than ``epoch`` (the commit time,
    SOURCE_DATE_EPOCH) that time, as BuildKit's rewrite-timestamp does; returns how many.

    A COPY keeps the times the context sends, and a checkout's files (like everything a
    command or a stage wrote) carry the time they were written: without this, two builds
    of one commit give layers with other digests. ``.git`` is left alone (host git uses
    its times), and a symbolic link gets its own time, never its target's.
    """
    changed = 0
    for top, dirs, files in os.walk(context):
        dirs[:] = [d for d in dirs if d != ".git"]
        for path in [top] * (top == str(context)) + [os.path.join(top, name) for name in (*dirs, *files)]:
            try:
                info = os.lstat(path)
                if info.st_mtime > epoch:
                    os.utime(path, (epoch, epoch), follow_symlinks=False)
                    changed += 1
            except OSError:
                continue  # gone, or not ours: its layer is only less reproducible
    return changed
