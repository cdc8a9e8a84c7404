"""`invoke demo` and `invoke build` end to end on the demo repositories.

The real-engine tests (marker `docker`) skip with the reason when no engine answers;
.ci/run starts one, so CI runs them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.engine.dockerpy import Engine
from orchestrator.errors import DockerUnavailableError
from tests.conftest import IMAGE_PREFIX
from tests.helpers.cli import run_cli

IMAGES = ["calico/node", "calico/test", "calico/build", "calico/kube-controllers"]


def env_for(workspace: Path, **extra: str) -> dict[str, str]:
    return {"XDG_CACHE_HOME": str(workspace / "cache"), "HOME": str(workspace), **extra}


def demo(workspace: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    workspace.mkdir(parents=True, exist_ok=True)
    return run_cli("demo", "--workspace", str(workspace), "--registry", IMAGE_PREFIX, *args, program="orchestrator",
                   cwd=workspace, env=env_for(workspace, **env), timeout=600)


def build(workspace: Path, manifest: Path, *args: str) -> subprocess.CompletedProcess[str]:
    workspace.mkdir(parents=True, exist_ok=True)
    return run_cli("build", *args, "--manifest", str(manifest), "--workspace", str(workspace),
                   program="orchestrator", cwd=workspace, env=env_for(workspace), timeout=600)


def release(workspace: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((workspace / "dist/v3.2.0-demo/release.json").read_text())


@pytest.fixture(scope="module")
def real_engine() -> Engine:
    try:
        return Engine.from_env(timeout=60)
    except DockerUnavailableError as e:
        pytest.skip(f"no Docker engine answers ({e}); start one with .ci/docker-up")


@pytest.fixture(scope="module")
def built_demo(tmp_path_factory: pytest.TempPathFactory, real_engine: Engine) -> Path:
    workspace = tmp_path_factory.mktemp("demo")
    result = demo(workspace)
    assert result.returncode == 0, result.stdout + result.stderr
    return workspace


def test_demo_without_docker_builds_the_rest_and_names_each_image_and_why(tmp_path: Path) -> None:
    result = demo(tmp_path, DOCKER_HOST="unix:///nonexistent/docker.sock")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not built, no Docker engine: " + ", ".join(IMAGES) in result.stderr
    assert "start Docker or set DOCKER_HOST" in result.stderr
    record = release(tmp_path)
    statuses = {name: a["status"] for name, a in record["artifacts"].items()}
    assert {statuses[name] for name in IMAGES} == {"skipped"}
    assert {s for name, s in statuses.items() if name not in IMAGES} == {"ok"}
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path / "dist/v3.2.0-demo", capture_output=True)
    assert check.returncode == 0


@pytest.mark.docker
def test_demo_builds_the_whole_release_with_valid_sums_and_record(built_demo: Path, real_engine: Engine) -> None:
    record = release(built_demo)
    assert record["status"] == "ok"
    assert len(record["artifacts"]) == 11 and len(record["repos"]) == 8
    kinds = {a["type"] for a in record["artifacts"].values()}
    assert kinds == {"binary", "image", "python-package", "library"}
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=built_demo / "dist/v3.2.0-demo",
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    assert "python/pycalico-0.19.0-py3-none-any.whl: OK" in check.stdout
    assert "src/libcalico-go-" in check.stdout
    node = record["artifacts"]["calico/node"]["images"][0]
    labels = real_engine.image_labels(node["id"])
    assert labels["org.opencontainers.image.revision"] == record["repos"]["node"]["commit"]
    assert labels["org.opencontainers.image.version"] == "v3.2.0-demo"
    assert real_engine.image_id(f"{IMAGE_PREFIX}calico/node:v3.2.0-demo") == node["id"]


@pytest.mark.docker
def test_rerunning_the_demo_works_and_rebuilds_nothing(built_demo: Path) -> None:
    result = demo(built_demo)
    assert result.returncode == 0, result.stderr
    statuses = {a["status"] for a in release(built_demo)["artifacts"].values()}
    assert statuses == {"cached"}
    assert "cached, no network" in result.stderr


@pytest.mark.docker
def test_build_felix_on_the_demo_manifest_builds_only_felix(built_demo: Path, tmp_path: Path) -> None:
    result = build(tmp_path, built_demo / ".build/demo/manifest.yaml", "felix")
    assert result.returncode == 0, result.stderr
    assert list(release(tmp_path)["artifacts"]) == ["felix"]
    assert sorted(p.name for p in (tmp_path / "dist/v3.2.0-demo/bin").iterdir()) == ["calico-felix"]


@pytest.mark.docker
def test_build_calico_node_builds_felix_first_and_stages_it(built_demo: Path, tmp_path: Path) -> None:
    result = build(tmp_path, built_demo / ".build/demo/manifest.yaml", "calico/node")
    assert result.returncode == 0, result.stderr
    record = release(tmp_path)
    assert list(record["artifacts"]) == ["felix", "calico/node"]
    assert result.stderr.index("[ok] felix") < result.stderr.index("[running] calico/node")
    staged = tmp_path / ".build/src/node/rootfs/bin/calico-felix"
    assert staged.read_bytes() == (tmp_path / "dist/v3.2.0-demo/bin/calico-felix").read_bytes()


@pytest.mark.docker
def test_a_failing_artifact_with_keep_going_leaves_every_independent_artifact_built(built_demo: Path,
                                                                                     tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.yaml"
    text = (built_demo / ".build/demo/manifest.yaml").read_text()
    felix_command = next(line for line in text.splitlines() if "command:" in line)
    manifest.write_text(text.replace(felix_command, felix_command.split("command:")[0]
                                     + "command: echo felix is broken >&2; exit 7", 1))
    result = build(tmp_path / "ws", manifest, "--all", "--keep-going")
    assert result.returncode == 1
    record = release(tmp_path / "ws")
    statuses = {name: a["status"] for name, a in record["artifacts"].items()}
    assert statuses.pop("felix") == "failed"
    assert statuses.pop("calico/node") == "skipped"
    assert set(statuses.values()) == {"ok"}
    assert record["artifacts"]["calico/node"]["error"] == "skipped: dependency felix failed"
    assert "felix is broken" in result.stdout and "full log: .build/logs/v3.2.0-demo/felix.log" in result.stdout


@pytest.mark.docker
def test_a_failing_dockerfile_fails_its_image_with_the_engine_message(built_demo: Path, tmp_path: Path) -> None:
    demo_repos = built_demo / ".build/demo"
    shutil.copytree(demo_repos, tmp_path / "demo", symlinks=True)
    manifest = tmp_path / "demo/manifest.yaml"
    text = manifest.read_text().replace(str(demo_repos), str(tmp_path / "demo"))
    manifest.write_text(text.replace("dockerfile: Dockerfile.calico_test", "dockerfile: Dockerfile.calico_test\n"
                                     "        target: no-such-stage"))
    result = build(tmp_path / "ws", manifest, "calico/test")
    assert result.returncode == 1
    assert "FAILED calico/test" in result.stdout
    assert "no-such-stage" in result.stdout
