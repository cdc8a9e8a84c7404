"""`invoke verify` and `invoke publish` on the demo release, through the real CLI."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.engine.dockerpy import Engine
from tests.conftest import IMAGE_PREFIX
from tests.helpers import registry as real
from tests.helpers.cli import run_cli

IMAGES = ["calico/node", "calico/test", "calico/build", "calico/kube-controllers"]


def cli(workspace: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, "--workspace", str(workspace), program="orchestrator", cwd=workspace, timeout=600,
                   env={"XDG_CACHE_HOME": str(workspace / "cache"), "HOME": str(workspace), **env})


@pytest.fixture(scope="module")
def files_only_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo built without Docker: files only, images skipped."""
    workspace = tmp_path_factory.mktemp("files")
    result = cli(workspace, "demo", DOCKER_HOST="unix:///nonexistent/docker.sock")
    assert result.returncode == 0, result.stderr
    return workspace


def test_verify_passes_on_a_good_release_and_names_the_tampered_file(files_only_demo: Path, tmp_path: Path) -> None:
    manifest = str(files_only_demo / ".build/demo/manifest.yaml")
    good = cli(files_only_demo, "verify", "--offline", "--manifest", manifest,
               DOCKER_HOST="unix:///nonexistent/docker.sock")
    # Images were never built here, so the record is incomplete: verify says so, and
    # every file, provenance entry and pin still matches.
    assert "[FAIL]" in good.stdout and "release.json status" in good.stdout
    assert good.stdout.count("[FAIL]") == 1, good.stdout
    felix = files_only_demo / "dist/v3.2.0-demo/bin/calico-felix"
    original = felix.read_bytes()
    felix.write_bytes(original + b"# tampered\n")
    try:
        bad = cli(files_only_demo, "verify", "--offline", "--manifest", manifest,
                  DOCKER_HOST="unix:///nonexistent/docker.sock")
    finally:
        felix.write_bytes(original)
    assert bad.returncode == 1
    assert "bin/calico-felix" in "\n".join(line for line in bad.stdout.splitlines() if "[FAIL]" in line)


@pytest.mark.docker
def test_publish_refuses_a_release_with_unbuilt_artifacts_and_pushes_nothing(files_only_demo: Path,
                                                                              docker_engine: Engine) -> None:
    manifest = str(files_only_demo / ".build/demo/manifest.yaml")
    result = cli(files_only_demo, "publish", "--all", "--registry", "127.0.0.1:1/", "--manifest", manifest)
    assert result.returncode == 1
    for name in IMAGES:
        assert name in result.stderr
    assert "skipped" in result.stderr


@pytest.fixture
def published_demo(tmp_path: Path, registry: real.Registry) -> Iterator[tuple[Path, real.Registry]]:
    result = cli(tmp_path, "demo", "--registry", IMAGE_PREFIX)
    assert result.returncode == 0, result.stderr
    yield tmp_path, registry


@pytest.mark.docker
def test_publishing_the_demo_pushes_every_image_once_and_verify_passes(
        published_demo: tuple[Path, real.Registry], docker_engine: Engine) -> None:
    workspace, reg = published_demo
    manifest = str(workspace / ".build/demo/manifest.yaml")
    first = cli(workspace, "publish", "--all", "--registry", f"{reg.address}/", "--manifest", manifest)
    assert first.returncode == 0, first.stderr
    record = json.loads((workspace / "dist/v3.2.0-demo/release.json").read_text())
    for name in IMAGES:
        (image,) = record["artifacts"][name]["images"]
        (pushed,) = image["pushed"].values()
        assert pushed["digest"].startswith("sha256:") and pushed["id"] == image["id"]
    again = cli(workspace, "publish", "--all", "--registry", f"{reg.address}/", "--manifest", manifest)
    assert again.returncode == 0 and "already published" in again.stdout
    verified = cli(workspace, "verify", "--offline", "--registry", "--skip", "signature", "--manifest", manifest)
    assert verified.returncode == 0, verified.stdout
    assert verified.stdout.count(f"[ok]    registry {reg.address}/") == len(IMAGES), verified.stdout
    unasked = cli(workspace, "verify", "--offline", "--skip", "signature", "--manifest", manifest)
    assert unasked.returncode == 1 and f"[--]    registry {reg.address}: not asked: 4 pushed" in unasked.stdout
    assert "is not verified: 1 check(s) did not run" in unasked.stderr
