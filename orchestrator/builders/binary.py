"""Binaries and Python packages: run the command, then publish the declared files."""

from __future__ import annotations

from orchestrator.builders.common import ArtifactOutput, Job, collect_outputs, publish, run_command, stage_inputs


def _build_files(job: Job, folder: str) -> ArtifactOutput:
    stage_inputs(job)
    run_command(job)
    files = collect_outputs(job)
    records = tuple(publish(path, job.release_dir, f"{folder}/{path.name}") for path in files)
    for record in records:
        job.log(f"published {record.path} sha256:{record.sha256}")
    return ArtifactOutput(files=records)


def build_binary(job: Job) -> ArtifactOutput:
    """A binary: outputs land in dist/<release>/bin/."""
    return _build_files(job, "bin")


def build_python_package(job: Job) -> ArtifactOutput:
    """A Python package (sdist + wheel by default): outputs land in dist/<release>/python/."""
    return _build_files(job, "python")
