"""Re-check a finished release against its own record: files, images, provenance, pins.

Each check names one thing (a file, an image reference, a repository) and says whether
it still matches, does not, or could not be checked (``ok=None``: no Docker engine, pins
not resolved). Nothing here changes the release.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import provenance
from orchestrator.engine import Engine
from orchestrator.errors import DockerUnavailableError, OrchestratorError
from orchestrator.fileops import sha256_file
from orchestrator.manifest import Manifest
from orchestrator.sources import FetchFailed, FetchOptions, resolve

RECORD_FILES = frozenset({"release.json", "SHA256SUMS", provenance.FILENAME})
_SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


class ReleaseRecordError(OrchestratorError):
    """dist/<release>/release.json is missing or unreadable."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One thing checked: ``ok`` is True (matches), False (does not) or None (not checked)."""

    what: str
    ok: bool | None
    detail: str


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


def read_record(release_dir: Path) -> dict[str, Any]:
    """The parsed release.json of ``release_dir``; ReleaseRecordError when absent or broken."""
    path = release_dir / "release.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReleaseRecordError(f"{path} does not exist", hint="build the release first: invoke build --all") from None
    except (OSError, ValueError) as e:
        raise ReleaseRecordError(f"{path} cannot be read: {e}", hint="rebuild the release: invoke build --all") from e
    if not isinstance(record, dict) or not isinstance(record.get("artifacts"), dict):
        raise ReleaseRecordError(f"{path} is not a release record (no `artifacts`)", hint="rebuild the release")
    return record


def resolve_pins(manifest: Manifest, options: FetchOptions) -> dict[str, str | OrchestratorError]:
    """Each repo's ref resolved now (``sources.resolve``); a repo that fails keeps its error.

    A tag that moved away from a `commit:` pin is an error from ``resolve``; here it
    becomes that repo's entry, so that ``verify_release`` reports it as a failed check.
    """
    repos = list(manifest.repos.values())
    try:
        return dict(resolve(repos, options))
    except FetchFailed as e:
        rest = [repo for repo in repos if repo.name not in e.failures]
        found: dict[str, str | OrchestratorError] = dict(resolve(rest, options)) if rest else {}
        found.update(e.failures)
        return {name: found[name] for name in manifest.repos if name in found}


def verify_release(
    release_dir: Path,
    manifest: Manifest,
    *,
    engine: Engine | None,
    commits: Mapping[str, str | OrchestratorError] | None,
) -> VerifyReport:
    """Check every file, image, the provenance and every pin of the release in ``release_dir``.

    ``engine`` None: images are reported as not checked. ``commits`` is what each repo's
    ref resolves to now (``sources.resolve`` or ``resolve_pins``), None when not resolved.
    """
    record = read_record(release_dir)
    checks = [
        *_record_checks(manifest, record),
        *_file_checks(release_dir, record),
        *_image_checks(record, engine),
        *_provenance_checks(release_dir, manifest, record),
        *_pin_checks(manifest, record, commits),
    ]
    return VerifyReport(release=str(record.get("release", manifest.release)), release_dir=release_dir,
                        checks=tuple(checks))


def format_report(report: VerifyReport) -> str:
    """One line per check, then a verdict naming what does not match."""
    mark = {True: "[ok]    ", False: "[FAIL]  ", None: "[--]    "}
    lines = [f"verifying release {report.release} in {report.release_dir}"]
    lines += [f"  {mark[check.ok]}{check.what}: {check.detail}" for check in report.checks]
    passed = sum(1 for check in report.checks if check.ok)
    counts = f"{passed} matched, {len(report.failures)} did not, {len(report.unchecked)} not checked"
    if report.ok:
        lines.append(f"release {report.release} verified ({counts})")
    else:
        lines.append(f"release {report.release} does NOT match its record ({counts}):")
        lines += [f"  {check.what}: {check.detail}" for check in report.failures]
    return "\n".join(lines)


