"""A builder container is a sandbox: through the real engine, nothing it writes reaches
the host's .git, runs on the host, or leads a host write or read outside the checkout."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import subprocess
from pathlib import Path

import docker  # type: ignore[import-untyped, unused-ignore]
import pytest

from orchestrator.engine.dockerpy import Engine
from tests.reliability.isolation_helpers import Link, Workspace, make_repo

pytestmark = pytest.mark.docker
LEAK = "orchestrator-test/leak:v1"


def tree_digest(root: Path) -> str:
    """One hash over every path, mode and content under ``root``."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            info = path.lstat()
            digest.update(f"{path.relative_to(root)} {info.st_mode}\n".encode())
            if stat.S_ISREG(info.st_mode):
                digest.update(path.read_bytes())
    return digest.hexdigest()


def workspace(tmp_path: Path, busybox: str, script: str, outputs: str, extra: str = "") -> Workspace:
    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    commit = make_repo(tmp_path / "repo", {"build.sh": script, "README": "tool\n"})
    ws.manifest(tmp_path / "repo", commit, f"""
tool:
  type: binary
  builder: {busybox}
  command: sh build.sh
  outputs: {outputs}
{extra}""")
    return ws


def test_fsmonitor_and_hooks_a_container_plants_in_git_never_run_on_the_host(busybox: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran-on-the-host"
    attack = f"""set -e
printf '[core]\\n\\tfsmonitor = touch {marker}\\n[filter "x"]\\n\\tsmudge = touch {marker}\\n' >> .git/config
mkdir -p .git/hooks
printf '#!/bin/sh\\ntouch {marker}\\n' > .git/hooks/post-checkout
chmod 755 .git/hooks/post-checkout
echo '* filter=x' > .git/info/attributes || true
mkdir -p out && echo tool > out/tool
"""
    ws = workspace(tmp_path, busybox, attack, "[out/tool]", "tool-src:\n  type: library")
    code, output = ws.run("fetch", "tool")
    assert code == 0, output
    git_before = tree_digest(ws.checkout / ".git")

    code, output = ws.run("build", "tool")
    assert code == 0, output
    assert tree_digest(ws.checkout / ".git") == git_before, "the host's .git is untouched"

    # Everything that runs git in that checkout afterwards: a re-fetch (checkout, clean),
    # the library's git archive, and the user's own plain `git status`.
    for task in (("fetch", "tool"), ("build", "tool-src", "--force")):
        code, output = ws.run(*task)
        assert code == 0, output
    subprocess.run(["git", "status", "--porcelain"], cwd=ws.checkout, check=True, capture_output=True)
    assert not marker.exists()


def test_a_container_made_symlink_to_etc_shadow_is_refused_as_an_output(busybox: str, tmp_path: Path) -> None:
    ws = workspace(tmp_path, busybox, "ln -s /etc/shadow shadow\n", "[shadow]")

    code, output = ws.run("build", "tool")

    assert code == 1
    assert "output 'shadow' resolves to /etc/shadow, outside the checkout" in output
    assert not (ws.release / "bin" / "shadow").exists()
    assert os.readlink(ws.checkout / "shadow") == "/etc/shadow", "it came back as a symlink, never followed"


def test_a_directory_symlink_a_container_makes_cannot_redirect_a_later_host_write(
    busybox: str, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    # The container points bin/ out of the checkout; the next artifact stages into bin/.
    ws = workspace(tmp_path, busybox, f"mkdir -p out && echo tool > out/tool && ln -s {outside} bin\n",
                   "[out/tool]", """staged:
  type: binary
  command: "true"
  outputs: [README]
  stage: {bin/tool: tool}""")

    code, output = ws.run("build", "staged")

    assert code == 1
    assert f"staged: cannot stage tool at 'bin/tool': bin: resolves to {outside}, outside the checkout" in output
    assert list(outside.iterdir()) == []


def test_a_setuid_group_writable_output_comes_back_and_is_published_without_those_bits(
    busybox: str, tmp_path: Path
) -> None:
    ws = workspace(tmp_path, busybox, "mkdir -p out && echo tool > out/tool && chmod 6777 out/tool\n", "[out/tool]")

    code, output = ws.run("build", "tool")

    assert code == 0, output
    assert stat.S_IMODE((ws.checkout / "out/tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((ws.release / "bin/tool").stat().st_mode) == 0o755


def test_devices_and_fifos_made_in_the_container_stay_there(busybox: str, tmp_path: Path) -> None:
    # The container runs as our uid; as root it may mknod (docker grants CAP_MKNOD).
    script = "mkdir -p out && echo tool > out/tool && mkfifo out/pipe && (mknod out/null c 1 3 || true)\n"
    ws = workspace(tmp_path, busybox, script, "[out/tool]")

    code, output = ws.run("build", "tool")

    assert code == 0, output
    assert sorted(p.name for p in (ws.checkout / "out").iterdir()) == ["tool"]
    log = (ws.root / ".build/logs/v1/tool.log").read_text()
    assert "not copied back from the container: src/out/pipe: a FIFO" in log


def test_files_the_container_deletes_are_gone_on_the_host_and_git_came_in_as_a_copy(
    busybox: str, tmp_path: Path
) -> None:
    ws = workspace(tmp_path, busybox, "mkdir -p out && cat .git/HEAD > out/tool && rm README\n", "[out/tool]")

    code, output = ws.run("build", "tool")

    assert code == 0, output
    assert not (ws.checkout / "README").exists()
    assert (ws.release / "bin/tool").read_text().strip() == (ws.checkout / ".git/HEAD").read_text().strip()


def test_a_committed_symlink_as_the_build_context_sends_no_host_file_to_the_engine(
    busybox: str, docker_engine: Engine, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "id_rsa").write_text("PRIVATE KEY\n")
    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    commit = make_repo(tmp_path / "repo", {"ctx": Link(str(home)), "Dockerfile": "FROM scratch\nCOPY id_rsa /id_rsa\n"})
    ws.manifest(tmp_path / "repo", commit, f"""
leak:
  type: image
  dockerfile: Dockerfile
  context: ctx
  tags: ["{LEAK}"]
""")
    try:
        code, output = ws.run("build", "leak")

        assert code == 1
        assert f"leak: ctx: resolves to {home}, outside the checkout {ws.checkout}" in output
        assert docker_engine.image_id(LEAK) is None
    finally:
        with contextlib.suppress(Exception):
            docker.from_env().images.remove(LEAK, force=True)
