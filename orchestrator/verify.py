"""Re-check a finished release against its own record and its manifest: the record,
files, images, provenance and its signature, what the registries hold, pins.

Each check names one thing (a file, an artifact, an image reference, a repository) and
says whether it still matches, does not, or could not be checked (``ok=None``: no
Docker engine, registry not asked, unsigned, pins not resolved). A release verifies only
when every check ran and held; a check the user chose to skip (``skip``: one of
SKIPPABLE) is not run and not held against it. Nothing here changes the release. A
release built from another manifest is refused before anything else is checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator import provenance, record
from orchestrator.conformance import record_checks, release_of
from orchestrator.engine.errors import ImageMissing
from orchestrator.engine.protocol import ContainerEngine
from orchestrator.errors import DockerUnavailableError, InputError, OrchestratorError
from orchestrator.fileops import InputFileError, read_limited
from orchestrator.integrity import Check, file_checks
from orchestrator.manifest import Manifest
from orchestrator.record import Release, ReleaseRecordError
from orchestrator.registrycheck import registry_checks
from orchestrator.signing import envelope_checks
from orchestrator.sources import FetchFailed, FetchOptions, resolve

if TYPE_CHECKING:
    from orchestrator.registryapi import ManifestDigests
    from orchestrator.signing import Verifier

__all__ = ["SKIPPABLE", "Check", "ReleaseRecordError", "VerifyReport", "format_report", "parse_skip", "resolve_pins",
           "verify_release"]

# The checks that need something from outside the release directory, which a user may
# choose not to run: the Docker engine, the public key, the registries, the git remotes.
SKIPPABLE = ("images", "signature", "registry", "pins")


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyReport:
    """Every check of one release, in order: record, files, images, provenance, signature,
    registry, pins; and the areas that were skipped on request."""

    release: str
    release_dir: Path
    checks: tuple[Check, ...]
    skipped: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True only when every check ran and held: nothing wrong, nothing left unchecked."""
        return not self.failures and not self.unchecked

    @property
    def matches(self) -> bool:
        """True when nothing checked was found wrong (whatever could not be checked)."""
        return not self.failures

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if check.ok is False)

    @property
    def unchecked(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if check.ok is None)


def resolve_pins(manifest: Manifest, options: FetchOptions, *,
                 on_event: Callable[[str, str], None] | None = None) -> dict[str, str | OrchestratorError]:
    """Each repo's ref resolved now (``sources.resolve``); a repo that fails keeps its error.

    A tag that moved away from a `commit:` pin is an error from ``resolve``; here it
    becomes that repo's entry, so that ``verify_release`` reports it as a failed check.
    ``on_event(repo, message)`` hears what each resolution is doing (it may take a while).
    """
    repos = list(manifest.repos.values())
    try:
        return dict(resolve(repos, options, on_event=on_event))
    except FetchFailed as e:
        rest = [repo for repo in repos if repo.name not in e.failures]
        found: dict[str, str | OrchestratorError] = dict(resolve(rest, options, on_event=on_event)) if rest else {}
        found.update(e.failures)
        return {name: found[name] for name in manifest.repos if name in found}


def parse_skip(values: Iterable[str]) -> frozenset[str]:
    """``--skip`` values (repeatable, comma-separated) as areas; InputError for another word."""
    import difflib

    found = {word.strip() for value in values for word in value.split(",") if word.strip()}
    for word in sorted(found):
        if word not in SKIPPABLE:
            close = difflib.get_close_matches(word, SKIPPABLE, n=1)
            raise InputError(f"--skip {word!r} is not a check that can be skipped"
                             + (f"; did you mean {close[0]!r}?" if close else ""),
                             hint="skip any of: " + ", ".join(SKIPPABLE))
    return frozenset(found)


def verify_release(
    release_dir: Path,
    manifest: Manifest,
    *,
    engine: ContainerEngine | None,
    commits: Mapping[str, str | OrchestratorError] | None,
    verifier: Verifier | None = None,
    registry: ManifestDigests | None = None,
    skip: Iterable[str] = (),
) -> VerifyReport:
    """Check the record, every file, image, the provenance and its signature, what the
    registries hold and every pin of the release in ``release_dir``.

    ``engine`` None: images are reported as not checked. ``commits`` is what each repo's
    ref resolves to now (``sources.resolve`` or ``resolve_pins``), None when not resolved.
    ``verifier``: the public key the signature must verify with (None: not checked).
    ``registry``: asks each registry what a pushed reference names now (None: not asked).
    ``skip``: areas of SKIPPABLE not to check at all.
    """
    release = release_of(manifest, release_dir)
    skipped = parse_skip(skip)
    areas: list[tuple[str, Callable[[], Iterable[Check]]]] = [
        ("record", lambda: [*record_checks(manifest, release), *_pushed_checks(release)]),
        ("files", lambda: file_checks(release_dir, release)),
        ("images", lambda: _image_checks(release, engine)),
        ("provenance", lambda: _provenance_checks(release_dir, release)),
        ("signature", lambda: envelope_checks(release_dir, verifier)),
        ("registry", lambda: registry_checks(release, registry)),
        ("pins", lambda: _pin_checks(manifest, release, commits)),
    ]
    checks = [replace(check, area=area) for area, run in areas if area not in skipped for check in run()]
    return VerifyReport(release=release.release, release_dir=release_dir, checks=tuple(checks),
                        skipped=tuple(area for area in SKIPPABLE if area in skipped))


