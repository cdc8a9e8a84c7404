"""One builder per artifact type; ``build(job)`` dispatches on the artifact's type."""

from __future__ import annotations

from orchestrator.builders.common import Job
from orchestrator.manifest import FILE_TYPES
from orchestrator.outputs import ArtifactOutput

__all__ = ["ArtifactOutput", "Job", "build", "FILE_TYPES"]


def build(job: Job) -> ArtifactOutput:
    """Build ``job.artifact``; raise BuildError (with the log tail) when it fails."""
    kind = job.artifact.type
    if kind == "binary":
        from orchestrator.builders.binary import build_binary

        return build_binary(job)
    if kind == "python-package":
        from orchestrator.builders.binary import build_python_package

        return build_python_package(job)
    if kind == "image":
        from orchestrator.builders.image import build_image

        return build_image(job)
    from orchestrator.builders.library import build_library

    return build_library(job)
