"""Push a finished release's images: all of it or nothing new, and record what landed.

Order: read release.json (strictly) -> refuse a release built from another manifest ->
refuse unless the whole release is ok -> refuse unless its files match SHA256SUMS and
release.json and the record has every output the manifest implies -> preflight (every
image present locally with its recorded id) -> tag for ``registry`` -> push one ref at a
time, recording each digest as it lands. Credentials come from the Docker config
(`docker login`), never from the manifest or from here.

Ctrl-C during a push waits (bounded) for the push in flight, so a reference that lands is
recorded (pushing.py); a second interrupt stops waiting and says its state is unknown.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator import provenance, pushing, record
from orchestrator.conformance import release_of
from orchestrator.engine.errors import EngineError, PushFailed
from orchestrator.engine.protocol import ContainerEngine
from orchestrator.errors import Interrupted, OrchestratorError, tail
from orchestrator.imageref import registry_of
from orchestrator.manifest import Manifest
from orchestrator.pushplan import (
    PublishRefused,
    Target,
    check_destination,
    check_integrity,
    check_statuses,
    is_pushed,
    preflight,
    retarget,
    selected_names,
    targets_of,
)
from orchestrator.record import Release
from orchestrator.redact import redact
from orchestrator.registryapi import ManifestDigests, RegistryUnreachable
from orchestrator.retrying import retried

if TYPE_CHECKING:
    from orchestrator.signing import Signer

__all__ = ["PublishFailed", "PublishRefused", "PublishReport", "Pushed", "format_report", "publish_release",
           "retarget"]

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Pushed:
    """One reference in the registry: which artifact, which image id, which digest."""

    artifact: str
    ref: str
    id: str
    digest: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishReport:
    """What ``publish_release`` did; ``format_report`` renders it."""

    release: str
    registry: str | None
    pushed: tuple[Pushed, ...]  # pushed by this run
    already: tuple[Pushed, ...]  # recorded as pushed by an earlier run, unchanged: not pushed again
    already_published: bool  # nothing to do: every ref was already pushed with the same image


class PublishFailed(OrchestratorError):
    """A push failed midway: ``landed`` are in the registry (and recorded), ``not_pushed`` are not."""

    def __init__(self, error: OrchestratorError, landed: Sequence[Pushed], not_pushed: Sequence[str], *,
                 unrecorded: Pushed | None = None) -> None:
        hint = f"{error.hint}, then publish again" if error.hint else "publish again"
        if isinstance(error, PushFailed) and error.problem == "other":
            hint = f"{registry_of(error.ref)} kept failing; publish again later"
        super().__init__(error.message, hint=hint)
        self.error, self.landed, self.not_pushed = error, tuple(landed), tuple(not_pushed)
        self.unrecorded = unrecorded  # landed, but its digest could not be written into the record

    def __str__(self) -> str:
        lines = [f"publishing stopped: {self.message}"]
        if isinstance(self.error, EngineError) and self.error.output.strip():
            lines += ["  last output:", tail(self.error.output, 5, "    ")]
        lines.append(f"  landed in the registry ({len(self.landed)}):" if self.landed else "  nothing landed")
        lines += [f"    {p.ref}@{p.digest}" for p in self.landed]
        if self.unrecorded is not None:
            lines.append(f"  landed but not recorded: {self.unrecorded.ref}@{self.unrecorded.digest}")
        lines.append(f"  not pushed ({len(self.not_pushed)}):")
        lines += [f"    {ref}" for ref in self.not_pushed]
        lines.append(f"  hint: {self.hint}; refs that landed are recorded in release.json and not pushed again")
        return redact("\n".join(lines))


def publish_release(
    release_dir: Path,
    manifest: Manifest,
    engine: ContainerEngine,
    *,
    artifacts: Sequence[str] | None = None,
    registry: str | None = None,
    log: Log,
    retries: int = 2,
    backoff: float = 1.0,
    on_bytes: Callable[[str, int, int], None] | None = None,
    signer: Signer | None = None,
    registry_client: ManifestDigests | None = None,
) -> PublishReport:
    """Push every image of the selected artifacts (default: all) of the release in ``release_dir``.

    Refuses, pushing nothing, unless every selected artifact is ok/cached and every image
    is in the engine with its recorded id. ``registry`` ("host:port/") re-tags every ref
    under that registry first. A push failing with a transient error (``problem="other"``:
    a 5xx, a reset connection) is retried ``retries`` times, ``backoff`` seconds doubling;
    refused credentials or an unreachable registry stop at once. Each pushed ref's digest
    is recorded in release.json (``images[i].pushed``) as soon as it lands, and
    provenance.json rewritten (and signed again by ``signer``; without one it is left unsigned).
    References recorded as pushed are first looked up in their registry (``registry_client``,
    default: the registry HTTP API with the Docker config's credentials): one deleted or
    pushed over since is pushed again; a registry that cannot be asked stops the publish.
    """
    check_destination(manifest, registry)
    release = release_of(manifest, release_dir)
    selected = selected_names(manifest, artifacts)
    check_statuses(manifest, release, selected)
    check_integrity(release_dir, manifest, release)
    targets = targets_of(manifest, release, selected, registry)
    recorded = [t for t in targets if is_pushed(release, t)]
    gone = _gone_from_registry(release, recorded, registry_client, log) if recorded else set()
    already = tuple(_landed(release, t) for t in recorded if t.ref not in gone)
    todo = [t for t in targets if not is_pushed(release, t) or t.ref in gone]
    if not todo:
        log(f"release {manifest.release}: no images to publish" if not targets else
            f"release {manifest.release} is already published: all {len(targets)} refs pushed with the same images")
        return PublishReport(release=manifest.release, registry=registry, pushed=(), already=already,
                             already_published=bool(targets))
    if already:
        log(f"{len(already)} refs already pushed with the same images; pushing the other {len(todo)}")
    pushed: list[Pushed] = []
    try:
        preflight(engine, todo, manifest)
        for target in todo:
            digest = _push_one(release_dir, engine, target, pushed, todo, log=log, retries=retries, backoff=backoff,
                               on_bytes=on_bytes, signer=signer)
            pushed.append(Pushed(artifact=target.artifact, ref=target.ref, id=target.id, digest=digest))
            log(f"pushed {target.ref}@{digest}")
    except KeyboardInterrupt:  # between pushes: nothing in flight
        raise _interrupted(pushed, todo, None) from None
    return PublishReport(release=manifest.release, registry=registry, pushed=tuple(pushed), already=already,
                         already_published=False)


def _gone_from_registry(release: Release, recorded: Sequence[Target], client: ManifestDigests | None,
                        log: Log) -> set[str]:
    """The references recorded as pushed that their registry no longer holds as recorded
    (deleted, or pushed over): the registry is asked, not release.json believed."""
    if client is None:
        from orchestrator.registryapi import RegistryAPI

        client = RegistryAPI()
    gone: set[str] = set()
    for target in recorded:
        digest = _landed(release, target).digest
        try:
            found = client.manifest_digest(target.ref)
        except RegistryUnreachable as e:
            raise OrchestratorError(
                f"cannot check that {e.registry} still holds the {len(recorded)} reference(s) release.json records "
                f"as pushed: {e.why}; nothing was pushed", hint=e.hint) from e
        if found is None:
            log(f"{target.ref} is no longer in the registry (deleted since it was pushed); pushing it again")
            gone.add(target.ref)
        elif found != digest:
            log(f"{target.ref} now names {found} in the registry, not the recorded {digest}; pushing the "
                "recorded image again")
            gone.add(target.ref)
    return gone


def _push_one(release_dir: Path, engine: ContainerEngine, target: Target, pushed: Sequence[Pushed],
              todo: Sequence[Target], *, log: Log, retries: int, backoff: float,
              on_bytes: Callable[[str, int, int], None] | None = None, signer: Signer | None = None) -> str:
    """Push ``target`` and record its digest (pushing.guarded); every way it can end
    becomes PublishFailed or Interrupted saying what landed."""
    def landed_now(digest: str) -> Pushed:
        return Pushed(artifact=target.artifact, ref=target.ref, id=target.id, digest=digest)

    try:
        progress = functools.partial(on_bytes, target.ref) if on_bytes is not None else None
        return pushing.guarded(functools.partial(_push_recorded, engine, target, log=log, retries=retries,
                                                 backoff=backoff, on_bytes=progress),
                               functools.partial(_record, release_dir, target, signer=signer, log=log),
                               ref=target.ref, log=log)
    except pushing.PushInterrupted as e:
        landed = [*pushed, landed_now(e.digest)] if e.digest else list(pushed)
        raise _interrupted(landed, todo, target.ref if e.unknown else None, failed=e.failed) from None
    except Interrupted:
        raise  # the engine was cancelled; what landed is recorded already
    except pushing.Unrecorded as e:
        if not isinstance(e.error, OrchestratorError):
            raise e.error from None
        done = {p.ref for p in pushed} | {target.ref}
        raise PublishFailed(e.error, pushed, [t.ref for t in todo if t.ref not in done],
                            unrecorded=landed_now(e.digest)) from e.error
    except OrchestratorError as e:
        done = {p.ref for p in pushed}
        raise PublishFailed(e, pushed, [t.ref for t in todo if t.ref not in done]) from e


def _interrupted(landed: Sequence[Pushed], todo: Sequence[Target], unknown: str | None, *,
                 failed: BaseException | None = None) -> Interrupted:
    """Exit 130, saying which refs landed (and are recorded), which did not, which is unknown."""
    done = {p.ref for p in landed}
    lines = ["interrupted while publishing"]
    lines.append(f"  landed and recorded in release.json ({len(landed)}):" if landed else "  nothing landed")
    lines += [f"    {p.ref}@{p.digest}" for p in landed]
    if unknown is not None:
        lines.append(f"  unknown: {unknown} was still being pushed; it may land without being recorded")
    if failed is not None:
        lines.append(f"  the push in flight failed: {str(failed).splitlines()[0]}")
    rest = [t.ref for t in todo if t.ref not in done and t.ref != unknown]
    if rest:
        lines.append(f"  not pushed ({len(rest)}):")
        lines += [f"    {ref}" for ref in rest]
    lines.append("  hint: publish again to push the rest; it is safe: a ref pushed again with the same image "
                 "gets the same digest")
    return Interrupted(redact("\n".join(lines)))


def format_report(report: PublishReport) -> str:
    """What was pushed (ref@digest), what was already there."""
    where = f" to {report.registry}" if report.registry else ""
    if report.already_published:
        head = f"release {report.release} is already published{where}; nothing pushed"
    else:
        head = f"published release {report.release}{where}: {len(report.pushed)} refs pushed"
    if not report.pushed and not report.already:
        head = f"release {report.release} has no images to publish"
    lines = [head, *(f"  {p.ref}@{p.digest}" for p in report.pushed)]
    lines += [f"  {p.ref}@{p.digest} (already pushed)" for p in report.already]
    return "\n".join(lines)


def _landed(release: Release, target: Target) -> Pushed:
    landed = release.artifacts[target.artifact].images[target.index].pushed[target.ref]
    return Pushed(artifact=target.artifact, ref=target.ref, id=target.id, digest=landed.digest)


class PushedOtherImage(OrchestratorError):
    """The engine pushed another image than the recorded one under a reference: it was
    re-tagged while it was pushed (image references are global to an engine)."""

    def __init__(self, target: Target, digest: str) -> None:
        super().__init__(
            f"{target.ref} was re-tagged in the Docker engine while it was pushed: the registry got another "
            f"image than the recorded {target.id} (manifest {digest}), which was not recorded",
            hint=f"stop whatever else tags {target.ref} on this engine (another build of this release?)")


# How often a reference re-tagged during its push is pointed back at the recorded image and
# pushed again before publishing gives up.
_PUSH_AS_RECORDED = 2


def _push_recorded(engine: ContainerEngine, target: Target, *, log: Log, retries: int, backoff: float,
                   on_bytes: Callable[[int, int], None] | None = None) -> str:
    """Push ``target.ref`` as the recorded image, and prove it was that image.

    A push sends whatever the reference names when it starts, and another build on the
    same engine may re-tag it at any time after the preflight. So the reference is pointed
    at the recorded id right before each push, and the digest that comes back must be the
    recorded image's (one the engine records for it, RepoDigests): otherwise another image
    went out under the release's name, and it is pushed again, or publishing stops.
    """
    for attempt in range(_PUSH_AS_RECORDED):
        engine.tag(target.id, target.ref)
        digest = _push(engine, target.ref, log=log, retries=retries, backoff=backoff, on_bytes=on_bytes)
        # The classic image store records the digest of what it pushed on the image; in the
        # containerd store an image's id is its manifest's digest, which is what it pushes.
        if digest == target.id or digest in engine.pushed_digests(target.id):
            return digest
        if attempt + 1 < _PUSH_AS_RECORDED:
            log(f"{target.ref} was re-tagged while it was pushed (the registry got manifest {digest} of another "
                f"image); pushing the recorded image {target.id} again")
    raise PushedOtherImage(target, digest)


def _push(engine: ContainerEngine, ref: str, *, log: Log, retries: int, backoff: float,
          on_bytes: Callable[[int, int], None] | None = None) -> str:
    attempt = 0

    def once() -> str:
        nonlocal attempt
        attempt += 1
        log(f"pushing {ref}" + (f" (attempt {attempt} of {retries + 1})" if attempt > 1 else ""))
        return engine.push(ref, log=log, on_bytes=on_bytes)

    def told(next_try: int, seconds: float, failed: object) -> None:
        log(redact(f"push of {ref} failed ({getattr(failed, 'reason', failed)}); retrying in {seconds:g}s"))

    # Only "other" (a 5xx, a reset connection, no digest) may pass by itself;
    # refused credentials or a wrong address fail the same way every time.
    return retried(once, retries=retries, backoff=backoff, on_retry=told,
                   transient_error=lambda e: isinstance(e, PushFailed) and e.problem == "other").value


def _record(release_dir: Path, target: Target, digest: str, *, signer: Signer | None = None,
            log: Log | None = None) -> None:
    """Add one landed ref to the record: provenance.json (and its signature) first,
    release.json last.

    Re-read first: only ``pushed`` is ours to change. In this order a kill in between
    leaves release.json without the ref, so the next publish pushes it again (same
    image, same digest) and rewrites both.
    """
    current = record.read(release_dir)
    artifact = current.artifacts.get(target.artifact)
    images = artifact.images if artifact is not None else ()
    if artifact is None or current.status != "ok" or target.index >= len(images) or \
            images[target.index].id != target.id:
        raise OrchestratorError(f"release.json changed while publishing: {target.source} is no longer the "
                                f"recorded image {target.id}", hint="a build ran meanwhile; publish again")
    image = images[target.index]
    landed = replace(image, pushed={**image.pushed, target.ref: record.Pushed(digest=digest, id=target.id)})
    updated = replace(artifact, images=(*images[:target.index], landed, *images[target.index + 1:]))
    release = replace(current, artifacts={**current.artifacts, target.artifact: updated})
    if provenance.write_provenance(release, release_dir, sign=signer.envelope if signer else None) and log:
        log(f"provenance.json changed and no signing key is configured (--sign-key): its old signature "
            f"{record.ENVELOPE} was removed, the release is unsigned until it is published or built with a key")
    record.write(release_dir, release)


