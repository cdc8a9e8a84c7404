"""Kind ``library``: a reproducible source archive of the pinned commit
(``git archive``, gzip without a timestamp) at dist/<release>/src/<repo>-<ref>.tar.gz."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.model import Pairs
from orchestrator.schema import Field

if TYPE_CHECKING:
    from orchestrator.builders.common import Job
    from orchestrator.model import Artifact, Defaults, Manifest
    from orchestrator.outputs import ArtifactOutput
    from orchestrator.record import ArtifactEntry
    from orchestrator.semantics import Meaning

NAME = "library"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    prefix: str | None = None  # directory prefix inside the archive; None: <repo>-<ref>/
    stage: Pairs = ()  # a library stages nothing: it archives the commit itself


def settings_of(artifact: Artifact) -> Settings:
    assert isinstance(artifact.settings, Settings), artifact.type
    return artifact.settings


def archive_stem(repo: str, ref: str, commit: str | None) -> str:
    """``<repo>-<ref>``: the archive's file name (before .tar.gz) and its default directory
    prefix; a ref that is the commit itself is shortened to 12 hex digits."""
    return f"{repo}-{ref if ref != commit else ref[:12]}"


def archive_path(manifest: Manifest, artifact: Artifact, commit: str | None = None) -> str:
    """Where the archive is published, relative to dist/<release>/ (``commit``: the one
    built; by default the pin, which is the ref itself when the ref is a commit)."""
    repo = manifest.repos[artifact.repo]
    return f"src/{archive_stem(repo.name, repo.ref, commit or repo.commit)}.tar.gz"


class Library:
    name = NAME
    summary = "a reproducible source archive of the pinned commit"
    fields: Mapping[str, Field] = {
        "prefix": Field(kind="path", description="Directory prefix inside the source archive; default <repo>-<ref>/."),
    }
    produces_files = True

    def settings(self, raw: Mapping[str, Any], defaults: Defaults) -> Settings:
        return Settings(prefix=raw.get("prefix"))

    def check(self, meaning: Meaning, artifact: Artifact) -> None:
        name = archive_path(meaning.manifest, artifact)
        if owner := meaning.claim(name, artifact, "archive"):
            meaning.add(meaning.artifact_path(artifact), f"library {artifact.name!r} would write {owner[0]!r}'s "
                        f"archive dist/<release>/{name}", "declare one library artifact per repository", at_key=True)

    def actions(self, manifest: Manifest, artifact: Artifact) -> list[str]:
        repo = manifest.repos[artifact.repo]
        return [f"archive {repo.name}@{repo.ref} -> dist/{manifest.release}/src/ (git archive, sha256)"]

    def describe(self, manifest: Manifest, artifact: Artifact) -> dict[str, Any]:
        return {"prefix": settings_of(artifact).prefix}

    def needs_docker(self, artifact: Artifact) -> bool:
        return False

    def builder_image(self, artifact: Artifact) -> str | None:
        return None

    def host_command(self, artifact: Artifact) -> str | tuple[str, ...] | None:
        return None  # git archive is the orchestrator's own step, not a recipe

    def key_inputs(self, manifest: Manifest, artifact: Artifact, commit: str) -> dict[str, Any]:
        return {}

    def build(self, job: Job) -> ArtifactOutput:
        from orchestrator.builders.library import build_library

        stem = archive_stem(job.source.repo, job.source.ref, job.source.commit)
        prefix = (settings_of(job.artifact).prefix or stem).rstrip("/") + "/"
        return build_library(job, prefix=prefix, relative=f"src/{stem}.tar.gz")

    def recorded_problems(self, manifest: Manifest, artifact: Artifact, entry: ArtifactEntry,
                          commit: str) -> Iterator[str]:
        if entry.images:
            yield "a library, yet it records images"
        expected = archive_path(manifest, artifact, commit)
        paths = [f.path for f in entry.files]
        if paths != [expected]:
            yield f"records {', '.join(paths) or 'no files'}, a library is exactly {expected}"


KIND = Library()
