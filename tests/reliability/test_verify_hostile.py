"""verify checks everything it records, and what the manifest implies: every way found to
make a tampered release pass is a test here.

Each test tampers with a good release (files, SHA256SUMS, release.json, provenance.json)
the way a hostile or clumsy hand would, and checks that verify names the damage.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator import record
from orchestrator.engine.dockerpy import Engine
from orchestrator.manifest import Manifest
from orchestrator.verify import VerifyReport, format_report, verify_release
from tests.helpers import releases
from tests.helpers.fake_docker import FakeDockerClient
from tests.helpers.registry import APP_COMMIT, LIB_COMMIT, add_images, make_release

# The finished-release fixtures, found by pytest under these names.
fake, manifest, release_dir = releases.fake, releases.manifest, releases.release_dir

COMMITS = {"app": APP_COMMIT, "lib": LIB_COMMIT}


def verify(release_dir: Path, manifest: Manifest, fake: FakeDockerClient) -> VerifyReport:
    return verify_release(release_dir, manifest, engine=Engine(fake), commits=COMMITS, skip=("signature",))


def failures(report: VerifyReport) -> dict[str, str]:
    return {check.what: check.detail for check in report.failures}


def edit_json(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2))


def rewrite_provenance(release_dir: Path) -> None:
    """What a careful forger does after editing release.json: make provenance agree."""
    from orchestrator import provenance

    provenance.write_provenance(record.read(release_dir), release_dir)


# -- files on disk ---------------------------------------------------------------------------


def test_a_hidden_file_is_reported(release_dir: Path, manifest: Manifest, fake: FakeDockerClient) -> None:
    (release_dir / "bin/.backdoor").write_text("#!/bin/sh\n")

    assert failures(verify(release_dir, manifest, fake)) == {
        "file bin/.backdoor": "in the release directory but in no record"}


def test_a_file_whose_name_holds_an_escape_sequence_is_named_escaped(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    (release_dir / "bin/\x1b[2Jx").write_text("clears the screen of whoever runs verify\n")

    report = verify(release_dir, manifest, fake)

    assert failures(report) == {"file bin/\\x1b[2Jx": "in the release directory but in no record"}
    assert "\x1b" not in format_report(report)


def test_a_second_sha256sums_line_for_a_file_fails_as_sha256sum_does(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    with (release_dir / "SHA256SUMS").open("a") as sums:
        sums.write(f"{'0' * 64}  bin/app\n")
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=release_dir, capture_output=True).returncode != 0

    found = failures(verify(release_dir, manifest, fake))

    assert found == {"SHA256SUMS": "line 3: bin/app listed again (first on line 1)"}


def test_a_sha256sums_line_naming_a_path_outside_the_release_fails(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    with (release_dir / "SHA256SUMS").open("a") as sums:
        sums.write(f"{'0' * 64}  ../../etc/passwd\n")

    assert failures(verify(release_dir, manifest, fake)) == {
        "SHA256SUMS": "line 3: '../../etc/passwd' is not a path inside the release directory"}


@pytest.mark.parametrize(("mode", "problem"), [(0o4644, "setuid"), (0o2755, "setgid"), (0o1644, "sticky"),
                                               (0o664, "group-writable"), (0o646, "world-writable")])
def test_a_dangerous_mode_on_a_published_file_fails(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient, mode: int, problem: str
) -> None:
    os.chmod(release_dir / "bin/app", mode)

    assert failures(verify(release_dir, manifest, fake)) == {"file bin/app": f"mode {mode:04o} is {problem}"}


def test_a_mode_changed_from_the_recorded_one_fails(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    os.chmod(release_dir / "bin/app", 0o755)

    assert failures(verify(release_dir, manifest, fake)) == {"file bin/app": "mode 0755, release.json records 0644"}


def test_a_dangerous_mode_recorded_in_release_json_fails_even_when_the_file_has_it(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    os.chmod(release_dir / "bin/app", 0o4755)
    edit_json(release_dir / "release.json", lambda d: d["artifacts"]["app"]["files"][0].update(mode=0o4755))

    found = failures(verify(release_dir, manifest, fake))

    assert found["file bin/app"] == "mode 4755 is setuid; release.json records mode 4755 is setuid"


def test_a_recorded_file_replaced_by_a_symlink_to_identical_bytes_fails(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient, tmp_path: Path
) -> None:
    copy = tmp_path / "elsewhere"
    copy.write_bytes((release_dir / "bin/app").read_bytes())
    (release_dir / "bin/app").unlink()
    (release_dir / "bin/app").symlink_to(copy)

    assert failures(verify(release_dir, manifest, fake)) == {
        "file bin/app": f"a symbolic link (-> {copy}), not a file"}


def test_symlinks_fifos_and_symlinked_directories_in_the_release_fail_and_are_not_followed(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    (release_dir / "bin/hostname").symlink_to("/etc/hostname")
    (release_dir / "src/etc").symlink_to("/etc", target_is_directory=True)
    os.mkfifo(release_dir / "bin/pipe")  # opening it would block verify forever

    assert failures(verify(release_dir, manifest, fake)) == {
        "file bin/hostname": "a symbolic link (-> /etc/hostname); a release holds only files",
        "file bin/pipe": "a FIFO; a release holds only files",
        "file src/etc": "a symbolic link (-> /etc); a release holds only files",
    }


# -- the record against itself and the manifest -------------------------------------------


def test_a_failed_artifact_flipped_to_ok_fails(tmp_path: Path, manifest: Manifest, fake: FakeDockerClient) -> None:
    release_dir = tmp_path / "dist" / manifest.release
    make_release(release_dir, manifest, add_images(fake, manifest), failed={"lib": "boom"})

    def flip(data: dict[str, Any]) -> None:
        data["status"] = "ok"
        data["artifacts"]["lib"].update(status="ok", error=None)

    edit_json(release_dir / "release.json", flip)
    rewrite_provenance(release_dir)

    assert failures(verify(release_dir, manifest, fake)) == {
        "artifact lib": "records no files, a library is exactly src/lib-main.tar.gz"}


def test_a_flip_of_the_artifact_alone_disagrees_with_the_release_status(
    tmp_path: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    release_dir = tmp_path / "dist" / manifest.release
    make_release(release_dir, manifest, add_images(fake, manifest), failed={"lib/image": "boom"})
    edit_json(release_dir / "release.json", lambda d: d["artifacts"]["lib/image"].update(status="ok"))

    found = failures(verify(release_dir, manifest, fake))

    assert found["release.json status"] == "says failed, but its artifacts make it ok"
    assert found["artifact lib/image"] == \
        "ok, yet it records an error: boom; records 0 images, an image artifact has one"


def test_a_top_level_ok_over_a_failed_artifact_fails(
    tmp_path: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    release_dir = tmp_path / "dist" / manifest.release
    make_release(release_dir, manifest, add_images(fake, manifest), failed={"lib/image": "boom"})
    edit_json(release_dir / "release.json", lambda d: d.update(status="ok"))

    assert failures(verify(release_dir, manifest, fake))["release.json status"] == \
        "says ok, but its artifacts make it failed: lib/image failed"


def test_a_binary_output_the_record_lacks_fails(release_dir: Path, manifest: Manifest, fake: FakeDockerClient) -> None:
    (release_dir / "bin/app").unlink()
    (release_dir / "SHA256SUMS").write_text("".join(
        line + "\n" for line in (release_dir / "SHA256SUMS").read_text().splitlines() if "bin/app" not in line))
    edit_json(release_dir / "release.json", lambda d: d["artifacts"]["app"].update(files=[]))
    rewrite_provenance(release_dir)

    assert failures(verify(release_dir, manifest, fake)) == {
        "artifact app": "output 'bin/app' is matched by no recorded file in bin/"}


def test_a_file_recorded_outside_its_kinds_folder_fails(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    (release_dir / "bin/app").rename(release_dir / "src/app")
    (release_dir / "SHA256SUMS").write_text((release_dir / "SHA256SUMS").read_text().replace("bin/app", "src/app"))
    edit_json(release_dir / "release.json", lambda d: d["artifacts"]["app"]["files"][0].update(path="src/app"))
    rewrite_provenance(release_dir)

    assert failures(verify(release_dir, manifest, fake)) == {
        "artifact app": "records src/app, outside bin/ where binary outputs go"}


def test_image_refs_other_than_the_manifests_fail(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    image_id = json.loads((release_dir / "release.json").read_text())["artifacts"]["lib/image"]["images"][0]["id"]
    fake.api.tag(image_id, "evil.example/lib/image", "v1.0.0")
    edit_json(release_dir / "release.json",
              lambda d: d["artifacts"]["lib/image"]["images"][0].update(refs=["evil.example/lib/image:v1.0.0"]))
    rewrite_provenance(release_dir)

    assert failures(verify(release_dir, manifest, fake)) == {
        "artifact lib/image": "records image refs evil.example/lib/image:v1.0.0, the manifest implies lib/image:v1.0.0"}


@pytest.mark.parametrize(("edit", "what", "detail"), [
    (lambda d: d["artifacts"]["app"].update(type="library"), "artifact app",
     "records type 'library', the manifest says 'binary'"),
    (lambda d: d["artifacts"]["app"].update(repo="lib"), "artifact app", "records repo 'lib', the manifest says 'app'"),
    (lambda d: d["artifacts"].update(extra={**d["artifacts"]["app/image"], "images": []}), "artifact extra",
     "in release.json but not in the manifest"),
    (lambda d: d["repos"]["lib"].update(url="https://evil.example/lib.git"), "repo lib",
     "built from https://evil.example/lib.git, the manifest says https://example.invalid/lib.git"),
    (lambda d: d["repos"]["lib"].update(ref="other"), "repo lib", "built from ref 'other', the manifest says 'main'"),
    (lambda d: d["repos"].update(extra=d["repos"]["lib"]), "repo extra", "in release.json but not in the manifest"),
])
def test_a_record_that_disagrees_with_the_manifest_fails_naming_what(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient, edit: Callable[[dict[str, Any]], None], what: str,
    detail: str,
) -> None:
    edit_json(release_dir / "release.json", edit)
    rewrite_provenance(release_dir)

    assert failures(verify(release_dir, manifest, fake))[what] == detail


def test_a_good_release_satisfies_every_check_of_what_the_manifest_implies(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    report = verify(release_dir, manifest, fake)

    assert report.ok, format_report(report)
    checks = {check.what: check.detail for check in report.checks}
    assert checks["release.json artifacts"] == "all 4 match the manifest and record the outputs of their kind"
    assert checks["release.json repos"] == "all 2 match the manifest"


# -- provenance.json, field by field ---------------------------------------------------------


@pytest.mark.parametrize(("edit", "field"), [
    (lambda s: s["predicate"]["runDetails"]["builder"].update(id="https://evil.example/builder"),
     "predicate.runDetails.builder.id"),
    (lambda s: s["predicate"]["buildDefinition"].update(buildType="https://evil.example/type"),
     "predicate.buildDefinition.buildType"),
    (lambda s: s["predicate"]["buildDefinition"]["resolvedDependencies"][0].update(uri="git+https://evil.example/a"),
     "predicate.buildDefinition.resolvedDependencies[app].uri"),
    (lambda s: s["predicate"]["runDetails"]["metadata"].update(finishedOn="2030-01-01T00:00:00Z"),
     "predicate.runDetails.metadata.finishedOn"),
    (lambda s: s.update(_type="https://in-toto.io/Statement/v0.1"), "_type"),
    (lambda s: s["predicate"]["buildDefinition"]["externalParameters"]["artifacts"].__setitem__(1, "evil"),
     "predicate.buildDefinition.externalParameters.artifacts[1]"),
    (lambda s: s["predicate"].update(byproducts=[]), "predicate.byproducts"),
    (lambda s: s["subject"].pop(), "subject[lib/image:v1.0.0]"),
])
def test_any_changed_provenance_field_fails_naming_its_path(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient, edit: Callable[[dict[str, Any]], None], field: str
) -> None:
    edit_json(release_dir / "provenance.json", edit)

    found = failures(verify(release_dir, manifest, fake))

    assert list(found) == [f"provenance {field}"], found


def test_a_provenance_nested_absurdly_deep_is_reported_not_a_traceback(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    (release_dir / "provenance.json").write_text("[" * 100_000 + "]" * 100_000)

    found = failures(verify(release_dir, manifest, fake))

    assert list(found) == ["provenance.json"]
    assert "JSON nested too deeply" in found["provenance.json"]


def test_an_error_in_a_hostile_record_reaches_no_terminal_as_control_sequences() -> None:
    from orchestrator.errors import reason

    # OSC 52 would put text on the clipboard; CSI 2J clears the screen.
    shown = reason("felix", "felix: failed \x1b]52;c;ZXZpbA==\x07 and \x1b[2J gone\x85next")
    assert "\x1b" not in shown and "\x07" not in shown and "\x85" not in shown
    assert shown.startswith("failed ")
