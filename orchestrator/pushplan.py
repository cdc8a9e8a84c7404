"""What a publish would push, and every reason it must push nothing.

``publish`` asks here, in this order, before any push: the record is the release the
manifest names and every artifact of it is ok (``check_statuses``); its files and record
hold up (``check_integrity``); each reference receives one image (``targets_of``); and
the engine has every image with its recorded id (``preflight``). Any refusal is one
PublishRefused listing every problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator import hints, imageref
from orchestrator.conformance import build_command, record_checks
from orchestrator.engine.protocol import ContainerEngine
from orchestrator.errors import InputError, OrchestratorError, reason
from orchestrator.imageref import split_registry
from orchestrator.integrity import file_checks
from orchestrator.manifest import IMAGE_REF_RE, Manifest
from orchestrator.plan import select
from orchestrator.record import Release
from orchestrator.redact import redact
from orchestrator.sandbox import DEMO_REGISTRY


class PublishRefused(OrchestratorError):
    """Nothing was pushed: some artifact is not ok, or an image is not as recorded."""

    def __init__(self, headline: str, problems: Sequence[tuple[str, str]], *, hint: str) -> None:
        super().__init__(headline, hint=hint)
        self.problems = tuple(problems)

    def __str__(self) -> str:
        lines = [self.message, *(f"  {name}: {why}" for name, why in self.problems)]
        return redact("\n".join(lines) + f"\n  hint: {self.hint}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One reference to push: the recorded image of one artifact, under its destination name."""

    artifact: str
    index: int  # position in the artifact's images
    source: str  # the recorded ref
    ref: str  # where it goes
    id: str


def retarget(ref: str, registry: str, default_registry: str = "") -> str:
    """``ref`` under ``registry``: the manifest's registry prefix (or any registry host) replaced."""
    if default_registry and ref.startswith(default_registry):
        return registry + ref[len(default_registry):]
    return registry + split_registry(ref)[1]


def selected_names(manifest: Manifest, names: Sequence[str] | None) -> tuple[str, ...]:
    return tuple(manifest.artifacts) if names is None else select(manifest, names)

def check_statuses(manifest: Manifest, release: Release, selected: Sequence[str]) -> None:
    """Refuse unless the whole release is ok, whatever the selection: publishing part of a
    release whose other artifacts failed would put half a release in the registry."""
    problems: list[tuple[str, str]] = []
    if release.release != manifest.release:
        problems.append(("release.json", f"records release {release.release!r}, not {manifest.release!r}"))
    if release.status == "building":
        problems.append(("release.json", "status building: a build is replacing its files, or was interrupted"))
    if release.status == "partial":
        problems.append(("release.json", f"status partial: shard {release.shard or '?'}'s part of the release; "
                                         "publish the assembled release (invoke build --all --assemble)"))
    for name, artifact in release.artifacts.items():
        if not artifact.built:
            why = reason(name, artifact.error)
            problems.append((name, artifact.status + (f": {why}" if why else "")))
    for name in selected:
        if name not in release.artifacts:
            problems.append((name, "not built (not in release.json)"))
    if release.status != "ok" and not problems:
        problems.append(("release.json", f"status {release.status}"))
    if problems:
        raise PublishRefused(
            f"refusing to publish release {release.release}: {len(problems)} problem(s); only a release whose every "
            "artifact built ok is published, as a registry must never hold half a release; nothing was pushed",
            problems, hint=f"fix and rebuild them ({build_command(manifest)}), then publish again")


def check_integrity(release_dir: Path, manifest: Manifest, release: Release) -> None:
    """Refuse when the files or the record do not hold up: a record edited from failed
    to ok, a changed file, an output the manifest implies and the record lacks."""
    problems = [(check.what, check.detail) for check in (*record_checks(manifest, release),
                                                         *file_checks(release_dir, release))
                if check.ok is False]
    if problems:
        raise PublishRefused(
            f"refusing to publish release {release.release}: it does not match its record and manifest "
            f"({len(problems)} problem(s)); nothing was pushed",
            problems, hint=f"`{hints.command('verify', '--manifest', str(manifest.path))}` shows every check; "
                           f"rebuild the release ({build_command(manifest, ' --force')})")


