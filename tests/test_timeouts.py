"""`timeout:`: a hung recipe is stopped as Ctrl-C would stop it, and reported as timed out."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator.engine.dockerpy import Engine
from orchestrator.sandbox import create_demo
from orchestrator.shim import WORKSPACE_LABEL
from tests.helpers.cli import run_cli
from tests.helpers.docker_images import BUSYBOX_REF, busybox_image

# A duration of its own, so that looking for what is left finds this test's processes only
# (not those of a test running beside it).
HANG = f"sleep 300.{secrets.randbelow(10**6):06d}"
HUNG = f"command: sh -c 'trap \"\" TERM; {HANG} & wait; {HANG}'"


def hung_demo(tmp_path: Path, timeout: str, builder: str | None = None) -> Path:
    manifest = create_demo(tmp_path / "demo")
    text = manifest.read_text()
    replacement = f"{HUNG}\n        timeout: {timeout}"
    if builder:
        replacement += f"\n        builder: {builder}"
    hung = tmp_path / "hung.yaml"
    hung.write_text(text.replace("command: sh build.sh", replacement, 1))
    return hung


def test_a_hung_host_command_is_stopped_at_its_timeout_with_everything_it_started(tmp_path: Path) -> None:
    manifest = hung_demo(tmp_path, "2s")
    started = time.monotonic()
    result = run_cli("build", "felix", "--json", "-m", str(manifest), program="orchestrator", cwd=tmp_path,
                     env={"XDG_CACHE_HOME": str(tmp_path / "cache")}, timeout=120)
    assert result.returncode == 1, result.stderr
    assert time.monotonic() - started < 100, "stopped by its timeout, not by the test's"
    data = json.loads(result.stdout)
    felix = data["artifacts"]["felix"]
    assert felix["status"] == "failed" and felix["timed_out"] is True
    assert "timed out after" in felix["error"] and "timeout:" in felix["error"]
    assert subprocess.run(["pgrep", "-f", HANG], capture_output=True).stdout == b"", \
        "the command and the child that ignored SIGTERM are gone"


def test_the_summary_says_timed_out(tmp_path: Path) -> None:
    manifest = hung_demo(tmp_path, "1")
    result = run_cli("build", "felix", "-m", str(manifest), program="orchestrator", cwd=tmp_path,
                     env={"XDG_CACHE_HOME": str(tmp_path / "cache")}, timeout=120)
    assert result.returncode == 1
    row = next(line for line in result.stdout.splitlines() if line.startswith("felix "))
    assert row.split()[1:3] == ["timed", "out"]


@pytest.mark.docker
def test_a_hung_builder_container_is_stopped_and_removed_at_its_timeout(tmp_path: Path,
                                                                        docker_engine: Engine) -> None:
    try:
        busybox_image(docker_engine)
    except LookupError as e:
        pytest.skip(str(e))
    manifest = hung_demo(tmp_path, "3s", builder=BUSYBOX_REF)
    result = run_cli("build", "felix", "--json", "-m", str(manifest), program="orchestrator", cwd=tmp_path,
                     env={"XDG_CACHE_HOME": str(tmp_path / "cache")}, timeout=180)
    assert result.returncode == 1, result.stderr
    felix = json.loads(result.stdout)["artifacts"]["felix"]
    assert felix["timed_out"] is True, felix
    import docker

    client = docker.from_env()
    mine = {"label": f"{WORKSPACE_LABEL}={tmp_path.resolve()}"}  # this test's containers, no other's
    assert client.containers.list(all=True, sparse=True, filters=mine) == []


def test_timeouts_never_change_a_cache_key(tmp_path: Path) -> None:
    from orchestrator.cache import cache_key
    from orchestrator.manifest import load

    manifest = create_demo(tmp_path / "demo")
    longer = tmp_path / "longer.yaml"
    longer.write_text(manifest.read_text().replace("  network: none\n", "  network: none\n  timeout: 5h\n", 1))
    one, two = load(manifest), load(longer)
    assert two.artifacts["felix"].timeout == 5 * 3600 and one.artifacts["felix"].timeout == 2 * 3600
    keys = [cache_key(m, m.artifacts["felix"], commit="0" * 40, dependency_keys={}, builder_id=None)
            for m in (one, two)]
    assert keys[0] == keys[1]
