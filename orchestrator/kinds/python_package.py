"""Kind ``python-package``: an sdist and a wheel (by default), published to
dist/<release>/python/, the sdist normalised so that two builds give the same bytes."""

from __future__ import annotations

import sys
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

NAME = "python-package"
FOLDER = "python"
# On the host this runs with the orchestrator's own interpreter (builders/common), which
# has `build` and setuptools: there is no network to fetch an isolated backend.
DEFAULT_COMMAND = ("python3", "-m", "build", "--sdist", "--wheel", "--no-isolation", "--outdir", "dist", ".")
DEFAULT_OUTPUTS = ("dist/*.tar.gz", "dist/*.whl")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings(RunSettings):
    outputs: tuple[str, ...] = DEFAULT_OUTPUTS


def settings_of(artifact: Artifact) -> Settings:
    assert isinstance(artifact.settings, Settings), artifact.type
    return artifact.settings


class PythonPackage:
    name = NAME
    summary = "an sdist and a wheel, published to dist/<release>/python/"
    fields: Mapping[str, Field] = {
        **RUN_FIELDS,
        "command": Field(kind="command", description="Defaults to building an sdist and a wheel into dist/."),
        "outputs": Field(kind="outputs", description="Defaults to dist/*.tar.gz and dist/*.whl."),
    }
    produces_files = True

    def settings(self, raw: Mapping[str, Any], defaults: Defaults) -> Settings:
        return Settings(**run_values(raw, defaults, command=DEFAULT_COMMAND),
                        outputs=tuple(raw.get("outputs") or DEFAULT_OUTPUTS))

    def check(self, meaning: Meaning, artifact: Artifact) -> None:
        claim_outputs(meaning, artifact, settings_of(artifact).outputs, FOLDER, "python-package")

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
        command = host_command(settings_of(artifact))
        if command == DEFAULT_COMMAND:  # runs with the orchestrator's own interpreter (builders/common)
            return (sys.executable, *DEFAULT_COMMAND[1:])
        return command

    def key_inputs(self, manifest: Manifest, artifact: Artifact, commit: str) -> dict[str, Any]:
        return {}

    def build(self, job: Job) -> ArtifactOutput:
        from orchestrator.builders.files import build_files
        from orchestrator.builders.normalize import normalize_tar_gz

        def normalise_sdists(job: Job, found: list[Any]) -> None:
            for output in found:
                if output.name.endswith(".tar.gz"):
                    normalize_tar_gz(job.source.path, output.real, job.source.commit_time, artifact=job.artifact.name)
                    job.log(f"normalized {output.name}: times clamped to SOURCE_DATE_EPOCH, owner 0/0")

        settings = settings_of(job.artifact)
        default = settings.command == DEFAULT_COMMAND
        return build_files(job, settings, FOLDER, after=normalise_sdists, own_interpreter=default)

    def recorded_problems(self, manifest: Manifest, artifact: Artifact, entry: ArtifactEntry,
                          commit: str) -> Iterator[str]:
        return file_problems(artifact, entry, settings_of(artifact).outputs, FOLDER)


KIND = PythonPackage()