def _record_checks(manifest: Manifest, record: Mapping[str, Any]) -> Iterator[Check]:
    release = record.get("release")
    yield Check(what="release.json release", ok=release == manifest.release,
                detail=f"{release}" if release == manifest.release else
                f"records release {release!r}, the manifest says {manifest.release!r}")
    recorded = (record.get("manifest") or {}).get("sha256")
    yield Check(what=f"manifest {manifest.path}", ok=recorded == manifest.sha256,
                detail=f"sha256 {manifest.sha256} as recorded" if recorded == manifest.sha256 else
                f"changed since the build: sha256 {manifest.sha256}, release.json records {recorded}")
    failed = {name: a.get("status") for name, a in record["artifacts"].items()
              if a.get("status") not in provenance.PUBLISHED_STATUSES}
    yield Check(what="release.json status", ok=not failed and record.get("status") == "ok",
                detail="every artifact ok" if not failed else
                "not complete: " + ", ".join(f"{name} {status}" for name, status in failed.items()))
    missing = [name for name in manifest.artifacts if name not in record["artifacts"]]
    if missing:
        yield Check(what="artifacts not in this release", ok=None, detail="not built: " + ", ".join(missing))


def _read_sums(path: Path) -> tuple[dict[str, str], list[str]]:
    sums: dict[str, str] = {}
    bad: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if match := _SUM_LINE.match(line):
            sums[match.group(2)] = match.group(1)
        elif line.strip():
            bad.append(f"line {number}: {line[:80]!r}")
    return sums, bad


def _file_checks(release_dir: Path, record: Mapping[str, Any]) -> Iterator[Check]:
    recorded = {
        str(f["path"]): str(f["sha256"])
        for _, a in provenance.published_artifacts(record)
        for f in a.get("files") or []
    }
    sums_path = release_dir / "SHA256SUMS"
    if not sums_path.is_file():
        yield Check(what="SHA256SUMS", ok=False, detail="missing; nothing can be checked against it")
        sums: dict[str, str] = {}
    else:
        sums, bad = _read_sums(sums_path)
        if bad:
            yield Check(what="SHA256SUMS", ok=False, detail="malformed " + "; ".join(bad))
    root = release_dir.resolve()
    for name, expected in sums.items():
        path = (release_dir / name).resolve()
        if not path.is_relative_to(root):
            yield Check(what=f"file {name}", ok=False, detail="listed in SHA256SUMS but outside the release directory")
        elif not path.is_file():
            yield Check(what=f"file {name}", ok=False, detail="missing (listed in SHA256SUMS)")
        elif (actual := sha256_file(path)) != expected:
            yield Check(what=f"file {name}", ok=False,
                        detail=f"changed: sha256 {actual}, SHA256SUMS says {expected}")
        elif name not in recorded:
            yield Check(what=f"file {name}", ok=False, detail="listed in SHA256SUMS but not in release.json")
        elif recorded[name] != expected:
            yield Check(what=f"file {name}", ok=False,
                        detail=f"release.json says sha256 {recorded[name]}, SHA256SUMS says {expected}")
        else:
            yield Check(what=f"file {name}", ok=True, detail=f"sha256 {expected}")
    for name in recorded:
        if name not in sums:
            yield Check(what=f"file {name}", ok=False, detail="in release.json but not listed in SHA256SUMS")
    listed = set(sums) | set(recorded)
    for path in sorted(p for p in release_dir.rglob("*") if p.is_file() or p.is_symlink()):
        name = path.relative_to(release_dir).as_posix()
        # Hidden names are publish's temp files (.x.tmp-<pid>), never release content.
        if name not in listed and name not in RECORD_FILES and not path.name.startswith("."):
            yield Check(what=f"file {name}", ok=False, detail="in the release directory but in no record")


