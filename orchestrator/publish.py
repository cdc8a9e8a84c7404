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
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from orchestrator import imageref, provenance, pushing, record
from orchestrator.conformance import build_command, record_checks, release_of
from orchestrator.engine.errors import EngineError, PushFailed
from orchestrator.engine.protocol import ContainerEngine
from orchestrator.errors import InputError, Interrupted, OrchestratorError, reason, tail
from orchestrator.imageref import registry_of, split_registry
from orchestrator.integrity import file_checks
from orchestrator.manifest import IMAGE_REF_RE, Manifest
from orchestrator.plan import select
from orchestrator.record import Release
from orchestrator.redact import redact
from orchestrator.retrying import retried

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


class PublishRefused(OrchestratorError):
    """Nothing was pushed: some artifact is not ok, or an image is not as recorded."""

    def __init__(self, headline: str, problems: Sequence[tuple[str, str]], *, hint: str) -> None:
        super().__init__(headline, hint=hint)
        self.problems = tuple(problems)

    def __str__(self) -> str:
        lines = [self.message, *(f"  {name}: {why}" for name, why in self.problems)]
        return redact("\n".join(lines) + f"\n  hint: {self.hint}")


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


@dataclass(frozen=True, slots=True, kw_only=True)
class _Target:
    artifact: str
    index: int  # position in the artifact's images
    source: str  # the recorded ref
    ref: str  # where it goes
    id: str


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
) -> PublishReport:
    """Push every image of the selected artifacts (default: all) of the release in ``release_dir``.

    Refuses, pushing nothing, unless every selected artifact is ok/cached and every image
    is in the engine with its recorded id. ``registry`` ("host:port/") re-tags every ref
    under that registry first. A push failing with a transient error (``problem="other"``:
    a 5xx, a reset connection) is retried ``retries`` times, ``backoff`` seconds doubling;
    refused credentials or an unreachable registry stop at once. Each pushed ref's digest
    is recorded in release.json (``images[i].pushed``) as soon as it lands.
    """
    release = release_of(manifest, release_dir)
    selected = _select(manifest, artifacts)
    _check_statuses(manifest, release, selected)
    _check_integrity(release_dir, manifest, release)
    targets = _targets(manifest, release, selected, registry)
    already = tuple(_landed(release, t) for t in targets if _is_pushed(release, t))
    todo = [t for t in targets if not _is_pushed(release, t)]
    if not todo:
        log(f"release {manifest.release}: no images to publish" if not targets else
            f"release {manifest.release} is already published: all {len(targets)} refs pushed with the same images")
        return PublishReport(release=manifest.release, registry=registry, pushed=(), already=already,
                             already_published=bool(targets))
    if already:
        log(f"{len(already)} refs already pushed with the same images; pushing the other {len(todo)}")
    pushed: list[Pushed] = []
    try:
        _preflight(engine, todo, manifest)
        for target in todo:
            digest = _push_one(release_dir, engine, target, pushed, todo, log=log, retries=retries, backoff=backoff,
                               on_bytes=on_bytes)
            pushed.append(Pushed(artifact=target.artifact, ref=target.ref, id=target.id, digest=digest))
            log(f"pushed {target.ref}@{digest}")
    except KeyboardInterrupt:  # between pushes: nothing in flight
        raise _interrupted(pushed, todo, None) from None
    return PublishReport(release=manifest.release, registry=registry, pushed=tuple(pushed), already=already,
                         already_published=False)


def _push_one(release_dir: Path, engine: ContainerEngine, target: _Target, pushed: Sequence[Pushed],
              todo: Sequence[_Target], *, log: Log, retries: int, backoff: float,
              on_bytes: Callable[[str, int, int], None] | None = None) -> str:
    """Push ``target`` and record its digest (pushing.guarded); every way it can end
    becomes PublishFailed or Interrupted saying what landed."""
    def landed_now(digest: str) -> Pushed:
        return Pushed(artifact=target.artifact, ref=target.ref, id=target.id, digest=digest)

    try:
        progress = functools.partial(on_bytes, target.ref) if on_bytes is not None else None
        return pushing.guarded(functools.partial(_push_recorded, engine, target, log=log, retries=retries,
                                                 backoff=backoff, on_bytes=progress),
                               functools.partial(_record, release_dir, target), ref=target.ref, log=log)
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


