"""Kind ``image``: a Docker image built through the Engine API (classic builder) from a
Dockerfile in the checkout, tagged from templates, labelled with OCI annotations."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator import imageref, schema
from orchestrator.kinds.running import RUN_FIELDS, RunSettings, host_command, run_actions, run_describe, run_values
from orchestrator.model import Pairs, render
from orchestrator.schema import Field

if TYPE_CHECKING:
    from orchestrator.builders.common import Job
    from orchestrator.model import Artifact, Defaults, Manifest, Repo
    from orchestrator.outputs import ArtifactOutput
    from orchestrator.record import ArtifactEntry
    from orchestrator.semantics import Meaning

NAME = "image"
DEFAULT_TAGS = ("{registry}{name}:{tag}",)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings(RunSettings):
    dockerfile: str = "Dockerfile"
    context: str = "."
    buildargs: Pairs = ()
    target: str | None = None
    tags: tuple[str, ...] = DEFAULT_TAGS  # templates; see image_refs()


def settings_of(artifact: Artifact) -> Settings:
    assert isinstance(artifact.settings, Settings), artifact.type
    return artifact.settings


def image_refs(manifest: Manifest, artifact: Artifact, commit: str | None = None) -> tuple[str, ...]:
    """The image references of an image artifact, its templates rendered.

    ``{commit}``/``{short_commit}`` need the resolved commit: without a pin (or the
    ``commit`` argument) a template that uses them is returned unrendered.
    """
    repo = manifest.repos[artifact.repo]
    commit = commit or repo.commit
    values = {
        "release": manifest.release,
        "repo": repo.name,
        "ref": repo.ref,
        "registry": manifest.defaults.registry,
        "name": artifact.name,
        "commit": commit or "{commit}",
        "short_commit": commit[:12] if commit else "{short_commit}",
    }
    values["tag"] = render(manifest.defaults.tag, values)
    return tuple(render(template, values) for template in settings_of(artifact).tags)


class Image:
    name = NAME
    summary = "a Docker image built from a Dockerfile in the checkout"
    fields: Mapping[str, Field] = {
        **RUN_FIELDS,
        "command": Field(kind="command", description="Optional step run before the image build."),
        "dockerfile": Field(kind="file", description="Dockerfile, relative to the checkout.", default="Dockerfile"),
        "context": Field(kind="path", description="Build context, relative to the checkout.", default="."),
        "buildargs": Field(kind="buildargs", description="Docker build arguments.", default={}),
        "target": Field(kind="nonempty", description="Multi-stage build target."),
        "tags": Field(kind="templates", description="Image references (templates); default {registry}{name}:{tag}.",
                      default=list(DEFAULT_TAGS)),
    }
    produces_files = False

    def settings(self, raw: Mapping[str, Any], defaults: Defaults) -> Settings:
        return Settings(
            **run_values(raw, defaults),
            dockerfile=raw.get("dockerfile", "Dockerfile"),
            context=raw.get("context", "."),
            buildargs=tuple((raw.get("buildargs") or {}).items()),
            target=raw.get("target"),
            tags=tuple(raw.get("tags", DEFAULT_TAGS)),
        )

    def check(self, meaning: Meaning, artifact: Artifact) -> None:
        """Every rendered reference valid, and built by this artifact alone."""
        seen: set[str] = set()
        repo = meaning.manifest.repos[artifact.repo]
        for i, ref in enumerate(image_refs(meaning.manifest, artifact, _commit_for_checks(repo))):
            where = self.template_path(meaning, artifact, i)
            if (why := imageref.problem(ref)) is not None:
                meaning.add(where, f"{ref!r} is not a valid image reference: {why}", self.bad_ref_hint(meaning,
                            artifact, i), at_key=where == meaning.artifact_path(artifact))
            elif ref not in seen:  # two templates of one artifact may render alike ({tag} = {short_commit})
                seen.add(ref)
                if owner := meaning.claim(f"image:{ref}", artifact, ref):
                    meaning.add(where, f"image {ref!r} is also built by {owner[0]!r}: each build would re-tag it",
                                "give each image artifact its own tags")

    @staticmethod
    def bad_ref_hint(meaning: Meaning, artifact: Artifact, index: int) -> str:
        manifest = meaning.manifest
        template = settings_of(artifact).tags[index]
        used = [f for f in schema.TEMPLATE_FIELDS if "{" + f + "}" in template]
        if "tag" in used:
            used += [f for f in schema.TEMPLATE_FIELDS if "{" + f + "}" in manifest.defaults.tag]
        repo = manifest.repos[artifact.repo]
        values = {"release": manifest.release, "repo": repo.name, "ref": repo.ref,
                  "registry": manifest.defaults.registry, "name": artifact.name}
        shown = [f"{{{f}}} = {values[f]!r}" for f in dict.fromkeys(used) if values.get(f)]
        hint = "image names are lower case; tags are letters, digits, '_', '.', '-' (at most 128)"
        return f"rendered from {template!r} with " + ", ".join(shown) + "; " + hint if shown else hint

    @staticmethod
    def template_path(meaning: Meaning, artifact: Artifact, index: int) -> tuple[str | int, ...]:
        """Where the template that made reference ``index`` is written: the artifact's
        ``tags[index]``, else ``defaults.tag`` when the default template uses it."""
        if "tags" in meaning.raw(artifact):
            return (*meaning.artifact_path(artifact), "tags", index)
        if "tag" in (meaning.doc.root.get("defaults") or {}):
            return ("defaults", "tag")
        return meaning.artifact_path(artifact)

    def actions(self, manifest: Manifest, artifact: Artifact) -> list[str]:
        settings = settings_of(artifact)
        args = "".join(f" --build-arg {k}={v}" for k, v in settings.buildargs)
        target = f" --target {settings.target}" if settings.target else ""
        tags = "".join(f" -t {ref}" for ref in image_refs(manifest, artifact))
        return [*run_actions(settings), f"docker build -f {settings.dockerfile}{args}{target}{tags} "
                                        f"--network {settings.network} {settings.context}"]

    def describe(self, manifest: Manifest, artifact: Artifact) -> dict[str, Any]:
        settings = settings_of(artifact)
        return {
            **run_describe(settings),
            "dockerfile": settings.dockerfile,
            "context": settings.context,
            "buildargs": dict(settings.buildargs),
            "target": settings.target,
            "tags": list(settings.tags),
            "images": list(image_refs(manifest, artifact)),
        }

    def needs_docker(self, artifact: Artifact) -> bool:
        return True

    def builder_image(self, artifact: Artifact) -> str | None:
        return settings_of(artifact).builder

    def host_command(self, artifact: Artifact) -> str | tuple[str, ...] | None:
        return host_command(settings_of(artifact))

    def key_inputs(self, manifest: Manifest, artifact: Artifact, commit: str) -> dict[str, Any]:
        return {"images": list(image_refs(manifest, artifact, commit))}

    def build(self, job: Job) -> ArtifactOutput:
        from orchestrator.builders.image import build_image

        return build_image(job, settings_of(job.artifact), image_refs(job.manifest, job.artifact, job.source.commit))

    def recorded_problems(self, manifest: Manifest, artifact: Artifact, entry: ArtifactEntry,
                          commit: str) -> Iterator[str]:
        if entry.files:
            yield f"an image, yet it records files: {', '.join(f.path for f in entry.files)}"
        expected = image_refs(manifest, artifact, commit)
        if len(entry.images) != 1:
            yield f"records {len(entry.images)} images, an image artifact has one"
        elif entry.images[0].refs != expected:
            yield f"records image refs {', '.join(entry.images[0].refs) or '(none)'}, " \
                  f"the manifest implies {', '.join(expected)}"


def _commit_for_checks(repo: Repo) -> str:
    """The pin, or a stand-in that differs per repo: the real commit is known only
    after fetching, and two unpinned repos must not look as if they shared one."""
    return repo.commit or hashlib.sha1(repo.name.encode()).hexdigest()


KIND = Image()
