"""Push a finished release's images: all of it or nothing new, and record what landed.

Order: read release.json -> refuse unless every selected artifact is ok -> preflight
(every image present locally with its recorded id) -> tag for ``registry`` -> push one
ref at a time, recording each digest in release.json as it lands. Credentials come from
the Docker config (`docker login`), never from the manifest or from here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import provenance
from orchestrator.engine import Engine, EngineError, PushFailed
from orchestrator.errors import InputError, Interrupted, OrchestratorError, tail
from orchestrator.fileops import write_atomic
from orchestrator.manifest import IMAGE_REF_RE, Manifest
from orchestrator.plan import select
from orchestrator.redact import redact
from orchestrator.verify import read_record

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

    def __init__(self, error: OrchestratorError, landed: Sequence[Pushed], not_pushed: Sequence[str]) -> None:
        hint = f"{error.hint}, then publish again" if error.hint else "publish again"
        if isinstance(error, PushFailed) and error.problem == "other":
            hint = f"{_registry_of(error.ref)} kept failing; publish again later"
        super().__init__(error.message, hint=hint)
        self.error, self.landed, self.not_pushed = error, tuple(landed), tuple(not_pushed)

    def __str__(self) -> str:
        lines = [f"publishing stopped: {self.message}"]
        if isinstance(self.error, EngineError) and self.error.output.strip():
            lines += ["  last output:", tail(self.error.output, 5, "    ")]
        lines.append(f"  landed in the registry ({len(self.landed)}):" if self.landed else "  nothing landed")
        lines += [f"    {p.ref}@{p.digest}" for p in self.landed]
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
    engine: Engine,
    *,
    artifacts: Sequence[str] | None = None,
    registry: str | None = None,
    log: Log,
    retries: int = 2,
    backoff: float = 1.0,
) -> PublishReport:
    """Push every image of the selected artifacts (default: all) of the release in ``release_dir``.

    Refuses, pushing nothing, unless every selected artifact is ok/cached and every image
    is in the engine with its recorded id. ``registry`` ("host:port/") re-tags every ref
    under that registry first. A push failing with a transient error (``problem="other"``:
    a 5xx, a reset connection) is retried ``retries`` times, ``backoff`` seconds doubling;
    refused credentials or an unreachable registry stop at once. Each pushed ref's digest
    is recorded in release.json (``images[i].pushed``) as soon as it lands.
    """
    record = read_record(release_dir)
    selected = _select(manifest, artifacts)
    _check_statuses(manifest, record, selected)
    targets = _targets(manifest, record, selected, registry)
    already = tuple(_landed(record, t) for t in targets if _is_pushed(record, t))
    todo = [t for t in targets if not _is_pushed(record, t)]
    if not todo:
        log(f"release {manifest.release}: no images to publish" if not targets else
            f"release {manifest.release} is already published: all {len(targets)} refs pushed with the same images")
        return PublishReport(release=manifest.release, registry=registry, pushed=(), already=already,
                             already_published=bool(targets))
    if already:
        log(f"{len(already)} refs already pushed with the same images; pushing the other {len(todo)}")
    _preflight(engine, todo)
    for target in todo:
        if target.ref != target.source:
            engine.tag(target.id, target.ref)
    pushed: list[Pushed] = []
    for target in todo:
        try:
            digest = _push(engine, target.ref, log=log, retries=retries, backoff=backoff)
            pushed.append(Pushed(artifact=target.artifact, ref=target.ref, id=target.id, digest=digest))
            _record(release_dir, manifest, target, digest)
        except Interrupted:
            raise  # Ctrl-C stays exit 130; what landed is recorded already
        except OrchestratorError as e:
            landed = {p.ref for p in pushed}
            raise PublishFailed(e, pushed, [t.ref for t in todo if t.ref not in landed]) from e
        log(f"pushed {target.ref}@{digest}")
    return PublishReport(release=manifest.release, registry=registry, pushed=tuple(pushed), already=already,
                         already_published=False)


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
    return registry + _split_registry(ref)[1]


def _select(manifest: Manifest, names: Sequence[str] | None) -> tuple[str, ...]:
    return tuple(manifest.artifacts) if names is None else select(manifest, names)

def _check_statuses(manifest: Manifest, record: Mapping[str, Any], selected: Sequence[str]) -> None:
    problems: list[tuple[str, str]] = []
    if record.get("release") != manifest.release:
        problems.append(("release.json", f"records release {record.get('release')!r}, not {manifest.release!r}"))
    for name in selected:
        artifact = record["artifacts"].get(name)
        if artifact is None:
            problems.append((name, "not built (not in release.json)"))
        elif artifact.get("status") not in provenance.PUBLISHED_STATUSES:
            reason = str(artifact.get("error") or "").strip().splitlines()
            problems.append((name, str(artifact.get("status")) + (f": {reason[0]}" if reason else "")))
    if problems:
        raise PublishRefused(
            f"refusing to publish release {record.get('release')}: {len(problems)} of {len(selected)} "
            "selected artifacts are not built ok, and a registry must never hold half a release; nothing was pushed",
            problems, hint="fix and rebuild them (invoke build --all), then publish again")


def _targets(manifest: Manifest, record: Mapping[str, Any], selected: Sequence[str],
             registry: str | None) -> list[_Target]:
    if registry is not None and not _valid_registry(registry):
        raise InputError(f"registry {registry!r} is not a registry prefix",
                         hint="give host[:port]/, no scheme, with the trailing '/': 127.0.0.1:5000/ or quay.io/calico/")
    targets: list[_Target] = []
    for name in selected:
        for index, image in enumerate(record["artifacts"][name].get("images") or []):
            for ref in image.get("refs") or []:
                ref = str(ref)
                dest = ref if registry is None else retarget(ref, registry, manifest.defaults.registry)
                if not IMAGE_REF_RE.match(dest):
                    raise InputError(f"{dest!r} ({name}) is not a valid image reference",
                                     hint="check --registry: lower-case host, port and path")
                targets.append(_Target(artifact=name, index=index, source=ref, ref=dest, id=str(image["id"])))
    return targets


def _valid_registry(registry: str) -> bool:
    host = registry.partition("/")[0]
    return registry.endswith("/") and "://" not in registry and ("." in host or ":" in host or host == "localhost")


def _is_pushed(record: Mapping[str, Any], target: _Target) -> bool:
    image = record["artifacts"][target.artifact]["images"][target.index]
    landed = (image.get("pushed") or {}).get(target.ref) or {}
    return bool(landed.get("id") == target.id and landed.get("digest"))


def _landed(record: Mapping[str, Any], target: _Target) -> Pushed:
    image = record["artifacts"][target.artifact]["images"][target.index]
    digest = image["pushed"][target.ref]["digest"]
    return Pushed(artifact=target.artifact, ref=target.ref, id=target.id, digest=str(digest))


def _preflight(engine: Engine, targets: Sequence[_Target]) -> None:
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
            problems, hint="rebuild the release on this engine (invoke build --all), or load the recorded images")


def _push(engine: Engine, ref: str, *, log: Log, retries: int, backoff: float) -> str:
    for attempt in range(retries + 1):
        log(f"pushing {ref}" + (f" (attempt {attempt + 1} of {retries + 1})" if attempt else ""))
        try:
            return engine.push(ref, log=log)
        except PushFailed as e:
            # Only "other" (a 5xx, a reset connection, no digest) may pass by itself;
            # refused credentials or a wrong address fail the same way every time.
            if e.problem != "other" or attempt == retries:
                raise
            delay = backoff * 2**attempt
            log(redact(f"push of {ref} failed ({e.reason}); retrying in {delay:g}s"))
            time.sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises


def _record(release_dir: Path, manifest: Manifest, target: _Target, digest: str) -> None:
    """Add one landed ref to release.json (and provenance.json when present), atomically.

    Re-read first: release.json may have been rewritten since publish started, and only
    ``pushed`` is ours to change.
    """
    current = read_record(release_dir)
    image = current["artifacts"][target.artifact]["images"][target.index]
    if image.get("id") != target.id:
        raise OrchestratorError(f"release.json changed while publishing: {target.source} is now {image.get('id')}",
                                hint="a build ran meanwhile; publish again")
    image.setdefault("pushed", {})[target.ref] = {"digest": digest, "id": target.id}
    write_atomic(release_dir / "release.json", (json.dumps(current, indent=2) + "\n").encode())
    if (release_dir / provenance.FILENAME).is_file():
        provenance.write_provenance(manifest, current, release_dir)


def _split_registry(ref: str) -> tuple[str | None, str]:
    """(registry host, rest) of a reference; None when it names no registry (Docker Hub)."""
    first, slash, rest = ref.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, ref


def _registry_of(ref: str) -> str:
    return _split_registry(ref)[0] or "docker.io"
