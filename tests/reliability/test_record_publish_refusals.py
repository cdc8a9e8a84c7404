"""publish never pushes the wrong release: not one built from another manifest, not one
whose status is not ok (whatever the selection), not one whose files or record do not
hold up (a release.json edited from failed to ok never publishes).

Nothing is pushed in any of these: the fake Docker client records every call.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator import provenance, record
from orchestrator.conformance import WrongManifestError
from orchestrator.engine.dockerpy import Engine
from orchestrator.manifest import Manifest
from orchestrator.publish import PublishRefused, publish_release
from tests.helpers import releases
from tests.helpers.fake_docker import FakeDockerClient
from tests.helpers.fake_registry import FakeRegistry
from tests.helpers.registry import add_images, make_release, small_manifest
from tests.reliability.record_helpers import Workspace, assert_one_clean_message, make_workspace

fake, manifest, release_dir = releases.fake, releases.manifest, releases.release_dir


def publish(release_dir: Path, manifest: Manifest, fake: FakeDockerClient, **kw: Any) -> Any:
    fake.calls.clear()  # forget the set-up's calls: what follows is publish's alone
    kw.setdefault("registry_client", FakeRegistry(fake))
    return publish_release(release_dir, manifest, Engine(fake), log=lambda line: None, backoff=0.0, **kw)


def pushed_anything(fake: FakeDockerClient) -> bool:
    return bool(fake.calls_to("api.push") or fake.calls_to("api.tag"))


def edit_record(release_dir: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = release_dir / "release.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2))
    provenance.write_provenance(record.read(release_dir), release_dir)  # a careful forger


def test_a_release_built_from_another_manifest_is_refused_first_naming_both(
    tmp_path: Path, release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    (tmp_path / "real").mkdir()
    real_manifest = small_manifest(tmp_path / "real", manifest.path.read_text().replace("make bin/app", "make app"))
    (release_dir / "bin/app").write_text("also damaged: the manifest is still what is refused first\n")

    with pytest.raises(WrongManifestError) as caught:
        publish(release_dir, real_manifest, fake)

    message = str(caught.value)
    assert f"was built from another manifest: {manifest.path} (sha256 {manifest.sha256})" in message
    assert f"not {real_manifest.path} (sha256 {real_manifest.sha256})" in message
    assert caught.value.exit_code == 1
    assert fake.calls == [], "not even a look-up in the engine"


def test_a_selection_of_good_artifacts_from_a_release_that_is_not_ok_is_refused(
    tmp_path: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    release_dir = tmp_path / "dist" / manifest.release
    make_release(release_dir, manifest, add_images(fake, manifest), failed={"app": "make: *** [app] Error 1"})

    with pytest.raises(PublishRefused) as caught:
        publish(release_dir, manifest, fake, artifacts=["lib/image"])  # built ok; the release is not

    assert "\n  app: failed: make: *** [app] Error 1\n" in str(caught.value)
    assert not pushed_anything(fake)


def test_a_release_json_edited_from_failed_to_ok_never_publishes(
    tmp_path: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    release_dir = tmp_path / "dist" / manifest.release
    make_release(release_dir, manifest, add_images(fake, manifest), failed={"app": "boom"})

    def flip(data: dict[str, Any]) -> None:
        data["status"] = "ok"
        data["artifacts"]["app"].update(status="ok", error=None)

    edit_record(release_dir, flip)

    with pytest.raises(PublishRefused) as caught:
        publish(release_dir, manifest, fake)

    assert "it does not match its record and manifest" in str(caught.value)
    assert "\n  artifact app: output 'bin/app' is matched by no recorded file in bin/\n" in str(caught.value)
    assert not pushed_anything(fake)


@pytest.mark.parametrize(("tamper", "problem"), [
    (lambda d: (d / "bin/app").write_text("changed\n"), "  file bin/app: changed: sha256 "),
    (lambda d: (d / "bin/.hidden").write_text("x\n"), "  file bin/.hidden: in the release directory but in no record"),
    (lambda d: os.chmod(d / "bin/app", 0o4755), "  file bin/app: mode 4755 is setuid"),
    (lambda d: (d / "SHA256SUMS").unlink(), "  SHA256SUMS: missing"),
])
def test_a_release_whose_files_do_not_match_its_record_is_refused(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient, tamper: Callable[[Path], None], problem: str
) -> None:
    tamper(release_dir)

    with pytest.raises(PublishRefused) as caught:
        publish(release_dir, manifest, fake)

    assert problem in str(caught.value)
    assert not pushed_anything(fake)


def test_a_release_still_building_is_refused(release_dir: Path, manifest: Manifest, fake: FakeDockerClient) -> None:
    record.invalidate(release_dir)

    with pytest.raises(PublishRefused, match="status building: a build is replacing its files, or was interrupted"):
        publish(release_dir, manifest, fake)
    assert not pushed_anything(fake)


# -- through the real CLI ------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    workspace = make_workspace(tmp_path_factory.mktemp("built"), first="mkdir -p out && echo 1 > out/first",
                               second="mkdir -p out && echo 2 > out/second")
    result = workspace.run("build", "--all")
    assert result.returncode == 0, result.stderr
    return workspace


def other_manifest(workspace: Workspace, tmp_path: Path) -> Path:
    """The same release name, another manifest (as the demo's and the real one are)."""
    other = tmp_path / "other.yaml"
    other.write_text(workspace.manifest.read_text().replace("echo 2", "echo two"))
    return other


def test_verify_with_another_manifest_refuses_before_asking_any_remote(built: Workspace, tmp_path: Path) -> None:
    other = other_manifest(built, tmp_path)

    # Not --offline: refusing must come before resolving pins over the network.
    result = built.run("verify", "--manifest", str(other))

    assert result.returncode == 1
    assert_one_clean_message(result, f"was built from another manifest: {built.manifest} (sha256 ",
                             f"not {other} (sha256 ")
    assert "[fetch]" not in result.stderr and "[ok]" not in result.stdout


@pytest.mark.docker
def test_publish_with_another_manifest_refuses_and_pushes_nothing(
    built: Workspace, tmp_path: Path, docker_engine: Engine
) -> None:
    other = other_manifest(built, tmp_path)

    result = built.run("publish", "--all", "--registry", "127.0.0.1:1/", "--manifest", str(other))

    assert result.returncode == 1
    assert_one_clean_message(result, f"was built from another manifest: {built.manifest} (sha256 ")
    assert "pushing" not in result.stderr