def _interrupted(landed: Sequence[Pushed], todo: Sequence[_Target], unknown: str | None, *,
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


def retarget(ref: str, registry: str, default_registry: str = "") -> str:
    """``ref`` under ``registry``: the manifest's registry prefix (or any registry host) replaced."""
    if default_registry and ref.startswith(default_registry):
        return registry + ref[len(default_registry):]
    return registry + split_registry(ref)[1]


def _select(manifest: Manifest, names: Sequence[str] | None) -> tuple[str, ...]:
    return tuple(manifest.artifacts) if names is None else select(manifest, names)

def _check_statuses(manifest: Manifest, release: Release, selected: Sequence[str]) -> None:
    """Refuse unless the whole release is ok, whatever the selection: publishing part of a
    release whose other artifacts failed would put half a release in the registry."""
    problems: list[tuple[str, str]] = []
    if release.release != manifest.release:
        problems.append(("release.json", f"records release {release.release!r}, not {manifest.release!r}"))
    if release.status == "building":
        problems.append(("release.json", "status building: a build is replacing its files, or was interrupted"))
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


def _check_integrity(release_dir: Path, manifest: Manifest, release: Release) -> None:
    """Refuse when the files or the record do not hold up: a record edited from failed
    to ok, a changed file, an output the manifest implies and the record lacks."""
    problems = [(check.what, check.detail) for check in (*record_checks(manifest, release),
                                                         *file_checks(release_dir, release))
                if check.ok is False]
    if problems:
        raise PublishRefused(
            f"refusing to publish release {release.release}: it does not match its record and manifest "
            f"({len(problems)} problem(s)); nothing was pushed",
            problems, hint=f"`invoke verify --manifest {shlex.quote(str(manifest.path))}` shows every check; "
                           f"rebuild the release ({build_command(manifest, ' --force')})")


def _targets(manifest: Manifest, release: Release, selected: Sequence[str], registry: str | None) -> list[_Target]:
    if registry is not None and not _valid_registry(registry):
        raise InputError(f"registry {registry!r} is not a registry prefix",
                         hint="give host[:port]/, no scheme, with the trailing '/': 127.0.0.1:5000/ or quay.io/calico/")
    targets: list[_Target] = []
    for name in selected:
        for index, image in enumerate(release.artifacts[name].images):
            for ref in image.refs:
                dest = ref if registry is None else retarget(ref, registry, manifest.defaults.registry)
                if not IMAGE_REF_RE.match(dest):
                    raise InputError(f"{dest!r} ({name}) is not a valid image reference",
                                     hint="check --registry: lower-case host, port and path")
                targets.append(_Target(artifact=name, index=index, source=ref, ref=dest, id=image.id))
    return _one_image_per_ref(release, targets)


def _one_image_per_ref(release: Release, targets: Sequence[_Target]) -> list[_Target]:
    """Each reference pushed once, with one image. ``--registry`` replaces registry hosts,
    so references that differ only by host fold into one: one image under both is pushed
    once; two images, in this run or recorded as pushed there by another artifact, would
    replace one another, leaving an artifact under no name while the record says it landed."""
    found: dict[str, tuple[str, str, str]] = {  # ref -> (artifact, source, id)
        ref: (name, f"{ref} (recorded as pushed)", landed.id)
        for name, artifact in release.artifacts.items() for image in artifact.images
        for ref, landed in image.pushed.items()}
    unique: dict[str, _Target] = {}
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


def _valid_registry(registry: str) -> bool:
    """A registry host (and an optional namespace) to push under: the manifest's rule for
    ``defaults.registry``, and its first part must be a registry, not a Docker Hub user."""
    return imageref.registry_problem(registry) is None and imageref.is_registry_host(registry.partition("/")[0])


def _is_pushed(release: Release, target: _Target) -> bool:
    landed = release.artifacts[target.artifact].images[target.index].pushed.get(target.ref)
    return landed is not None and landed.id == target.id


def _landed(release: Release, target: _Target) -> Pushed:
    landed = release.artifacts[target.artifact].images[target.index].pushed[target.ref]
    return Pushed(artifact=target.artifact, ref=target.ref, id=target.id, digest=landed.digest)


def _preflight(engine: ContainerEngine, targets: Sequence[_Target], manifest: Manifest) -> None:
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


class PushedOtherImage(OrchestratorError):
    """The engine pushed another image than the recorded one under a reference: it was
    re-tagged while it was pushed (image references are global to an engine)."""

    def __init__(self, target: _Target, digest: str) -> None:
        super().__init__(
            f"{target.ref} was re-tagged in the Docker engine while it was pushed: the registry got another "
            f"image than the recorded {target.id} (manifest {digest}), which was not recorded",
            hint=f"stop whatever else tags {target.ref} on this engine (another build of this release?)")


# How often a reference re-tagged during its push is pointed back at the recorded image and
# pushed again before publishing gives up.
_PUSH_AS_RECORDED = 2


def _push_recorded(engine: ContainerEngine, target: _Target, *, log: Log, retries: int, backoff: float,
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


def _record(release_dir: Path, target: _Target, digest: str) -> None:
    """Add one landed ref to the record: provenance.json first, release.json last.

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
    provenance.write_provenance(release, release_dir)
    record.write(release_dir, release)