def format_report(report: VerifyReport, *, checks: bool = True) -> str:
    """One line per check (unless ``checks`` is False), then a verdict naming what does not
    match, and what was not checked."""
    mark = {True: "[ok]    ", False: "[FAIL]  ", None: "[--]    "}
    lines = [f"verifying release {report.release} in {report.release_dir}"] if checks else []
    lines += [f"  {mark[check.ok]}{check.what}: {check.detail}" for check in report.checks if checks]
    lines += [f"  [skip]  {area}: not checked (--skip {area})" for area in report.skipped if checks]
    passed = sum(1 for check in report.checks if check.ok)
    counts = f"{passed} matched, {len(report.failures)} did not, {len(report.unchecked)} not checked"
    if report.skipped:
        counts += f", skipped: {', '.join(report.skipped)}"
    if report.ok:
        lines.append(f"release {report.release} verified ({counts})")
        return "\n".join(lines)
    if report.failures:
        lines.append(f"release {report.release} does NOT match its record ({counts}):")
        lines += [f"  {check.what}: {check.detail}" for check in report.failures]
    if report.unchecked:
        areas = sorted({check.area for check in report.unchecked if check.area in SKIPPABLE})
        lines.append(f"release {report.release} is not verified: {len(report.unchecked)} check(s) did not run"
                     + ("" if report.failures else f" ({counts})") + ":")
        lines += [f"  {check.what}: {check.detail}" for check in report.unchecked]
        if areas:
            lines.append(f"  (run them, or say not to: --skip {','.join(areas)})")
    return "\n".join(lines)


def _image_checks(release: Release, engine: ContainerEngine | None) -> Iterator[Check]:
    for name, artifact in release.built().items():
        for image in artifact.images:
            for ref in image.refs:
                what = f"image {ref} ({name})"
                if engine is None:
                    yield Check(what=what, ok=None, detail="not checked: no Docker engine")
                    continue
                try:
                    actual = engine.image_id(ref)
                    yield _image_check(engine, what, image, actual)
                except DockerUnavailableError as e:
                    yield Check(what=what, ok=None, detail=f"not checked: {e.message}")


def _pushed_checks(release: Release) -> Iterator[Check]:
    """Each pushed reference records the image it pushed: it must be the artifact's."""
    for name, artifact in release.built().items():
        for image in artifact.images:
            for ref, pushed in image.pushed.items():
                if pushed.id != image.id:
                    yield Check(what=f"pushed {ref} ({name})", ok=False,
                                detail=f"pushed image {pushed.id} is not the recorded {image.id}")


def _image_check(engine: ContainerEngine, what: str, image: record.Image, actual: str | None) -> Check:
    """The reference's image against the record: its id, and its content (layer diff ids)."""
    if actual is None:
        return Check(what=what, ok=False, detail=f"not in the Docker engine (release.json: {image.id})")
    try:
        layers = engine.image_layers(actual)
    except ImageMissing:  # removed between the two questions
        return Check(what=what, ok=False, detail=f"not in the Docker engine (release.json: {image.id})")
    if actual != image.id:
        same = " (the same layers: rebuilt from the same content)" if image.layers and layers == image.layers else \
            " (other layers: other content)" if image.layers else ""
        return Check(what=what, ok=False,
                     detail=f"is now {actual}, release.json records {image.id} (rebuilt or re-tagged){same}")
    if not image.layers:
        return Check(what=what, ok=True, detail=f"id {actual} (release.json records no layers: built before they "
                                                "were recorded)")
    if layers != image.layers:
        return Check(what=what, ok=False, detail=f"id {actual}, but release.json records other layers "
                                                 f"({len(image.layers)}) than the image has ({len(layers)}): edited")
    return Check(what=what, ok=True, detail=f"id {actual}, {len(layers)} layer(s) as recorded")


def _provenance_checks(release_dir: Path, release: Release) -> Iterator[Check]:
    """The whole statement against the one rebuilt from release.json, field by field."""
    path = release_dir / provenance.FILENAME
    try:
        found = record.load_json(read_limited(path), str(path), "")
    except FileNotFoundError:
        yield Check(what=provenance.FILENAME, ok=False, detail="missing; rebuild the release to write it")
        return
    except (InputFileError, OSError) as e:
        yield Check(what=provenance.FILENAME, ok=False, detail=f"cannot be read: {e.strerror}")
        return
    except ReleaseRecordError as e:
        yield Check(what=provenance.FILENAME, ok=False, detail=f"unreadable: {e.message}")
        return
    wrong = False
    for where, problem in provenance.differences(found, provenance.statement(release)):
        wrong = True
        yield Check(what=f"provenance {where}", ok=False, detail=problem)
    if not wrong:
        yield Check(what=f"{provenance.FILENAME}", ok=True,
                    detail="every field matches the statement rebuilt from release.json")


def _pin_checks(manifest: Manifest, release: Release,
                commits: Mapping[str, str | OrchestratorError] | None) -> Iterator[Check]:
    for name, repo in manifest.repos.items():
        what = f"pin {name} {repo.ref}"
        recorded = release.repos.get(name)
        built = recorded.commit if recorded else None
        if built is None:
            yield Check(what=what, ok=None, detail="not checked: the release has no artifact of this repo")
        elif repo.commit is not None and repo.commit != built:
            yield Check(what=what, ok=False,
                        detail=f"the manifest pins {repo.commit}, the release was built from {built}")
        elif commits is None:
            yield Check(what=what, ok=None, detail="not checked: refs not resolved")
        elif isinstance(now := commits.get(name), OrchestratorError):
            yield Check(what=what, ok=False, detail=str(now).splitlines()[0])
        elif now is None:
            yield Check(what=what, ok=None, detail="not checked: not resolved")
        elif now != built:
            yield Check(what=what, ok=False, detail=f"now resolves to {now}, the release was built from {built}")
        else:
            yield Check(what=what, ok=True, detail=f"still {built}")
