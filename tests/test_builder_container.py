"""A binary built inside a builder image, through the real engine, end to end."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli

pytestmark = pytest.mark.docker


def make_repo(path: Path) -> str:
    path.mkdir()
    (path / "build.sh").write_text('mkdir -p out\nprintf "tool %s %s\\n" "$RELEASE" "$(pwd)" > out/tool\n')
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "tool"], ["tag", "v1"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_binary_built_in_a_builder_container_lands_in_the_release(busybox: str, tmp_path: Path) -> None:
    commit = make_repo(tmp_path / "tool")
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(f"""schema: 1
release: v1
defaults: {{network: none}}
repos:
  tool:
    url: file://{tmp_path / 'tool'}
    ref: v1
    commit: {commit}
    artifacts:
      tool:
        type: binary
        builder: {busybox}
        command: sh build.sh
        outputs: [out/tool]
""")
    result = run_cli("build", "tool", "--manifest", str(manifest), "--workspace", str(tmp_path), program="orchestrator",
                     cwd=tmp_path, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stdout + result.stderr
    built = tmp_path / "dist/v1/bin/tool"
    assert built.read_text() == "tool v1 /src\n"  # ran inside the container, where the checkout is /src
    assert built.stat().st_uid == os.getuid()
    record = json.loads((tmp_path / "dist/v1/release.json").read_text())
    assert record["artifacts"]["tool"]["status"] == "ok"
