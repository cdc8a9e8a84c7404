"""Artifacts whose result is files a command makes: stage, run, collect, publish."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from orchestrator.builders.common import Job, Output, collect_outputs, publish_all, run_command, stage_inputs
from orchestrator.outputs import ArtifactOutput

if TYPE_CHECKING:
    from orchestrator.kinds.binary import Settings as BinarySettings
    from orchestrator.kinds.python_package import Settings as PythonSettings


def build_files(job: Job, settings: BinarySettings | PythonSettings, folder: str, *,
                after: Callable[[Job, list[Output]], None] | None = None,
                own_interpreter: bool = False) -> ArtifactOutput:
    """Stage the inputs, run the command, then publish every output into
    dist/<release>/<folder>/; ``after`` sees the outputs first (to normalise them)."""
    stage_inputs(job)
    run_command(job, settings, own_interpreter=own_interpreter)
    outputs = collect_outputs(job, settings.outputs)
    if after is not None:
        after(job, outputs)
    records = tuple(publish_all(job, outputs, folder))
    for record in records:
        job.log(f"published {record.path} sha256:{record.sha256}")
    return ArtifactOutput(files=records)
