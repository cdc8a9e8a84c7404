"""Does the record describe a release of *this* manifest, built completely?

A record can be internally consistent and still lie: a failed artifact flipped to
"ok", an artifact with no outputs, image refs that are not the manifest's, a repo at
another URL. Each artifact kind implies outputs (``Kind.recorded_problems``: a binary's
files in ``bin/`` matching its patterns, a library's one archive, an image's rendered
references...), checked here against the manifest.

Used by ``verify`` (to report) and ``publish`` (to refuse).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from orchestrator import hints, kinds, record
from orchestrator.errors import OrchestratorError
from orchestrator.integrity import Check
from orchestrator.model import Artifact, Manifest
from orchestrator.record import ArtifactEntry, Release
from orchestrator.redact import redact_url


def build_command(manifest: Manifest, flags: str = "") -> str:
    """The command that builds ``manifest``'s release, naming the manifest: a hint without
    it would build the default manifest's release (the real one, for the demo's)."""
    return hints.command("build", "--all", *flags.split(), "--manifest", str(manifest.path))


class WrongManifestError(OrchestratorError):
    """The release directory was built from another manifest than the one given."""

    def __init__(self, file: str, release: Release, manifest: Manifest) -> None:
        super().__init__(
            f"{file} was built from another manifest: {release.manifest.path} (sha256 {release.manifest.sha256}), "
            f"not {manifest.path} (sha256 {manifest.sha256})",
            hint=f"pass --manifest {release.manifest.path} if that is the release you mean, or build this "
                 f"manifest's release first ({build_command(manifest)})",
        )


def require_built_from(manifest: Manifest, release: Release, file: str) -> None:
    """Refuse a record written for another manifest, before anything else is looked at."""
    if release.manifest.sha256 != manifest.sha256:
        raise WrongManifestError(file, release, manifest)


def release_of(manifest: Manifest, release_dir: Path) -> Release:
    """The record of ``release_dir``, read strictly, refused unless built from ``manifest``:
    the first thing verify and publish do, before the network or the Docker engine."""
    release = record.read(release_dir, build=build_command(manifest))
    require_built_from(manifest, release, str(release_dir / record.FILENAME))
    return release


def record_checks(manifest: Manifest, release: Release) -> Iterator[Check]:
    """The record against the manifest: release name, status, repos, and every artifact."""
    ok_name = release.release == manifest.release
    yield Check(what="release.json release", ok=ok_name, detail=release.release if ok_name else
                f"records release {release.release!r}, the manifest says {manifest.release!r}")
    yield _status_check(release)
    yield from _repo_checks(manifest, release)
    wrong = False
    for name, entry in release.artifacts.items():
        if problems := list(_artifact_problems(manifest, release, name, entry)):
            wrong = True
            yield Check(what=f"artifact {name}", ok=False, detail="; ".join(problems))
    if not wrong:
        yield Check(what="release.json artifacts", ok=True,
                    detail=f"all {len(release.artifacts)} match the manifest and record the outputs of their kind")
    missing = [name for name in manifest.artifacts if name not in release.artifacts]
    if missing:
        yield Check(what="artifacts not in this release", ok=None, detail="not built: " + ", ".join(missing))


def _status_check(release: Release) -> Check:
    implied = record.release_status({a.status for a in release.artifacts.values()})
    not_built = {name: a.status for name, a in release.artifacts.items() if not a.built}
    if release.status == "building":
        detail = "building: a build is replacing its files, or was interrupted; build again"
    elif release.status == "partial":
        detail = (f"partial: shard {release.shard or '?'}'s part of the release, never a whole one; assemble it "
                  "(invoke build --all --assemble --cache ...)")
    elif release.status != implied:
        detail = f"says {release.status}, but its artifacts make it {implied}" + (
            ": " + ", ".join(f"{name} {status}" for name, status in not_built.items()) if not_built else "")
    elif not_built or release.status != "ok":
        detail = "not complete: " + ", ".join(f"{name} {status}" for name, status in not_built.items())
    else:
        return Check(what="release.json status", ok=True, detail="every artifact ok")
    return Check(what="release.json status", ok=False, detail=detail)


def _repo_checks(manifest: Manifest, release: Release) -> Iterator[Check]:
    wrong = False
    for name, repo in release.repos.items():
        declared = manifest.repos.get(name)
        problem = None
        if declared is None:
            problem = "in release.json but not in the manifest"
        elif repo.url != redact_url(declared.url):
            problem = f"built from {repo.url}, the manifest says {redact_url(declared.url)}"
        elif repo.ref != declared.ref:
            problem = f"built from ref {repo.ref!r}, the manifest says {declared.ref!r}"
        if problem:
            wrong = True
            yield Check(what=f"repo {name}", ok=False, detail=problem)
    for name, entry in release.artifacts.items():
        if entry.built and entry.repo not in release.repos:
            wrong = True
            yield Check(what=f"repo {entry.repo}", ok=False, detail=f"{name} was built from it, but release.json "
                        "records no commit for it")
    if not wrong:
        yield Check(what="release.json repos", ok=True, detail=f"all {len(release.repos)} match the manifest")


def _artifact_problems(manifest: Manifest, release: Release, name: str, entry: ArtifactEntry) -> Iterator[str]:
    artifact = manifest.artifacts.get(name)
    if artifact is None:
        yield "in release.json but not in the manifest"
        return
    if entry.repo != artifact.repo:
        yield f"records repo {entry.repo!r}, the manifest says {artifact.repo!r}"
    if entry.type != artifact.type:
        yield f"records type {entry.type!r}, the manifest says {artifact.type!r}"
    if not entry.built:
        if entry.files or entry.images:
            yield f"{entry.status}, yet it records outputs"
        return
    if entry.error is not None:
        yield f"{entry.status}, yet it records an error: {entry.error.splitlines()[0] if entry.error else ''}"
    repo = release.repos.get(artifact.repo)
    if repo is not None and entry.repo == artifact.repo and entry.type == artifact.type:
        yield from _output_problems(manifest, artifact, entry, repo.commit)


def _output_problems(manifest: Manifest, artifact: Artifact, entry: ArtifactEntry, commit: str) -> Iterator[str]:
    return kinds.get(artifact.type).recorded_problems(manifest, artifact, entry, commit)
