"""Kind ``binary``: a command makes files; they are published to dist/<release>/bin/."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.kinds.running import RUN_FIELDS, CommandFiles, FileSettings, run_values
from orchestrator.schema import Field

if TYPE_CHECKING:
    from orchestrator.builders.common import Job
    from orchestrator.model import Artifact, Defaults
    from orchestrator.outputs import ArtifactOutput

NAME = "binary"
FOLDER = "bin"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings(FileSettings):
    """A binary's settings: ``outputs`` is required in the manifest."""


def settings_of(artifact: Artifact) -> Settings:
    assert isinstance(artifact.settings, Settings), artifact.type
    return artifact.settings


class Binary(CommandFiles):
    name = NAME
    folder = FOLDER
    summary = "files a command makes, published to dist/<release>/bin/"
    fields: Mapping[str, Field] = {
        **RUN_FIELDS,
        "command": Field(kind="command", required=True, description=RUN_FIELDS["command"].description),
        "outputs": Field(kind="outputs", required=True, description="Files the command produces (globs allowed)."),
    }

    def settings(self, raw: Mapping[str, Any], defaults: Defaults) -> Settings:
        return Settings(**run_values(raw, defaults), outputs=tuple(raw["outputs"]))

    def build(self, job: Job) -> ArtifactOutput:
        from orchestrator.builders.files import build_files

        return build_files(job, settings_of(job.artifact), FOLDER)


KIND = Binary()
