"""Ctrl-C stops an image build that is silent outside any RUN step, within the grace.

``cancel_all`` kills the RUN step a build announced; but a build can wait on the engine
with no step to kill: ``ADD https://...`` from a server that hangs, a ``FROM`` pulled from
a registry that hangs. Its thread then sits in a read of the build stream whose only
bound is the artifact's ``timeout:`` (2 h by default), and the interrupted run waited for
it: exit 130 came two hours late, unless a second Ctrl-C killed it.

A real orchestrator, a real engine, a loopback HTTP server that accepts and never answers.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.engine.dockerpy import Engine
from tests.helpers.gitrepos import git
from tests.reliability.interrupt_helpers import make_workspace, wait_until

pytestmark = pytest.mark.docker


@pytest.fixture
def hanging_server() -> Iterator[int]:
    """A loopback port that accepts connections and never answers; its port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(server.accept()[0])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(5)
    for connection in accepted:
        connection.close()
    server.close()


def test_ctrl_c_stops_an_image_build_waiting_silently_outside_a_run_step(
        tmp_path: Path, docker_engine: Engine, busybox: str, hanging_server: int,
        image_prefix: str) -> None:
    ws = make_workspace(tmp_path, {})
    upstream = tmp_path / "upstream"
    # The daemon downloads ADD's URL itself (on the host's network, whatever the build's
    # network mode): it waits for the server's answer, printing nothing.
    (upstream / "Dockerfile").write_text(
        f"FROM {busybox}\nADD http://127.0.0.1:{hanging_server}/file /file\nRUN true\n")
    git("add", "-A", cwd=upstream)
    git("commit", "-q", "-m", "an image", cwd=upstream)
    ws.manifest.write_text(
        f"schema: 1\nrelease: v1\ndefaults: {{network: none, registry: {image_prefix}}}\nrepos:\n  app:\n"
        f"    url: file://{upstream}\n    ref: main\n    artifacts:\n      attack-x3/silent:\n        type: image\n")
    running = ws.start("build", *ws.args("--all"))
    wait_until(lambda: "ADD http://127.0.0.1" in ws.log("attack-x3+silent"), "the build to reach its ADD step")
    time.sleep(1)  # the engine is now waiting on the server

    running.signal(signal.SIGINT)
    started = time.monotonic()
    try:
        code = running.process.wait(timeout=45)  # the grace is seconds; without the fix it waits out the 2 h timeout
    except Exception:
        running.signal(signal.SIGKILL)
        running.process.wait()
        pytest.fail("the interrupted build did not exit within 45 s of Ctrl-C")
    err = running.err.read_text()

    assert code == 130, err
    assert time.monotonic() - started < 45
    assert "interrupted again" not in err
    assert "Traceback" not in err