def _image_checks(record: Mapping[str, Any], engine: Engine | None) -> Iterator[Check]:
    for name, artifact in provenance.published_artifacts(record):
        for image in artifact.get("images") or []:
            for ref in image.get("refs") or []:
                what = f"image {ref} ({name})"
                if engine is None:
                    yield Check(what=what, ok=None, detail="not checked: no Docker engine")
                    continue
                try:
                    actual = engine.image_id(ref)
                except DockerUnavailableError as e:
                    yield Check(what=what, ok=None, detail=f"not checked: {e.message}")
                    continue
                if actual == image["id"]:
                    yield Check(what=what, ok=True, detail=f"id {actual}")
                elif actual is None:
                    yield Check(what=what, ok=False, detail=f"not in the Docker engine (release.json: {image['id']})")
                else:
                    yield Check(what=what, ok=False,
                                detail=f"is now {actual}, release.json records {image['id']} (rebuilt or re-tagged)")
            for ref, pushed in (image.get("pushed") or {}).items():
                if pushed.get("id") != image["id"]:
                    yield Check(what=f"pushed {ref} ({name})", ok=False,
                                detail=f"pushed image {pushed.get('id')} is not the recorded {image['id']}")


def _provenance_checks(release_dir: Path, manifest: Manifest, record: Mapping[str, Any]) -> Iterator[Check]:
    path = release_dir / provenance.FILENAME
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        yield Check(what=provenance.FILENAME, ok=False, detail="missing; rebuild the release to write it")
        return
    except (OSError, ValueError) as e:
        yield Check(what=provenance.FILENAME, ok=False, detail=f"unreadable: {e}")
        return
    expected = provenance.statement(manifest, record)
    if not isinstance(found, dict) or found.get("_type") != expected["_type"] or \
            found.get("predicateType") != expected["predicateType"]:
        yield Check(what=provenance.FILENAME, ok=False,
                    detail=f"not an in-toto Statement v1 with predicateType {provenance.PREDICATE_TYPE}")
        return
    yield from _compare("provenance subject", _by_name(found.get("subject"), "sha256"),
                        _by_name(expected["subject"], "sha256"), "subjects")
    definition = (found.get("predicate") or {}).get("buildDefinition") or {}
    want = expected["predicate"]["buildDefinition"]
    yield from _compare("provenance dependency", _by_name(definition.get("resolvedDependencies"), "gitCommit"),
                        _by_name(want["resolvedDependencies"], "gitCommit"), "repository commits")
    params = definition.get("externalParameters") or {}
    for key in ("release", "manifest"):
        ok = params.get(key) == want["externalParameters"][key]
        yield Check(what=f"provenance {key}", ok=ok, detail="matches release.json" if ok else
                    f"provenance says {params.get(key)!r}, release.json says {want['externalParameters'][key]!r}")


def _by_name(descriptors: Any, algorithm: str) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for item in descriptors if isinstance(descriptors, list) else []:
        if isinstance(item, dict):
            digest = item.get("digest")
            found[str(item.get("name"))] = digest.get(algorithm) if isinstance(digest, dict) else None
    return found


def _compare(what: str, found: Mapping[str, str | None], want: Mapping[str, str | None], kind: str) -> Iterator[Check]:
    wrong = False
    for name, digest in want.items():
        if name not in found:
            wrong = True
            yield Check(what=f"{what} {name}", ok=False, detail="in release.json but missing from provenance.json")
        elif found[name] != digest:
            wrong = True
            yield Check(what=f"{what} {name}", ok=False,
                        detail=f"provenance.json says {found[name]}, release.json says {digest}")
    for name in found:
        if name not in want:
            wrong = True
            yield Check(what=f"{what} {name}", ok=False, detail="in provenance.json but not in release.json")
    if not wrong:
        yield Check(what=f"{provenance.FILENAME} {kind}", ok=True, detail=f"all {len(want)} match release.json")


def _pin_checks(manifest: Manifest, record: Mapping[str, Any],
                commits: Mapping[str, str | OrchestratorError] | None) -> Iterator[Check]:
    repos: Mapping[str, Any] = record.get("repos") or {}
    for name, repo in manifest.repos.items():
        what = f"pin {name} {repo.ref}"
        built = (repos.get(name) or {}).get("commit")
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
