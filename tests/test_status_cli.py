"""`status`, and finding a release's manifest again from its record (`--release-dir`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers.cli import BIN, run_cli

NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    result = run_cli(*args, program="orchestrator", cwd=cwd, timeout=600,
                     env={"XDG_CACHE_HOME": str(cwd / "cache"), "HOME": str(cwd), **NO_DOCKER, **env})
    assert "Traceback" not in result.stderr
    return result


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo built without Docker, from a directory that is not the workspace."""
    root = tmp_path_factory.mktemp("status")
    (root / "elsewhere").mkdir()
    result = cli(root / "elsewhere", "demo", "--workspace", str(root / "ws"))
    assert result.returncode == 0, result.stderr
    return root / "ws"


def test_the_record_names_its_manifest_relative_to_the_workspace(demo: Path) -> None:
    record = json.loads((demo / "dist/v3.2.0-demo/release.json").read_text())
    assert record["manifest"]["path"] == ".build/demo/manifest.yaml"


def test_status_shows_what_is_built_from_which_commits(demo: Path) -> None:
    result = cli(demo, "status", "--manifest", ".build/demo/manifest.yaml")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("release v3.2.0-demo: incomplete (11 artifacts: 7 ok, 4 skipped)")
    assert "manifest .build/demo/manifest.yaml" in out and ": unchanged" in out
    assert "felix                    ok       bin/calico-felix" in out
    assert "calico/node              skipped  no Docker engine" in out, "the state is said once"
    repo_line = next(line for line in out.splitlines() if line.startswith("libcalico-go"))
    assert len(repo_line.split()) == 3


def test_status_json_is_one_document_with_the_record(demo: Path) -> None:
    result = cli(demo, "status", "--json", "--release-dir", "dist/v3.2.0-demo")
    data = json.loads(result.stdout)
    assert data["manifest"]["state"] == "unchanged"
    # Absolute, whatever was given (as in build --json).
    assert data["release_dir"] == str((demo / "dist/v3.2.0-demo").resolve())
    assert data["manifest"]["path"] == str((demo / ".build/demo/manifest.yaml").resolve())
    assert data["record"]["release"] == "v3.2.0-demo" and data["record"]["artifacts"]["felix"]["status"] == "ok"


def test_status_says_when_the_manifest_changed_since_the_build(demo: Path, tmp_path: Path) -> None:
    manifest = demo / ".build/demo/manifest.yaml"
    original = manifest.read_bytes()
    manifest.write_bytes(original + b"# edited\n")
    try:
        result = cli(demo, "status", "--release-dir", "dist/v3.2.0-demo")
    finally:
        manifest.write_bytes(original)
    assert "changed since the build" in result.stdout


def test_verify_finds_the_manifest_from_the_release_directory_and_says_which(demo: Path) -> None:
    result = cli(demo, "verify", "--offline", "--release-dir", "dist/v3.2.0-demo")
    assert "using manifest .build/demo/manifest.yaml (recorded in dist/v3.2.0-demo/release.json)" in result.stderr
    assert "verifying release v3.2.0-demo" in result.stdout


def test_a_release_directory_and_another_manifest_are_refused_naming_both(demo: Path, project_root: Path) -> None:
    result = cli(demo, "publish", "--all", "--release-dir", "dist/v3.2.0-demo",
                 "--manifest", str(project_root / "manifest.yaml"))
    assert result.returncode == 1
    assert "was built from another manifest: .build/demo/manifest.yaml" in result.stderr
    assert str(project_root / "manifest.yaml") in result.stderr


@pytest.mark.parametrize("task", ["status", "verify", "publish"])
def test_a_release_not_built_yet_says_to_build_the_manifest_given(demo: Path, tmp_path: Path, task: str) -> None:
    """The hint names the manifest: `invoke build --all` alone would build the default
    manifest's release (for the demo's, the real one, over the network)."""
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    manifest = str(demo / ".build/demo/manifest.yaml")
    args = ["--all"] if task == "publish" else []
    result = cli(fresh, task, *args, "--manifest", manifest)
    assert result.returncode == 1
    assert "dist/v3.2.0-demo/release.json does not exist" in result.stderr
    # The program as the user ran it (here by its path: PATH does not find it), so that
    # the hint works when pasted.
    assert f"hint: build the release first: {BIN / 'orchestrator'} build --all --manifest {manifest}\n" \
        in result.stderr


def test_the_demos_next_commands_run_as_printed_with_or_without_an_activated_venv(demo: Path) -> None:
    """`scripts/demo` runs .venv/bin/invoke; a bare `invoke` in its advice would not be found
    (or would be another one) until the user activates the venv."""
    import os
    import sys

    bin_dir = Path(sys.executable).parent
    others = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                             if p and Path(p).resolve() != bin_dir.resolve())
    for path, program in ((others, str(bin_dir / "orchestrator")),
                          (f"{bin_dir}{os.pathsep}{others}", "orchestrator")):
        result = cli(demo, "demo", PATH=path)
        assert result.returncode == 0, result.stderr
        steps = result.stdout.split("work on the demo release with:\n", 1)[1].splitlines()
        assert steps[0].startswith(f"  {program} build felix -m .build/demo/manifest.yaml  "), steps


def test_the_hint_names_the_workspace_that_was_given(demo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    manifest = str(demo / ".build/demo/manifest.yaml")
    result = cli(tmp_path, "status", "--manifest", manifest, "--workspace", str(elsewhere))
    assert result.returncode == 1
    assert f"build --all --manifest {manifest} --workspace {elsewhere}\n" in result.stderr
