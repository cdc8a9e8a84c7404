"""What the kinds that run a command share: its manifest keys (command, builder, env,
stage, network), their typed settings, the plan lines and JSON for them, the checks of
file outputs published into one folder of dist/<release>/, and ``CommandFiles``, all
of a kind whose command makes such files but its fields, settings and build.

Not a kind itself: binary, image and python-package build on it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from orchestrator.model import Defaults, Pairs, command_text
from orchestrator.schema import Field

if TYPE_CHECKING:
    from orchestrator.model import Artifact, Manifest
    from orchestrator.record import ArtifactEntry
    from orchestrator.semantics import Meaning

_GLOB = frozenset("*?[")

RUN_FIELDS: dict[str, Field] = {
    "command": Field(kind="command", description="Run in the checkout: a string runs with sh -c, a list is argv."),
    "builder": Field(kind="image-ref", description="Image to run `command` in, on a copy of the checkout at /src."),
    "env": Field(kind="env", description="Extra environment for `command` (on top of defaults.env).", default={}),
    "stage": Field(
        kind="stage",
        description="Destination path in this checkout <- artifact whose output is copied there first.",
        default={},
    ),
    "network": Field(kind="nonempty", description="Docker network mode for builds (overrides defaults.network)."),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSettings:
    """The settings of an artifact that runs a command (on the host, or in ``builder``)."""

    command: str | tuple[str, ...] | None = None
    builder: str | None = None
    env: Pairs = ()  # defaults.env overlaid with the artifact's own env
    stage: Pairs = ()  # (destination path in this checkout, artifact name)
    network: str = "default"


def run_values(raw: Mapping[str, Any], defaults: Defaults, *, command: Any = None) -> dict[str, Any]:
    """The RunSettings keyword arguments from a manifest mapping, defaults applied;
    ``command`` is the kind's default command."""
    given = raw.get("command", command)
    return {
        "command": tuple(given) if isinstance(given, (list, tuple)) else given,
        "builder": raw.get("builder"),
        "env": tuple({**dict(defaults.env), **(raw.get("env") or {})}.items()),
        "stage": tuple((raw.get("stage") or {}).items()),
        "network": raw.get("network", defaults.network),
    }


def host_command(settings: RunSettings) -> str | tuple[str, ...] | None:
    """The command as it runs on the host; None when there is none or it runs in ``builder``."""
    return None if settings.builder else settings.command


def run_actions(settings: RunSettings) -> list[str]:
    """Plan lines: staging, then the command and where it runs."""
    actions = [f"stage {source} -> {dest}" for dest, source in settings.stage]
    if settings.command is not None:
        where = f"in {settings.builder}" if settings.builder else "on the host"
        actions.append(f"run {where}: {command_text(settings.command)}")
    return actions


def run_describe(settings: RunSettings) -> dict[str, Any]:
    """``manifest --json`` keys of the command part."""
    command = settings.command
    return {
        "command": list(command) if isinstance(command, tuple) else command,
        "builder": settings.builder,
        "env": dict(settings.env),
        "network": settings.network,
        "stage": dict(settings.stage),
    }


# -- file outputs published into one folder of dist/<release>/ -------------------------


def claim_outputs(meaning: Meaning, artifact: Artifact, outputs: tuple[str, ...], folder: str, what: str) -> None:
    """Claim each output's file in ``folder``: a literal name is its own claim; a glob is
    compared with the same glob of another artifact of the same repository (one checkout,
    so the same matches). Globs that may overlap otherwise are found at build time."""
    for i, output in enumerate(outputs):
        base = output.rstrip("/").rsplit("/", 1)[-1]
        glob = bool(_GLOB & set(base))
        owner = meaning.claim(f"{folder}/{artifact.repo}:{output}" if glob else f"{folder}/{base}", artifact, output)
        if owner is None:
            continue
        whose = f"{owner[0]!r}'s file" if owner[0] != artifact.name else f"output {owner[1]!r} of the same artifact"
        shown = f"pattern {output!r} (same checkout)" if glob else f"output {base!r}"
        meaning.add(meaning.key_path(artifact, "outputs", i),
                    f"{shown} would overwrite {whose} in dist/<release>/{folder}/",
                    f"{what} file names must be unique across the release")


def file_problems(artifact: Artifact, entry: ArtifactEntry, outputs: tuple[str, ...], folder: str) -> Iterator[str]:
    """A record of file outputs: every file in ``folder``, every pattern matched by one,
    every file named by a pattern, and no images."""
    if entry.images:
        yield f"a {artifact.type}, yet it records images"
    names = []
    for file in entry.files:
        path = PurePosixPath(file.path)
        if str(path.parent) != folder:
            yield f"records {file.path}, outside {folder}/ where {artifact.type} outputs go"
        names.append(path.name)
    for pattern in outputs:
        if not any(fnmatch.fnmatchcase(base, PurePosixPath(pattern).name) for base in names):
            yield f"output {pattern!r} is matched by no recorded file in {folder}/"
    patterns = [PurePosixPath(p).name for p in outputs]
    for base in names:
        if not any(fnmatch.fnmatchcase(base, p) for p in patterns):
            yield f"records {folder}/{base}, which none of its outputs names"


# -- a kind whose command makes files published into one folder ------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FileSettings(RunSettings):
    """The settings of a kind whose command makes files."""

    outputs: tuple[str, ...] = ()  # relative to the checkout (globs allowed)


class CommandFiles:
    """The part of a kind (binary, python-package) that a command's files published into
    ``folder`` of dist/<release>/ decide: a subclass adds its name, fields, settings and
    build, and settings that are ``FileSettings``."""

    name: str
    folder: str
    produces_files = True

    def files_of(self, artifact: Artifact) -> FileSettings:
        assert isinstance(artifact.settings, FileSettings), artifact.type
        return artifact.settings

    def check(self, meaning: Meaning, artifact: Artifact) -> None:
        claim_outputs(meaning, artifact, self.files_of(artifact).outputs, self.folder, self.name)

    def actions(self, manifest: Manifest, artifact: Artifact) -> list[str]:
        settings = self.files_of(artifact)
        return [*run_actions(settings),
                f"collect {', '.join(settings.outputs)} -> dist/{manifest.release}/{self.folder}/"]

    def describe(self, manifest: Manifest, artifact: Artifact) -> dict[str, Any]:
        settings = self.files_of(artifact)
        return {**run_describe(settings), "outputs": list(settings.outputs)}

    def needs_docker(self, artifact: Artifact) -> bool:
        return self.files_of(artifact).builder is not None

    def builder_image(self, artifact: Artifact) -> str | None:
        return self.files_of(artifact).builder

    def host_command(self, artifact: Artifact) -> str | tuple[str, ...] | None:
        return host_command(self.files_of(artifact))

    def key_inputs(self, manifest: Manifest, artifact: Artifact, commit: str) -> dict[str, Any]:
        return {}

    def recorded_problems(self, manifest: Manifest, artifact: Artifact, entry: ArtifactEntry,
                          commit: str) -> Iterator[str]:
        return file_problems(artifact, entry, self.files_of(artifact).outputs, self.folder)
