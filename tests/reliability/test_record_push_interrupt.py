"""Ctrl-C during a push: the push in flight is waited for (bounded), recorded if it
landed, and the run exits 130 saying so; a second Ctrl-C stops waiting and says the
reference's state is unknown.

A real ``invoke publish`` process, the real Docker engine and a real local registry. The
engine reaches the registry through a gate (a loopback TCP proxy that holds connections
until it is opened), so the push is provably in flight when SIGINT arrives.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.engine.dockerpy import Engine
from tests.helpers import registry as real
from tests.helpers.cli import BIN, ROOT
from tests.helpers.registry import APP_COMMIT, make_release, small_manifest

pytestmark = pytest.mark.docker
SAFETY = 120  # seconds: a bound on waits that should take well under one


class Gate:
    """127.0.0.1:<port> forwarding to the registry, holding every connection until opened."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.split(":")
        self.upstream = (host, int(port))
        self.opened = threading.Event()
        self.connected = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self.connected.set()
        if not self.opened.wait(SAFETY):
            client.close()
            return
        upstream = socket.create_connection(self.upstream)
        for source, dest in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(source, dest), daemon=True).start()

    def close(self) -> None:
        self.opened.set()
        self.server.close()


def _pipe(source: socket.socket, dest: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            dest.sendall(data)
    with contextlib.suppress(OSError):
        dest.shutdown(socket.SHUT_WR)


@dataclass
class Publishing:
    """A running ``invoke publish`` and the lines of its stderr so far."""

    process: subprocess.Popen[str]
    lines: list[str]
    waiting: threading.Event  # it printed that it waits for the push in flight

    def finish(self) -> str:
        self.process.wait(timeout=SAFETY)
        return "".join(self.lines)


@dataclass(frozen=True)
class Release:
    workspace: Path
    manifest: Path
    image_id: str
    name: str  # the image's repository

    @property
    def record(self) -> Path:
        return self.workspace / "dist" / self.manifest.parent.name / "release.json"


@pytest.fixture
def release(tmp_path: Path, docker_engine: Engine) -> Iterator[Release]:
    """A one-image release (FROM scratch, a unique tag) built by the real engine."""
    tag = "t" + uuid.uuid4().hex[:12]
    name = "orchestrator-test/push"
    folder = tmp_path / tag
    folder.mkdir()
    manifest = small_manifest(folder, f"""\
schema: 1
release: {tag}
repos:
  app:
    url: https://example.invalid/app.git
    ref: v1
    commit: {APP_COMMIT}
    artifacts:
      {name}:
        type: image
""")
    context = tmp_path / "context"
    context.mkdir()
    (context / "hello.txt").write_text(f"hello {tag}\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /\n")
    built = docker_engine.build_image(context=context, dockerfile="Dockerfile", tags=(f"{name}:{tag}",), buildargs={},
                                      target=None, labels={}, network_mode="none", log=lambda line: None)
    workspace = tmp_path / "ws"
    make_release(workspace / "dist" / tag, manifest, {name: built.id})
    yield Release(workspace=workspace, manifest=manifest.path, image_id=built.id, name=name)
    import docker

    client = docker.from_env()
    for image in client.images.list():
        if any(t.endswith(f":{tag}") for t in image.tags):
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image.id, force=True)
    client.close()


@pytest.fixture
def gate(registry: real.Registry) -> Iterator[Gate]:
    gate = Gate(registry.address)
    yield gate
    gate.close()


def start_publish(release: Release, gate: Gate) -> Publishing:
    process = subprocess.Popen(
        [str(BIN / "invoke"), "publish", "--all", "--registry", f"{gate.address}/", "--manifest", str(release.manifest),
         "--workspace", str(release.workspace)],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    publishing = Publishing(process=process, lines=[], waiting=threading.Event())

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            publishing.lines.append(line)
            if line.startswith("interrupted: waiting up to"):
                publishing.waiting.set()

    threading.Thread(target=read, daemon=True).start()
    return publishing


def interrupt(publishing: Publishing) -> None:
    """Ctrl-C, as a terminal sends it: SIGINT to the whole process group."""
    os.killpg(publishing.process.pid, signal.SIGINT)


def recorded_pushes(release: Release) -> dict[str, dict[str, str]]:
    data = json.loads(release.record.read_text())
    return dict(data["artifacts"][release.name]["images"][0].get("pushed", {}))


def test_ctrl_c_mid_push_waits_for_the_push_records_its_digest_and_exits_130(
    release: Release, gate: Gate, registry: real.Registry
) -> None:
    publishing = start_publish(release, gate)
    try:
        assert gate.connected.wait(SAFETY), "the engine never started pushing"
        interrupt(publishing)
        assert publishing.waiting.wait(SAFETY) or publishing.process.poll() is not None
        gate.opened.set()  # only now may the push complete: it was in flight at the interrupt
        stderr = publishing.finish()
    finally:
        gate.opened.set()
        if publishing.process.poll() is None:
            publishing.process.kill()

    assert publishing.process.returncode == 130, stderr
    ref = f"{gate.address}/{release.name}:{release.manifest.parent.name}"
    pushed = recorded_pushes(release)
    assert list(pushed) == [ref], stderr
    assert pushed[ref]["id"] == release.image_id and pushed[ref]["digest"].startswith("sha256:")
    assert "error: interrupted while publishing\n  landed and recorded in release.json (1):\n" \
           f"    {ref}@{pushed[ref]['digest']}\n" in stderr, stderr
    assert "Traceback" not in stderr
    # The registry really holds that digest.
    request = urllib.request.Request(
        f"http://{registry.address}/v2/{release.name}/manifests/{release.manifest.parent.name}", method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        assert reply.headers["Docker-Content-Digest"] == pushed[ref]["digest"]


def test_a_second_ctrl_c_stops_waiting_says_the_state_is_unknown_and_publishing_again_is_safe(
    release: Release, gate: Gate
) -> None:
    publishing = start_publish(release, gate)
    try:
        assert gate.connected.wait(SAFETY), "the engine never started pushing"
        interrupt(publishing)
        assert publishing.waiting.wait(SAFETY), "".join(publishing.lines)
        interrupt(publishing)
        stderr = publishing.finish()
    finally:
        gate.opened.set()
        if publishing.process.poll() is None:
            publishing.process.kill()

    assert publishing.process.returncode == 130, stderr
    ref = f"{gate.address}/{release.name}:{release.manifest.parent.name}"
    assert f"  unknown: {ref} was still being pushed; it may land without being recorded\n" in stderr
    assert "publish again to push the rest; it is safe" in stderr
    assert recorded_pushes(release) == {}

    again = subprocess.run(
        [str(BIN / "invoke"), "publish", "--all", "--registry", f"{gate.address}/", "--manifest", str(release.manifest),
         "--workspace", str(release.workspace)], cwd=ROOT, capture_output=True, text=True, timeout=SAFETY,
        stdin=subprocess.DEVNULL)

    assert again.returncode == 0, again.stderr
    assert list(recorded_pushes(release)) == [ref]
