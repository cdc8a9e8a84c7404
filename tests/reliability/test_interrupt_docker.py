"""Containers that host commands start with the real ``docker`` CLI never outlive their step.

Every real Calico Makefile runs ``docker run ...``: on Ctrl-C, docker's sig-proxy
forwards SIGTERM to the container's PID 1, which ignores it. These tests run the real
docker CLI against the real engine (``DOCKER_HOST``), inside a real orchestrator.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.helpers.gitrepos import git
from tests.reliability.interrupt_helpers import kill_marked, make_workspace, marker, wait_until

pytestmark = pytest.mark.docker


def containers(client: Any, name: str) -> list[Any]:
    # sparse: what the list call says, with no inspect of each (which races a container's removal)
    return list(client.containers.list(all=True, sparse=True, filters={"name": name}))


def running(client: Any, name: str) -> bool:
    return any(c.status == "running" for c in containers(client, name))


def test_ctrl_c_stops_a_container_that_a_host_command_runs_in_the_foreground(
        tmp_path: Path, client: Any, name: str, busybox: str) -> None:
    # `-H "$DOCKER_HOST"`: the shim must find `run` after docker's own options.
    ws = make_workspace(tmp_path, {"image-step": f"""
        echo started
        docker -H "$DOCKER_HOST" run --rm --network none --name {name} {busybox} sleep 120
    """})
    run = ws.start("build", *ws.args("--all"))
    wait_until(lambda: running(client, name), "the container to run")

    run.signal(signal.SIGINT)
    code, _, err = run.finish(timeout=60)  # without the fix, the build waits out the container's 120 s

    assert code == 130, err
    assert containers(client, name) == [], "the container is stopped and removed"
    assert "Traceback" not in err


def test_a_container_a_step_leaves_running_is_removed_when_the_step_ends(
        tmp_path: Path, client: Any, name: str, busybox: str) -> None:
    ws = make_workspace(tmp_path, {"daemon": f"""
        docker run -d --network none --name {name} {busybox} sleep 300
        mkdir -p out && echo built > out/daemon
    """})

    code, _, err = ws.run("build", *ws.args("--all"))

    assert code == 0, err
    assert containers(client, name) == []
    assert f"stopped and removed the container(s) the command left: container {name}" in ws.log("daemon")


def test_a_failing_docker_run_in_a_step_fails_the_step_with_dockers_message(
        tmp_path: Path, client: Any, busybox: str) -> None:
    ws = make_workspace(tmp_path, {"broken": "docker run --rm --network none orchestrator-test/no-such-image:1 true"})

    code, out, err = ws.run("build", *ws.args("--all"))

    assert code == 1, err
    assert "orchestrator-test/no-such-image" in out and "exit code 125" in out


def with_word(client: Any, word: str) -> list[Any]:
    """Containers whose command holds ``word``: from the list call alone (sparse), as an
    inspect of each races the removal of containers other tests run meanwhile."""
    return [c for c in client.containers.list(all=True, sparse=True) if word in str(c.attrs.get("Command") or "")]


def test_containers_a_killed_run_left_are_stopped_by_the_next_run_in_the_workspace(
        tmp_path: Path, client: Any, name: str, busybox: str) -> None:
    word = marker()
    # A container started by a host command (through the shim), and a builder container.
    ws = make_workspace(tmp_path, {
        "host": f"docker run -d --network none --name {name} {busybox} sleep 300\n"
                "echo started\nwhile :; do sleep 1; done",
        "inbox": f"sleep 300; echo {word}",
    }, extra={"inbox": f"builder: {busybox}"})
    try:
        killed = ws.start("build", "host", *ws.args(), name="killed-host")
        wait_until(lambda: running(client, name) and "started" in ws.log("host"), "the host step's container")
        os.kill(killed.process.pid, signal.SIGKILL)  # the orchestrator alone, as the OOM killer would
        killed.process.wait()
        assert running(client, name), "kill -9 leaves the container running"

        # The next run stops it before anything else; killed in turn, it leaves its builder container.
        second = ws.start("build", "inbox", *ws.args(), name="killed-builder")
        wait_until(lambda: any(c.status == "running" for c in with_word(client, word)), "the builder container")
        assert containers(client, name) == []
        assert f"container {name}" in second.err.read_text()
        os.kill(second.process.pid, signal.SIGKILL)
        second.process.wait()

        ws.rewrite({"host": "mkdir -p out && echo a > out/host", "inbox": "mkdir -p out && echo b > out/inbox"},
                   extra={"inbox": f"builder: {busybox}"})
        code, _, err = ws.run("build", *ws.args("--all"))

        assert code == 0, err
        assert with_word(client, word) == []
        assert f"a run that died holding this workspace (pid {second.process.pid}" in err and "image " in err
    finally:
        for container in with_word(client, word):
            container.remove(force=True)
        kill_marked("while :; do sleep 1; done")


def test_a_second_ctrl_c_removes_the_container_at_once(tmp_path: Path, client: Any, name: str,
                                                       busybox: str) -> None:
    ws = make_workspace(tmp_path, {"image-step": f"""
        trap 'echo "got" "term"' TERM
        docker run --rm --network none --name {name} {busybox} sleep 120 &
        echo started
        while :; do wait; done
    """}, env={"ORCHESTRATOR_STOP_GRACE": "600"})  # the second Ctrl-C lands in the grace, however slow
    run = ws.start("build", *ws.args("--all"))
    wait_until(lambda: running(client, name), "the container to run")

    run.signal(signal.SIGINT)
    # "got term", never in the log's copy of the script: waiting for "got-term" returned at
    # once, and two signals sent back to back were merged into one by the kernel.
    wait_until(lambda: "got term" in ws.log("image-step"), "the graceful stop to begin")
    run.signal(signal.SIGINT)
    code, _, err = run.finish(timeout=60)

    assert code == 130, err
    assert "interrupted again" in err
    # Killed and being removed: the engine may still be finishing the removal (of --rm).
    wait_until(lambda: containers(client, name) == [], "the container to be gone", timeout=30)


class SilentRegistry:
    """A TCP port that accepts connections and never answers: a push to it hangs."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.address = f"127.0.0.1:{self.server.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.accepted.append(self.server.accept()[0])

    def close(self) -> None:
        for connection in self.accepted:
            connection.close()
        self.server.close()


def test_sigterm_during_a_push_exits_130(tmp_path: Path, client: Any) -> None:
    ws = make_workspace(tmp_path, {})
    image = f"orchestrator-test/pub-{uuid.uuid4().hex[:8]}"
    ws.manifest.write_text(ws.manifest.read_text().replace("    artifacts:\n", f"""    artifacts:
      {image}:
        type: image
        context: .
        dockerfile: Dockerfile
"""))
    (tmp_path / "upstream" / "Dockerfile").write_text("FROM scratch\nCOPY README /README\n")
    git("add", "-A", cwd=tmp_path / "upstream")
    git("commit", "-q", "-m", "an image", cwd=tmp_path / "upstream")
    registry = SilentRegistry()
    try:
        code, _, err = ws.run("build", *ws.args("--all"))
        assert code == 0, err
        run = ws.start("publish", *ws.args("--all", "--registry", f"{registry.address}/"))
        wait_until(lambda: registry.accepted, "the engine to contact the registry")

        run.signal(signal.SIGTERM)
        code, _, err = run.finish(timeout=60)

        assert code == 130, err
        assert "interrupted" in err and "Traceback" not in err
    finally:
        registry.close()
        for ref in (f"{image}:v1", f"{registry.address}/{image}:v1"):
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(ref, force=True)
