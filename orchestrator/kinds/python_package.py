"""Kind ``python-package``: an sdist and a wheel (by default), published to
dist/<release>/python/, the sdist normalised so that two builds give the same bytes."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.kinds.running import RUN_FIELDS, CommandFiles, FileSettings, run_values
from orchestrator.schema import Field

if TYPE_CHECKING:
    from orchestrator.builders.common import Job
    from orchestrator.model import Artifact, Defaults
    from orchestrator.outputs import ArtifactOutput

NAME = "python-package"
FOLDER = "python"
# On the host this runs with the orchestrator's own interpreter (builders/common), which
# has `build` and setuptools: there is no network to fetch an isolated backend.
DEFAULT_COMMAND = ("python3", "-m", "build", "--sdist", "--wheel", "--no-isolation", "--outdir", "dist", ".")
DEFAULT_OUTPUTS = ("dist/*.tar.gz", "dist/*.whl")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings(FileSettings):
    outputs: tuple[str, ...] = DEFAULT_OUTPUTS


def settings_of(artifact: Artifact) -> Settings:
    assert isinstance(artifact.settings, Settings), artifact.type
    return artifact.settings


class PythonPackage(CommandFiles):
    name = NAME
    folder = FOLDER
    summary = "an sdist and a wheel, published to dist/<release>/python/"
    fields: Mapping[str, Field] = {
        **RUN_FIELDS,
        "command": Field(kind="command", description="Defaults to building an sdist and a wheel into dist/."),
        "outputs": Field(kind="outputs", description="Defaults to dist/*.tar.gz and dist/*.whl."),
    }

    def settings(self, raw: Mapping[str, Any], defaults: Defaults) -> Settings:
        return Settings(**run_values(raw, defaults, command=DEFAULT_COMMAND),
                        outputs=tuple(raw.get("outputs") or DEFAULT_OUTPUTS))

    def host_command(self, artifact: Artifact) -> str | tuple[str, ...] | None:
        command = super().host_command(artifact)
        if command == DEFAULT_COMMAND:  # runs with the orchestrator's own interpreter (builders/common)
            return (sys.executable, *DEFAULT_COMMAND[1:])
        return command

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


KIND = PythonPackage()
