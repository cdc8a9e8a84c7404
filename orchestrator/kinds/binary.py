"""Kind ``binary``: a command makes files; they are published to dist/<release>/bin/."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.kinds.running import (
    RUN_FIELDS,
    RunSettings,
    claim_outputs,
    file_problems,
    host_command,
    run_actions,
    run_describe,
    run_values,
)
from orchestrator.schema import Field

if TYPE_CHECKING:
    from orchestrator.builders.common import Job
    from orchestrator.model import Artifact, Defaults, Manifest
    from orchestrator.outputs import ArtifactOutput
    from orchestrator.record import ArtifactEntry
    from orchestrator.semantics import Meaning

NAME = "binary"
FOLDER = "bin"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings(RunSettings):
    outputs: tuple[str, ...] = ()  # files the command makes, relative to the checkout (globs allowed)


def settings_of(artifact: Artifact) -> Settings:
    assert isinstance(artifact.settings, Settings), artifact.type
    return artifact.settings


class Binary:
    name = NAME
    summary = "files a command makes, published to dist/<release>/bin/"
    fields: Mapping[str, Field] = {
        **RUN_FIELDS,
        "command": Field(kind="command", required=True, description=RUN_FIELDS["command"].description),
        "outputs": Field(kind="outputs", required=True, description="Files the command produces (globs allowed)."),
    }
    produces_files = True

    def settings(self, raw: Mapping[str, Any], defaults: Defaults) -> Settings:
        return Settings(**run_values(raw, defaults), outputs=tuple(raw["outputs"]))

    def check(self, meaning: Meaning, artifact: Artifact) -> None:
        claim_outputs(meaning, artifact, settings_of(artifact).outputs, FOLDER, "binary")

    def actions(self, manifest: Manifest, artifact: Artifact) -> list[str]:
        settings = settings_of(artifact)
        return [*run_actions(settings),
                f"collect {', '.join(settings.outputs)} -> dist/{manifest.release}/{FOLDER}/"]

    def describe(self, manifest: Manifest, artifact: Artifact) -> dict[str, Any]:
        settings = settings_of(artifact)
        return {**run_describe(settings), "outputs": list(settings.outputs)}

    def needs_docker(self, artifact: Artifact) -> bool:
        return settings_of(artifact).builder is not None

    def builder_image(self, artifact: Artifact) -> str | None:
        return settings_of(artifact).builder

    def host_command(self, artifact: Artifact) -> str | tuple[str, ...] | None:
        return host_command(settings_of(artifact))

    def key_inputs(self, manifest: Manifest, artifact: Artifact, commit: str) -> dict[str, Any]:
        return {}

    def build(self, job: Job) -> ArtifactOutput:
        from orchestrator.builders.files import build_files

        return build_files(job, settings_of(job.artifact), FOLDER)

    def recorded_problems(self, manifest: Manifest, artifact: Artifact, entry: ArtifactEntry,
                          commit: str) -> Iterator[str]:
        return file_problems(artifact, entry, settings_of(artifact).outputs, FOLDER)


KIND = Binary()
