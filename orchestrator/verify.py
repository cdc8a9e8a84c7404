"""Re-check a finished release against its own record and its manifest: files, the
record itself, images, provenance, pins.

Each check names one thing (a file, an artifact, an image reference, a repository) and
says whether it still matches, does not, or could not be checked (``ok=None``: no
Docker engine, pins not resolved). Nothing here changes the release. A release built
from another manifest is refused before anything else is checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator import provenance, record
from orchestrator.conformance import record_checks, release_of
from orchestrator.engine.protocol import ContainerEngine
from orchestrator.errors import DockerUnavailableError, OrchestratorError
from orchestrator.fileops import InputFileError, read_limited
from orchestrator.integrity import Check, file_checks
from orchestrator.manifest import Manifest
from orchestrator.record import Release, ReleaseRecordError
from orchestrator.sources import FetchFailed, FetchOptions, resolve

__all__ = ["Check", "ReleaseRecordError", "VerifyReport", "format_report", "resolve_pins", "verify_release"]


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyReport:
    """Every check of one release, in order: record, files, images, provenance, pins."""

    release: str
    release_dir: Path
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """True when nothing checked was found wrong (unchecked items are not failures)."""
        return all(check.ok is not False for check in self.checks)

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


def verify_release(
    release_dir: Path,
    manifest: Manifest,
    *,
    engine: ContainerEngine | None,
    commits: Mapping[str, str | OrchestratorError] | None,
) -> VerifyReport:
    """Check every file, image, the provenance and every pin of the release in ``release_dir``.

    ``engine`` None: images are reported as not checked. ``commits`` is what each repo's
    ref resolves to now (``sources.resolve`` or ``resolve_pins``), None when not resolved.
    """
    release = release_of(manifest, release_dir)
    checks = [
        *record_checks(manifest, release),
        *file_checks(release_dir, release),
        *_image_checks(release, engine),
        *_provenance_checks(release_dir, release),
        *_pin_checks(manifest, release, commits),
    ]
    return VerifyReport(release=release.release, release_dir=release_dir, checks=tuple(checks))


def format_report(report: VerifyReport, *, checks: bool = True) -> str:
    """One line per check (unless ``checks`` is False), then a verdict naming what does not match."""
    mark = {True: "[ok]    ", False: "[FAIL]  ", None: "[--]    "}
    lines = [f"verifying release {report.release} in {report.release_dir}"] if checks else []
    lines += [f"  {mark[check.ok]}{check.what}: {check.detail}" for check in report.checks if checks]
    passed = sum(1 for check in report.checks if check.ok)
    counts = f"{passed} matched, {len(report.failures)} did not, {len(report.unchecked)} not checked"
    if report.ok:
        lines.append(f"release {report.release} verified ({counts})")
    else:
        lines.append(f"release {report.release} does NOT match its record ({counts}):")
        lines += [f"  {check.what}: {check.detail}" for check in report.failures]
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
                except DockerUnavailableError as e:
                    yield Check(what=what, ok=None, detail=f"not checked: {e.message}")
                    continue
                if actual == image.id:
                    yield Check(what=what, ok=True, detail=f"id {actual}")
                elif actual is None:
                    yield Check(what=what, ok=False, detail=f"not in the Docker engine (release.json: {image.id})")
                else:
                    yield Check(what=what, ok=False,
                                detail=f"is now {actual}, release.json records {image.id} (rebuilt or re-tagged)")
            for ref, pushed in image.pushed.items():
                if pushed.id != image.id:
                    yield Check(what=f"pushed {ref} ({name})", ok=False,
                                detail=f"pushed image {pushed.id} is not the recorded {image.id}")


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
