"""Two builds of the demo from scratch (fresh workspace, fresh cache) are identical."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.engine.dockerpy import Engine
from orchestrator.errors import DockerUnavailableError
from tests.conftest import IMAGE_PREFIX
from tests.helpers.cli import run_cli
from tests.helpers.second_engine import SecondEngine


def build_demo_from_scratch(workspace: Path, manifest: Path | None = None, **env: str) -> dict:  # type: ignore[type-arg]
    """The demo in a fresh workspace with a fresh mirror cache; with ``manifest``,
    the same demo repositories (same URLs, so same source labels) built again."""
    workspace.mkdir()
    args = ["build", "--all", "--manifest", str(manifest)] if manifest else ["demo", "--registry", IMAGE_PREFIX]
    result = run_cli(*args, "--workspace", str(workspace), program="orchestrator", cwd=workspace, timeout=600,
                     env={"XDG_CACHE_HOME": str(workspace / "cache"), "HOME": str(workspace), **env})
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((workspace / "dist/v3.2.0-demo/release.json").read_text())  # type: ignore[no-any-return]


def files(record: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {f["path"]: f["sha256"] for a in record["artifacts"].values() for f in a["files"]}


def test_every_file_artifact_is_byte_identical_across_builds_from_scratch(tmp_path: Path) -> None:
    no_docker = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    first = build_demo_from_scratch(tmp_path / "one", **no_docker)
    second = build_demo_from_scratch(tmp_path / "two", **no_docker)

    assert files(first) == files(second)
    assert {p.split("/")[0] for p in files(first)} == {"bin", "python", "src"}
    assert any(p.endswith(".tar.gz") and p.startswith("python/") for p in files(first))
    assert ((tmp_path / "one/dist/v3.2.0-demo/SHA256SUMS").read_bytes()
            == (tmp_path / "two/dist/v3.2.0-demo/SHA256SUMS").read_bytes())


def images(record: dict, key: str) -> dict[str, list]:  # type: ignore[type-arg]
    return {name: [i[key] for i in a["images"]] for name, a in record["artifacts"].items() if a["images"]}


@pytest.mark.docker
def test_images_carry_identical_labels_and_layers_across_builds_from_scratch_on_two_engines(
    tmp_path: Path, second_engine: SecondEngine
) -> None:
    try:
        Engine.from_env(timeout=60)
    except DockerUnavailableError as e:
        pytest.skip(f"no Docker engine answers ({e}); start one with .ci/docker-up")
    first = build_demo_from_scratch(tmp_path / "one")
    # On another engine, so that no layer can come from the first build's cache: the
    # same content must give the same layers by itself (README: reproducible images).
    second = build_demo_from_scratch(tmp_path / "two", tmp_path / "one/.build/demo/manifest.yaml",
                                     DOCKER_HOST=second_engine.host)

    labels, layers = images(first, "labels"), images(first, "layers")
    assert len(labels) == 4 and labels == images(second, "labels")
    assert labels["calico/node"][0]["org.opencontainers.image.created"].startswith("2018-")
    assert all(len(found) == 1 and len(found[0]) == 1 for found in layers.values()), layers
    assert layers == images(second, "layers")
    assert files(first) == files(second)
