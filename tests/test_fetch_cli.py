"""`invoke fetch`, `manifest --lock`, and the build's guards, through the real CLI,
on the demo repositories (which reproduce every ref shape of the Calico pins)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator.manifest import load
from orchestrator.sandbox import create_demo
from tests.helpers.cli import BIN, run_cli


@pytest.fixture(scope="module")
def demo_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_demo(tmp_path_factory.mktemp("demo"))


def cli(workspace: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    workspace.mkdir(parents=True, exist_ok=True)
    where = ["--workspace", str(workspace)] if args[0] != "manifest" else []
    return run_cli(*args, *where, program="orchestrator", cwd=workspace,
                   env={"XDG_CACHE_HOME": str(workspace / "cache"), "HOME": str(workspace), **env})


def git_head(path: Path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_fetch_all_checks_out_every_ref_shape_at_its_pin_and_then_needs_no_network(demo_manifest: Path,
                                                                                   tmp_path: Path) -> None:
    first = cli(tmp_path, "fetch", "--all", "--manifest", str(demo_manifest))
    assert first.returncode == 0, first.stderr
    manifest = load(demo_manifest)
    for repo in manifest.repos.values():
        assert git_head(tmp_path / ".build/src" / repo.name) == repo.commit
    second = cli(tmp_path, "fetch", "--all", "--manifest", str(demo_manifest))
    assert second.returncode == 0
    assert second.stderr.count("cached, no network") == len(manifest.repos)
    offline = cli(tmp_path, "fetch", "--all", "--offline", "--manifest", str(demo_manifest))
    assert offline.returncode == 0, offline.stderr


def test_offline_fetch_with_an_empty_cache_lists_exactly_the_missing_repos(demo_manifest: Path,
                                                                           tmp_path: Path) -> None:
    result = cli(tmp_path, "fetch", "felix,cni-plugin", "--offline", "--manifest", str(demo_manifest))
    assert result.returncode == 1
    assert "not in the cache (offline): felix, cni-plugin" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_moved_tag_fails_with_exit_2_and_both_shas(demo_manifest: Path, tmp_path: Path) -> None:
    text = demo_manifest.read_text()
    felix = load(demo_manifest).repos["felix"].commit
    assert felix
    moved = tmp_path / "manifest.yaml"
    moved.write_text(text.replace(felix, "ab" * 20))
    result = cli(tmp_path / "ws", "build", "felix", "--manifest", str(moved))
    assert result.returncode == 2
    assert "ab" * 20 in result.stderr and felix in result.stderr
    assert "moved" in result.stderr
    assert not (tmp_path / "ws/dist").exists()


def test_a_missing_ref_and_an_unreachable_remote_fail_with_their_own_messages(demo_manifest: Path,
                                                                              tmp_path: Path) -> None:
    text = demo_manifest.read_text()
    missing = tmp_path / "missing.yaml"
    missing.write_text(re.sub(r"(felix:\n    url: .*\n    ref: )v3.2.0", r"\1v9.9.9", text)
                       .replace(f"    commit: {load(demo_manifest).repos['felix'].commit}\n", "", 1))
    result = cli(tmp_path / "a", "fetch", "felix", "--manifest", str(missing))
    assert result.returncode == 2, result.stderr
    assert "v9.9.9" in result.stderr and "not found" in result.stderr
    gone = tmp_path / "gone.yaml"
    gone.write_text(text.replace(str(demo_manifest.parent / "repos" / "felix"), str(tmp_path / "nowhere")))
    result = cli(tmp_path / "b", "fetch", "felix", "--retries", "0", "--manifest", str(gone))
    assert result.returncode == 1, result.stderr
    assert "felix" in result.stderr and "nowhere" in result.stderr
    assert "Traceback" not in result.stderr


def test_lock_writes_every_commit_and_keeps_comments_and_order(demo_manifest: Path, tmp_path: Path) -> None:
    original = demo_manifest.read_text()
    unpinned = re.sub(r"\n    commit: [0-9a-f]{40}", "", original)
    path = tmp_path / "manifest.yaml"
    path.write_text("# my comment stays\n" + unpinned)
    result = cli(tmp_path, "manifest", "--lock", "--manifest", str(path))
    assert result.returncode == 0, result.stderr
    locked = path.read_text()
    assert locked.startswith("# my comment stays\n")
    assert {r.name: r.commit for r in load(path).repos.values()} == {
        r.name: r.commit for r in load(demo_manifest).repos.values()}
    again = cli(tmp_path, "manifest", "--lock", "--manifest", str(path))
    assert "already locked" in again.stdout


def test_lock_check_writes_nothing_and_lists_unpinned_and_moved_refs(demo_manifest: Path, tmp_path: Path) -> None:
    original = demo_manifest.read_text()
    felix = load(demo_manifest).repos["felix"].commit
    assert felix is not None
    # felix unpinned; calicoctl pinned at a commit its tag does not name (as if the tag moved).
    text = re.sub(rf"\n    commit: {felix}", "", original)
    calicoctl = load(demo_manifest).repos["calicoctl"].commit
    assert calicoctl is not None
    text = text.replace(f"commit: {calicoctl}", f"commit: {felix}")
    path = tmp_path / "manifest.yaml"
    path.write_text(text)
    result = cli(tmp_path, "manifest", "--lock", "--check", "--manifest", str(path))
    assert result.returncode == 1
    assert f"felix: v3.2.0 -> {felix} (unpinned)" in result.stdout
    assert f"calicoctl: v3.2.0 MOVED {felix} -> {calicoctl}" in result.stdout
    assert "2 of 8 repos are not pinned at their ref's commit: felix (unpinned), calicoctl (moved)" in result.stderr
    assert path.read_text() == text, "--check writes nothing"
    good = cli(tmp_path, "manifest", "--lock", "--check", "--manifest", str(demo_manifest))
    assert good.returncode == 0 and "every pin matches its ref" in good.stdout
    alone = cli(tmp_path, "manifest", "--check", "--manifest", str(demo_manifest))
    assert alone.returncode == 2 and "--check goes with --lock" in alone.stderr


def test_unreachable_docker_is_reported_once_before_any_work(demo_manifest: Path, tmp_path: Path) -> None:
    result = cli(tmp_path, "build", "calico/node", "--manifest", str(demo_manifest),
                 DOCKER_HOST="unix:///nonexistent/docker.sock")
    assert result.returncode == 1
    assert result.stderr.count("start Docker or set DOCKER_HOST") == 1
    assert "[fetch]" not in result.stderr and not (tmp_path / ".build/src").exists()


def test_ctrl_c_exits_130_leaves_nothing_partial_and_the_next_run_works(demo_manifest: Path,
                                                                       tmp_path: Path) -> None:
    text = demo_manifest.read_text()
    slow = tmp_path / "manifest.yaml"
    slow.write_text(text.replace("command: sh build.sh", "command: sleep 60; sh build.sh", 1))
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    proc = subprocess.Popen([str(BIN / "orchestrator"), "build", "felix", "--manifest", str(slow), "--workspace",
                             str(tmp_path)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    log = tmp_path / ".build/logs/v3.2.0-demo/felix.log"
    for _ in range(300):
        if log.exists() and "sleep 60" in log.read_text():
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert not (tmp_path / "dist/v3.2.0-demo/bin/calico-felix").exists()
    assert not (tmp_path / "dist/v3.2.0-demo/release.json").exists()
    assert subprocess.run(["pgrep", "-f", "sleep 60; sh build.sh"]).returncode == 1
    again = cli(tmp_path, "build", "felix", "--manifest", str(demo_manifest))
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "dist/v3.2.0-demo/bin/calico-felix").exists()


def test_a_warm_fetch_runs_no_git_process_as_the_debug_log_shows(demo_manifest: Path, tmp_path: Path) -> None:
    assert cli(tmp_path, "fetch", "--all", "--manifest", str(demo_manifest)).returncode == 0
    cold = cli(tmp_path / "other", "fetch", "--all", "--manifest", str(demo_manifest), ORCHESTRATOR_LOG="debug")
    repos = len(load(demo_manifest).repos)
    git_lines = [line for line in cold.stderr.splitlines() if line.startswith("debug: git ")]
    assert cold.returncode == 0, cold.stderr
    assert not [line for line in git_lines if line.startswith("debug: git ls-remote")]  # every demo repo is pinned
    assert len(git_lines) <= 5 * repos, "\n".join(git_lines)  # fetch, rev-list; fetch, checkout (+1 for a commit)

    warm = cli(tmp_path, "fetch", "--all", "--manifest", str(demo_manifest), ORCHESTRATOR_LOG="debug")

    assert warm.returncode == 0, warm.stderr
    assert [line for line in warm.stderr.splitlines() if line.startswith("debug: git ")] == []


def test_fetch_all_fetches_repositories_that_have_no_artifacts(demo_manifest: Path, tmp_path: Path) -> None:
    manifest = load(demo_manifest)
    bare = tmp_path / "bare.yaml"
    lines = ["schema: 1\nrelease: bare\nrepos:\n"]
    for repo in manifest.repos.values():
        lines.append(f"  {repo.name}:\n    url: {repo.url}\n    ref: {repo.ref}\n    commit: {repo.commit}\n"
                     f"    artifacts: {{}}\n")
    bare.write_text("".join(lines))

    result = cli(tmp_path / "ws", "fetch", "--all", "--manifest", str(bare))
    named = cli(tmp_path / "ws2", "fetch", "felix", "--manifest", str(bare))

    assert result.returncode == 0, result.stderr
    for repo in manifest.repos.values():
        assert git_head(tmp_path / "ws" / ".build/src" / repo.name) == repo.commit
    assert named.returncode == 0, named.stderr
    assert git_head(tmp_path / "ws2" / ".build/src/felix") == manifest.repos["felix"].commit
