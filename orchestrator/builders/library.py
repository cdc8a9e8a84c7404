"""Libraries: a reproducible source archive of the pinned commit."""

from __future__ import annotations

import os

from orchestrator import gitcmd
from orchestrator.builders.common import Job
from orchestrator.builders.normalize import gzip_timeless
from orchestrator.confined import UnsafePath, write_file
from orchestrator.errors import BuildError
from orchestrator.outputs import ArtifactOutput, FileRecord

# The archive is made as if git had no user or system config at all.
_NO_USER_CONFIG = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def build_library(job: Job, *, prefix: str, relative: str) -> ArtifactOutput:
    """``git archive`` of the pinned commit (every path under ``prefix``), gzip-compressed
    without a timestamp, published as ``relative`` in the release directory.

    git archive given a commit id stamps every entry with the commit time, and gzip
    gets mtime 0 and no file name, so the bytes depend only on the commit (and the
    git version's tar writer): no user or system config takes part (no eol
    conversion, no smudge filter), and no repository config either (gitcmd).
    """
    job.claims.claim(relative, job.artifact.name, f"git archive of {job.source.commit[:12]}")
    result = gitcmd.run(
        ["archive", "--format=tar", f"--prefix={prefix}", job.source.commit],
        git_dir=job.source.path / ".git", env=_NO_USER_CONFIG, binary=True,
    )
    if not result.ok:
        raise BuildError(f"{job.artifact.name}: git archive failed: {gitcmd.trimmed(result.stderr)}")
    job.release_dir.mkdir(parents=True, exist_ok=True)
    try:
        written = write_file(job.release_dir, relative, iter([gzip_timeless(result.data)]), mode=0o644)
    except UnsafePath as e:
        raise BuildError(f"{job.artifact.name}: cannot publish {relative}: {e}",
                         hint="nothing in a release directory is a symlink; delete what is in the way") from e
    record = FileRecord(path=relative, sha256=written.sha256, size=written.size, mode=written.mode)
    job.log(f"archived {job.source.commit} -> {relative} sha256:{record.sha256}")
    return ArtifactOutput(files=(record,))
