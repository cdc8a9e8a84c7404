"""Libraries: a reproducible source archive of the pinned commit."""

from __future__ import annotations

import os
import subprocess

from orchestrator.builders.common import Job
from orchestrator.builders.normalize import gzip_timeless
from orchestrator.errors import BuildError
from orchestrator.fileops import sha256_file, write_atomic
from orchestrator.outputs import ArtifactOutput, FileRecord


def archive_name(job: Job) -> str:
    return f"{job.source.repo}-{job.source.ref if job.source.ref != job.source.commit else job.source.commit[:12]}"


def build_library(job: Job) -> ArtifactOutput:
    """``git archive`` of the pinned commit, gzip-compressed without a timestamp.

    git archive given a commit id stamps every entry with the commit time, and gzip
    gets mtime 0 and no file name, so the bytes depend only on the commit (and the
    git version's tar writer).
    """
    prefix = (job.artifact.prefix or archive_name(job)).rstrip("/") + "/"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    result = subprocess.run(
        ["git", "-c", "core.autocrlf=false", "archive", "--format=tar", f"--prefix={prefix}", job.source.commit],
        cwd=job.source.path, env=env, capture_output=True, stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise BuildError(f"{job.artifact.name}: git archive failed: {result.stderr.decode(errors='replace').strip()}")
    relative = f"src/{archive_name(job)}.tar.gz"
    dest = job.release_dir / relative
    data = gzip_timeless(result.stdout)
    write_atomic(dest, data)

    record = FileRecord(path=relative, sha256=sha256_file(dest), size=len(data), mode=0o644)
    job.log(f"archived {job.source.commit} -> {relative} sha256:{record.sha256}")
    return ArtifactOutput(files=(record,))
