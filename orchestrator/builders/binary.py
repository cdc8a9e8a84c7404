"""Binaries and Python packages: run the command, then publish the declared files."""

from __future__ import annotations

from orchestrator.builders.common import Job, collect_outputs, publish_all, run_command, stage_inputs
from orchestrator.builders.normalize import normalize_tar_gz
from orchestrator.outputs import ArtifactOutput


def _build_files(job: Job, folder: str) -> ArtifactOutput:
    stage_inputs(job)
    run_command(job)
    outputs = collect_outputs(job)
    if job.artifact.type == "python-package":
        for output in outputs:
            if output.name.endswith(".tar.gz"):
                normalize_tar_gz(job.source.path, output.real, job.source.commit_time, artifact=job.artifact.name)
                job.log(f"normalized {output.name}: times clamped to SOURCE_DATE_EPOCH, owner 0/0")
    records = tuple(publish_all(job, outputs, folder))
    for record in records:
        job.log(f"published {record.path} sha256:{record.sha256}")
    return ArtifactOutput(files=records)


def build_binary(job: Job) -> ArtifactOutput:
    """A binary: outputs land in dist/<release>/bin/."""
    return _build_files(job, "bin")


def build_python_package(job: Job) -> ArtifactOutput:
    """A Python package (sdist + wheel by default): outputs land in dist/<release>/python/."""
    return _build_files(job, "python")
