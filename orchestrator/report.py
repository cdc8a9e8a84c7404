"""Writing a run's outcome into dist/<release>/: SHA256SUMS, provenance.json, release.json.

Written after every artifact finished, in that order, release.json last: the record
says ok only once everything it vouches for is on disk (and fsync'ed). A run that
rebuilds anything has invalidated the old record first (``record.invalidate``), so
an interrupted run leaves a record that says "building", never an ok over new bytes;
so does a cached run whose SHA256SUMS differs from the one on disk.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Collection, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator import __version__, procs, provenance, record
from orchestrator.execute import STOPPED, Result
from orchestrator.fileops import TEMP_NAME, fsync_files, read_limited, write_atomic
from orchestrator.integrity import damage
from orchestrator.manifest import Manifest
from orchestrator.outputs import Source
from orchestrator.plan import build_order
from orchestrator.record import ArtifactEntry, Image, ManifestEntry, Release, RepoEntry
from orchestrator.redact import redact_url

if TYPE_CHECKING:
    from orchestrator.signing import Signer


def _entry(manifest: Manifest, result: Result, workspace: Path) -> ArtifactEntry:
    artifact = manifest.artifacts[result.artifact]
    return ArtifactEntry(
        repo=artifact.repo,
        type=artifact.type,
        status=result.status,
        files=result.output.files,
        images=tuple(Image(id=i.id, refs=i.refs, labels=i.labels, layers=i.layers) for i in result.output.images),
        duration=round(result.duration, 3),
        log=_shown(result.log, workspace),
        error=result.error,
        cache_key=result.cache_key,
        restored_from=result.restored_from,
    )


def _shown(path: Path | None, workspace: Path) -> str | None:
    if path is None:
        return None
    return str(path.relative_to(workspace)) if path.is_relative_to(workspace) else str(path)


def _carried(manifest: Manifest, previous: Release, name: str, old: ArtifactEntry,
             repos: Mapping[str, RepoEntry], release_dir: Path, artifacts: Mapping[str, ArtifactEntry]) -> bool:
    """Whether a previous run's artifact, not rebuilt now, still belongs to the release:
    recorded under this very manifest (an artifact built from another recipe must not be
    vouched for under this manifest's sha256), its repo at the same commit, everything it
    requires or stages in the new record with the cache key it had when it was built from
    it (a dependency rebuilt from a moved branch changed what this one would be built
    from), its files all there and unchanged."""
    if previous.manifest.sha256 != manifest.sha256 or not old.built:
        return False
    if name not in manifest.artifacts or manifest.artifacts[name].repo != old.repo:
        return False
    old_repo = previous.repos.get(old.repo)
    if old_repo is None or (old.repo in repos and repos[old.repo].commit != old_repo.commit):
        return False
    for dep in manifest.artifacts[name].dependencies:
        now, then = artifacts.get(dep), previous.artifacts.get(dep)
        if now is None or then is None or not now.built or now.cache_key is None or now.cache_key != then.cache_key:
            return False
    return all(damage(release_dir, f) is None for f in old.files)


def write_release(manifest: Manifest, sources: Mapping[str, Source], results: Mapping[str, Result], *,
                  release_dir: Path, workspace: Path, started: float, stopped: Collection[str] = (),
                  signer: Signer | None = None, shard: str | None = None) -> Release:
    """Write SHA256SUMS, provenance.json (signed by ``signer``, if any) and release.json
    into ``release_dir``; return the record.

    ``stopped``: artifacts an interrupt kept from finishing. Their earlier build is carried
    over when it still holds (as for any artifact not built now), else they are recorded
    as not started; either way the release is at best "incomplete", never ok. ``shard``:
    the record is one shard's (status "partial" unless something failed).

    Artifacts built by earlier runs of the same release from the same manifest and not
    rebuilt now are carried over when their files are intact and their repo is still at
    the same commit, so ``build felix`` after ``build --all`` keeps a whole record.
    ``shard`` ("K/N") marks one shard's record: its status is never ok, but ``partial``
    (or ``failed``), so that no verify or publish takes part of a release for all of it.
    """
    artifacts = {name: _entry(manifest, result, workspace) for name, result in results.items()}
    repos = {name: RepoEntry(url=redact_url(s.url), ref=s.ref, commit=s.commit, commit_time=s.commit_time)
             for name, s in sources.items()}
    previous = record.read_previous(release_dir)
    if previous is not None:
        for name, old in previous.artifacts.items():
            if name in artifacts:
                artifacts[name] = _keep_pushed(artifacts[name], old)
        for name in build_order(manifest):  # dependencies first: each is judged knowing whether they stay
            entry = previous.artifacts.get(name)
            if entry is not None and name not in artifacts and \
                    _carried(manifest, previous, name, entry, repos, release_dir, artifacts):
                artifacts[name] = replace(entry, carried_over=True)
                repos.setdefault(entry.repo, previous.repos[entry.repo])
    for name in stopped:
        artifacts.setdefault(name, _entry(manifest, Result(artifact=name, status="not-started", error=STOPPED),
                                          workspace))
    order = list(manifest.artifacts)
    artifacts = dict(sorted(artifacts.items(), key=lambda item: order.index(item[0])))
    repo_order = list(manifest.repos)
    repos = dict(sorted(repos.items(), key=lambda item: repo_order.index(item[0])))
    status = _status({a.status for a in artifacts.values()}, interrupted=bool(stopped))
    release = Release(
        release=manifest.release,
        status=status if shard is None or status == "failed" else "partial",
        shard=shard,
        manifest=ManifestEntry(path=recorded_manifest_path(manifest.path, workspace), sha256=manifest.sha256),
        started=_iso(started),
        finished=_iso(datetime.datetime.now(datetime.UTC).timestamp()),
        orchestrator=__version__,
        repos=repos,
        artifacts=artifacts,
    )
    release_dir.mkdir(parents=True, exist_ok=True)
    _sweep_leftovers(release_dir)
    if previous is not None:
        replaced = {name for name, result in results.items() if result.status in ("ok", "restored")}
        _remove_stale(release_dir, previous, release, rebuilt=replaced)
    if previous is not None and previous.status != "building" and signer is None and not stopped \
            and _unchanged(previous, release, release_dir):
        # A no-op: every file and image was found intact as recorded. The record,
        # SHA256SUMS and provenance.json stay as the run that made them wrote them (a key
        # given now signs them again, below).
        return previous
    fsync_files(release_dir, (f.path for a in release.built().values() for f in a.files))
    sums = record.sums_text(release).encode()
    if previous is not None and previous.status != "building" and _current(release_dir / record.SUMS) != sums:
        # A run that rebuilt nothing still changes the release when an artifact leaves it:
        # the old record must not say ok beside the new SHA256SUMS, even for an instant.
        record.invalidate(release_dir)
    write_atomic(release_dir / record.SUMS, sums)
    provenance.write_provenance(release, release_dir, sign=signer.envelope if signer else None)
    record.write(release_dir, release)
    return release


def _status(statuses: set[str], *, interrupted: bool) -> record.ReleaseStatus:
    status = record.release_status(statuses)
    return "incomplete" if interrupted and status == "ok" else status


def _unchanged(previous: Release, release: Release, release_dir: Path) -> bool:
    """``release`` says what ``previous`` said but for when it was written (and how long
    finding a cached artifact took), and the record files on disk are exactly what
    ``previous`` implies."""
    kept = {name: replace(entry, duration=previous.artifacts[name].duration)
            if entry.status == "cached" and name in previous.artifacts else entry
            for name, entry in release.artifacts.items()}
    same_times = replace(release, started=previous.started, finished=previous.finished, artifacts=kept)
    if record.encode(same_times) != record.encode(previous):
        return False
    return (_current(release_dir / record.SUMS) == record.sums_text(previous).encode()
            and _current(release_dir / provenance.FILENAME) == provenance.encode(previous))


def recorded_manifest_path(path: Path, workspace: Path) -> str:
    """How the record names the manifest: relative to the workspace when it lies inside it
    (so the record finds it again wherever the workspace is, and from whichever directory
    the build was run), else absolute."""
    absolute, root = Path(os.path.abspath(path)), Path(os.path.abspath(workspace))
    return absolute.relative_to(root).as_posix() if absolute.is_relative_to(root) else str(absolute)


def recorded_manifest(release_dir: Path, recorded: str) -> Path:
    """The manifest a record names, as a path: a relative one is relative to the workspace
    that holds ``release_dir`` (``<workspace>/dist/<release>``)."""
    path = Path(recorded)
    return path if path.is_absolute() else Path(os.path.abspath(release_dir)).parent.parent / path


def _remove_stale(release_dir: Path, previous: Release, release: Release, *, rebuilt: set[str]) -> None:
    """Remove the files an artifact rebuilt now published before and no longer makes (its
    outputs changed): left there, no record would account for them. Only files exactly as
    the old record has them (ours, unchanged) go; anything else stays for verify to name."""
    kept = {f.path for a in release.built().values() for f in a.files}
    for name in rebuilt:
        old = previous.artifacts.get(name)
        for file in old.files if old is not None else ():
            if file.path not in kept and damage(release_dir, file) is None:
                with contextlib.suppress(FileNotFoundError):
                    (release_dir / file.path).unlink()


def _sweep_leftovers(release_dir: Path) -> None:
    """Remove temp files that killed runs left in the release directory (their writer's
    pid is gone): verify would rightly report them, and nothing will ever finish them."""
    for top, dirs, files in os.walk(release_dir):
        dirs[:] = [d for d in dirs if not (Path(top) / d).is_symlink()]
        for name in files:
            match = TEMP_NAME.fullmatch(name)
            if match and int(match["pid"]) != os.getpid() and not procs.alive(int(match["pid"])):
                (Path(top) / name).unlink(missing_ok=True)


def _current(path: Path) -> bytes | None:
    """The bytes of the record file at ``path`` now, None when there are none to read."""
    try:
        return read_limited(path)
    except OSError:
        return None


def _keep_pushed(current: ArtifactEntry, previous: ArtifactEntry) -> ArtifactEntry:
    """Keep the registry digests of images that are still the same image (same id):
    a cached rebuild must not make an unchanged, published release look unpublished."""
    pushed_by_id = {image.id: image.pushed for image in previous.images if image.pushed}
    images = tuple(replace(i, pushed=pushed_by_id.get(i.id, i.pushed)) for i in current.images)
    return replace(current, images=images)


def _iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