def check_destination(manifest: Manifest, registry: str | None) -> None:
    """The demo's images are named in the reserved .invalid domain (RFC 2606), which no
    resolver answers: refuse at once, rather than after a DNS lookup and the engine's retries."""
    if registry is None and manifest.defaults.registry == DEMO_REGISTRY:
        raise InputError(f"the demo's images are named under {DEMO_REGISTRY}, which no registry answers",
                         hint="publish them with --registry HOST[:PORT]/ (e.g. 127.0.0.1:5000/)")


def targets_of(manifest: Manifest, release: Release, selected: Sequence[str], registry: str | None) -> list[Target]:
    if registry is not None and not valid_registry(registry):
        raise InputError(f"registry {registry!r} is not a registry prefix",
                         hint="give host[:port]/, no scheme, with the trailing '/': 127.0.0.1:5000/ or quay.io/calico/")
    targets: list[Target] = []
    for name in selected:
        for index, image in enumerate(release.artifacts[name].images):
            for ref in image.refs:
                dest = ref if registry is None else retarget(ref, registry, manifest.defaults.registry)
                if not IMAGE_REF_RE.match(dest):
                    raise InputError(f"{dest!r} ({name}) is not a valid image reference",
                                     hint="check --registry: lower-case host, port and path")
                targets.append(Target(artifact=name, index=index, source=ref, ref=dest, id=image.id))
    return one_image_per_ref(release, targets)


def one_image_per_ref(release: Release, targets: Sequence[Target]) -> list[Target]:
    """Each reference pushed once, with one image. ``--registry`` replaces registry hosts,
    so references that differ only by host fold into one: one image under both is pushed
    once; two images, in this run or recorded as pushed there by another artifact, would
    replace one another, leaving an artifact under no name while the record says it landed."""
    found: dict[str, tuple[str, str, str]] = {  # ref -> (artifact, source, id)
        ref: (name, f"{ref} (recorded as pushed)", landed.id)
        for name, artifact in release.artifacts.items() for image in artifact.images
        for ref, landed in image.pushed.items()}
    unique: dict[str, Target] = {}
    for target in targets:
        artifact, source, image_id = found.setdefault(target.ref, (target.artifact, target.source, target.id))
        if image_id != target.id and artifact != target.artifact:
            raise InputError(
                f"{target.ref} would receive two images: {source} ({artifact}, {image_id}) and "
                f"{target.source} ({target.artifact}, {target.id}); one would replace the other",
                hint="these references differ only by registry, which --registry replaces: publish them "
                     "without --registry, or under another --registry")
        unique.setdefault(target.ref, target)
    return list(unique.values())


def valid_registry(registry: str) -> bool:
    """A registry host (and an optional namespace) to push under: the manifest's rule for
    ``defaults.registry``, and its first part must be a registry, not a Docker Hub user."""
    return imageref.registry_problem(registry) is None and imageref.is_registry_host(registry.partition("/")[0])


def is_pushed(release: Release, target: Target) -> bool:
    landed = release.artifacts[target.artifact].images[target.index].pushed.get(target.ref)
    return landed is not None and landed.id == target.id


def preflight(engine: ContainerEngine, targets: Sequence[Target], manifest: Manifest) -> None:
    problems: list[tuple[str, str]] = []
    for source, image_id in dict.fromkeys((t.source, t.id) for t in targets):
        actual = engine.image_id(source)
        if actual is None:
            problems.append((source, f"not in the Docker engine (release.json records {image_id})"))
        elif actual != image_id:
            problems.append((source, f"is {actual} in the Docker engine, release.json records {image_id}"))
    if problems:
        raise PublishRefused(
            f"refusing to publish: {len(problems)} image{'s' if len(problems) > 1 else ''} not in the Docker engine "
            "as recorded; nothing was pushed",
            problems, hint=f"rebuild the release on this engine ({build_command(manifest)}), or load the recorded "
                           "images")
