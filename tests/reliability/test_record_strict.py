"""release.json is untrusted input: a record of the wrong shape is refused with one
message naming the file and the field, never a traceback, in build, verify and publish.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator import record
from orchestrator.engine.dockerpy import Engine
from orchestrator.manifest import Manifest
from orchestrator.record import ReleaseRecordError
from tests.helpers.fake_docker import FakeDockerClient
from tests.helpers.registry import add_images, make_release, small_manifest
from tests.reliability.record_helpers import Workspace, assert_one_clean_message, make_workspace

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    return small_manifest(tmp_path)


@pytest.fixture
def release_dir(tmp_path: Path, manifest: Manifest) -> Path:
    release_dir = tmp_path / "dist" / manifest.release
    make_release(release_dir, manifest, add_images(FakeDockerClient(), manifest))
    return release_dir


def edited(release_dir: Path, edit: Edit) -> Path:
    path = release_dir / "release.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


def app_file(data: dict[str, Any]) -> dict[str, Any]:
    return data["artifacts"]["app"]["files"][0]  # type: ignore[no-any-return]


CASES: dict[str, tuple[Edit, str]] = {
    "files is a number": (lambda d: d["artifacts"]["app"].update(files=5),
                          "artifacts.app.files: expected an array, got a number (5)"),
    "images is a string": (lambda d: d["artifacts"]["app/image"].update(images="x"),
                           "artifacts.app/image.images: expected an array, got a string ('x')"),
    "sha256 missing": (lambda d: app_file(d).pop("sha256"), "artifacts.app.files[0].sha256: missing"),
    "sha256 of 63 hex digits": (lambda d: app_file(d).update(sha256="a" * 63),
                                f"artifacts.app.files[0].sha256: expected 64 hex digits, got '{'a' * 63}'"),
    "status a number": (lambda d: d["artifacts"]["app"].update(status=5),
                        "artifacts.app.status: expected one of ok, cached, restored, failed, skipped, not-started, "
                        "got 5"),
    "release status unknown": (lambda d: d.update(status="fine"),
                               "status: expected one of ok, failed, incomplete, building, partial, got 'fine'"),
    "size a boolean": (lambda d: app_file(d).update(size=True), "artifacts.app.files[0].size: expected an integer, "
                                                                "got true"),
    "mode a string": (lambda d: app_file(d).update(mode="0644"),
                      "artifacts.app.files[0].mode: expected an integer, got a string ('0644')"),
    "path escapes": (lambda d: app_file(d).update(path="../../etc/passwd"),
                     "artifacts.app.files[0].path: expected a relative path inside the release directory, "
                     "got '../../etc/passwd'"),
    "path absolute": (lambda d: app_file(d).update(path="/etc/passwd"),
                      "artifacts.app.files[0].path: expected a relative path inside the release directory"),
    "image id not a digest": (lambda d: d["artifacts"]["lib/image"]["images"][0].update(id="latest"),
                              "artifacts.lib/image.images[0].id: expected sha256: and 64 hex digits, got 'latest'"),
    "pushed digest not a digest": (
        lambda d: d["artifacts"]["lib/image"]["images"][0].update(pushed={"x/y:1": {"digest": 1, "id": "z"}}),
        "artifacts.lib/image.images[0].pushed.x/y:1.digest: expected sha256: and 64 hex digits, got a number (1)"),
    "repo commit short": (lambda d: d["repos"]["lib"].update(commit="abc"),
                          "repos.lib.commit: expected 40 hex digits, got 'abc'"),
    "artifacts an array": (lambda d: d.update(artifacts=[]), "artifacts: expected an object, got an array"),
    "unknown field": (lambda d: d["artifacts"]["app"].update(trusted=True), "artifacts.app.trusted: unknown field"),
    "manifest missing": (lambda d: d.pop("manifest"), "manifest: missing"),
    "duration negative": (lambda d: d["artifacts"]["app"].update(duration=-1),
                          "artifacts.app.duration: expected a number of seconds, got -1"),
    "an escape sequence in a shown field": (
        lambda d: d["manifest"].update(path="\x1b]0;owned\x07manifest.yaml"),
        "manifest.path: expected text without control characters, got '\\x1b]0;owned\\x07manifest.yaml'"),
    "an artifact name with a newline": (lambda d: d["artifacts"].update({"x\ny": {}}),
                                        "artifacts: the name 'x\\ny' holds control characters"),
    "an image ref docker would refuse": (
        lambda d: d["artifacts"]["lib/image"]["images"][0].update(refs=["--all lib/image"]),
        "artifacts.lib/image.images[0].refs[0]: expected an image reference, got '--all lib/image'"),
    "labels hold a number": (lambda d: d["artifacts"]["lib/image"]["images"][0].update(labels={"a": 1}),
                             "artifacts.lib/image.images[0].labels.a: expected a string, got a number (1)"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_record_with_a_wrong_field_is_refused_naming_the_file_and_the_field(release_dir: Path, case: str) -> None:
    edit, message = CASES[case]
    path = edited(release_dir, edit)

    with pytest.raises(ReleaseRecordError) as caught:
        record.read(release_dir)

    assert str(caught.value).startswith(f"{path}: {message}")
    assert caught.value.exit_code == 1
    assert f"hint: it was edited or damaged: remove it ({path}) and build the release again" in str(caught.value)


@pytest.mark.parametrize(("text", "message"), [
    ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply to be a record"),
    ('{"format": 2, "format": 2}', "not valid JSON: duplicate key 'format'"),
    ('{"duration": NaN}', "not valid JSON: NaN is not a number"),
    ("{", "not valid JSON: Expecting property name"),
    ("[]", "expected an object, got an array"),
])
def test_json_that_is_no_record_at_all_is_refused_with_one_line(release_dir: Path, text: str, message: str) -> None:
    (release_dir / "release.json").write_text(text)

    with pytest.raises(ReleaseRecordError, match="^" + str(release_dir / "release.json") + ": " + message):
        record.read(release_dir)


def test_a_record_that_is_a_symlink_is_refused_whatever_it_points_to(release_dir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    (release_dir / "release.json").rename(elsewhere)
    (release_dir / "release.json").symlink_to(elsewhere)

    with pytest.raises(ReleaseRecordError, match=f"release.json is a symbolic link \\(-> {elsewhere}\\); a release "
                                                 "record is a regular file"):
        record.read(release_dir)


def test_a_number_too_large_to_be_finite_is_refused(release_dir: Path) -> None:
    path = release_dir / "release.json"
    path.write_text(path.read_text().replace('"duration": 1.25', '"duration": 1e400', 1))

    with pytest.raises(ReleaseRecordError, match=r": artifacts.app.duration: expected a number of seconds, got inf"):
        record.read(release_dir)


def test_bytes_that_are_not_utf8_are_refused(release_dir: Path) -> None:
    (release_dir / "release.json").write_bytes(b'{"release": "\xff"}')

    with pytest.raises(ReleaseRecordError, match=r"release.json: not UTF-8 text \(byte 13\)"):
        record.read(release_dir)


def test_a_fifo_a_directory_or_a_huge_file_is_refused_before_reading(release_dir: Path) -> None:
    path = release_dir / "release.json"
    path.unlink()
    os.mkfifo(path)  # no writer: reading it would block forever
    with pytest.raises(ReleaseRecordError, match=r"release.json: not a regular file; a release record is a small"):
        record.read(release_dir)
    path.unlink()
    path.mkdir()
    with pytest.raises(ReleaseRecordError, match=r"release.json: a directory"):
        record.read(release_dir)
    path.rmdir()
    with path.open("wb") as f:
        f.truncate(17 * 1024 * 1024)  # sparse: 17 MiB on paper, nothing on disk
    with pytest.raises(ReleaseRecordError, match=r"release.json: larger than 16 MiB"):
        record.read(release_dir)


def test_a_record_of_another_format_is_refused_by_readers_and_replaced_by_a_build(release_dir: Path) -> None:
    edited(release_dir, lambda d: d.update(format=1))

    with pytest.raises(ReleaseRecordError, match=r"release.json: format: 1 is not the record format this "
                                                 r"orchestrator reads \(2\)"):
        record.read(release_dir)
    assert record.read_previous(release_dir) is None, "a build starts afresh instead of failing"


def test_what_write_produces_read_accepts_unchanged(release_dir: Path) -> None:
    release = record.read(release_dir)

    assert record.encode(release) == (release_dir / "release.json").read_bytes()


# -- through the real CLI -------------------------------------------------------------------


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A workspace whose release was built, then had a number written for a file list."""
    workspace = make_workspace(tmp_path_factory.mktemp("damaged"), first="mkdir -p out && echo 1 > out/first",
                               second="mkdir -p out && echo 2 > out/second")
    result = workspace.run("build", "--all")
    assert result.returncode == 0, result.stderr
    edited(workspace.release_dir, lambda d: d["artifacts"]["first"].update(files=5))
    return workspace


MESSAGE = "release.json: artifacts.first.files: expected an array, got a number (5)"


@pytest.mark.parametrize("task", [("build", "--all"), ("build", "--all", "--force"), ("verify", "--offline")])
def test_build_and_verify_refuse_a_damaged_record_with_one_message_and_exit_1(
    damaged: Workspace, task: tuple[str, ...]
) -> None:
    before = (damaged.release_dir / "release.json").read_bytes()

    result = damaged.run(*task)

    assert result.returncode == 1, result.stderr
    assert_one_clean_message(result, f"error: {damaged.release_dir / MESSAGE}")
    assert (damaged.release_dir / "release.json").read_bytes() == before, "left as found, for the user to look at"


@pytest.mark.docker
def test_publish_refuses_a_damaged_record_with_one_message_and_exit_1(
    damaged: Workspace, docker_engine: Engine
) -> None:
    result = damaged.run("publish", "--all", "--registry", "127.0.0.1:1/")

    assert result.returncode == 1, result.stderr
    assert_one_clean_message(result, f"error: {damaged.release_dir / MESSAGE}")
