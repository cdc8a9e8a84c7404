"""A builder container on an engine that is not the default one: its own socket, its own
images. The checkout goes in and the outputs come back through the Docker API, never a
bind mount, so the engine could as well be on another machine."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from orchestrator.engine.dockerpy import Engine
from tests.helpers.cli import run_cli
from tests.helpers.docker_images import find_static_busybox, write_busybox_rootfs
from tests.helpers.second_engine import SecondEngine

pytestmark = pytest.mark.docker

# Only the second engine has this image: a build that ran anywhere else would fail.
REMOTE_IMAGE = "orchestrator-test.invalid/remote-only/busybox:1"


def test_a_builder_container_runs_on_the_engine_docker_host_names_with_no_bind_mount(
        second_engine: SecondEngine, tmp_path: Path) -> None:
    busybox = find_static_busybox()
    if busybox is None:
        pytest.skip("no static busybox on this machine: apt-get install busybox-static")
    client = second_engine.client()
    try:
        write_busybox_rootfs(busybox, tmp_path / "rootfs.tar")
        repository, _, tag = REMOTE_IMAGE.rpartition(":")
        Engine(client).import_rootfs(tmp_path / "rootfs.tar", repository, tag, changes=["ENV PATH=/bin"])

        repo = tmp_path / "tool"
        repo.mkdir()
        # What the container sees at /src: a directory of its own file system (no mount
        # point), holding the checkout that was copied in.
        (repo / "build.sh").write_text(
            "mkdir -p out\n"
            "grep -c ' /src ' /proc/self/mountinfo > out/mounts || true\n"
            "cat input.txt > out/tool\n")
        (repo / "input.txt").write_text("from the checkout\n")
        for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "tool"]):
            subprocess.run(["git", *args], cwd=repo, check=True)
        manifest = tmp_path / "manifest.yaml"
        manifest.write_text(f"""schema: 1
release: v1
defaults: {{network: none}}
repos:
  tool:
    url: file://{repo}
    ref: main
    artifacts:
      tool:
        type: binary
        builder: {REMOTE_IMAGE}
        command: sh build.sh
        outputs: [out/tool, out/mounts]
""")
        result = run_cli("build", "tool", "--manifest", str(manifest), "--workspace", str(tmp_path),
                         program="orchestrator", cwd=tmp_path,
                         env={"XDG_CACHE_HOME": str(tmp_path / "cache"), "DOCKER_HOST": second_engine.host})

        assert result.returncode == 0, result.stdout + result.stderr
        assert (tmp_path / "dist/v1/bin/tool").read_text() == "from the checkout\n"
        assert (tmp_path / "dist/v1/bin/mounts").read_text().strip() == "0", "/src was not a mount"
        assert (tmp_path / "dist/v1/bin/tool").stat().st_uid == os.getuid()
        record = json.loads((tmp_path / "dist/v1/release.json").read_text())
        assert record["artifacts"]["tool"]["status"] == "ok"
        assert client.containers.list(all=True) == [], "the builder container was removed from its engine"
    finally:
        client.close()
