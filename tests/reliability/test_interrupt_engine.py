"""The engine's part of a stop: build steps killed even when the kill comes too early,
and containers found again by label.

The hand-written fake reproduces the engine's ordering deterministically: a RUN step is
announced ("Running in <id>") before its container runs, and a kill sent in between is
refused (409, not running) and changes nothing.
"""

from __future__ import annotations

import threading
from pathlib import Path

from orchestrator import procs
from orchestrator.engine.dockerpy import Engine
from orchestrator.engine.errors import Cancelled
from orchestrator.engine.protocol import CONTAINER_LABEL, MANAGED_LABEL
from orchestrator.shim import RUN_LABEL, STEP_LABEL, WORKSPACE_LABEL
from tests.helpers.fake_docker import BuildScript, ContainerScript, FakeDockerClient
from tests.reliability.interrupt_helpers import wait_until

BUSYBOX = "orchestrator-test/busybox:1"


def test_cancel_all_keeps_killing_a_build_step_announced_before_its_container_started(tmp_path: Path) -> None:
    fake = FakeDockerClient()
    fake.add_image(BUSYBOX)
    starts = threading.Event()
    fake.script_build("orchestrator-test/race:1", BuildScript(run_seconds=60, starts=starts))
    (tmp_path / "Dockerfile").write_text(f"FROM {BUSYBOX}\nRUN sleep 60\n")
    engine = Engine(fake)
    announced = threading.Event()
    outcome: list[BaseException] = []

    def log(line: str) -> None:
        if "Running in" in line:
            announced.set()

    def build() -> None:
        try:
            engine.build_image(context=tmp_path, dockerfile="Dockerfile", tags=("orchestrator-test/race:1",),
                               buildargs={}, target=None, labels={}, network_mode="none", log=log)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            outcome.append(e)

    builder = threading.Thread(target=build, daemon=True)
    builder.start()
    assert announced.wait(10)
    canceller = threading.Thread(target=engine.cancel_all, daemon=True)
    canceller.start()
    # The first kill reaches the engine before the step's container runs: refused, ignored.
    wait_until(lambda: fake.calls_to("api.kill"), "cancel_all to send a kill")
    starts.set()  # only now does the container run (silently, for 60 s unless killed)

    builder.join(20)  # a safety bound, far below the step's 60 s
    canceller.join(20)

    assert not builder.is_alive(), "the build ran on after cancel_all"
    assert [type(e) for e in outcome] == [Cancelled]
    assert not canceller.is_alive()
    assert len(fake.calls_to("api.kill")) >= 2, "the kill was sent again once the container ran"
    assert ("api.build.closed", {"tag": "orchestrator-test/race:1"}) in fake.calls, "the build's stream is closed"


def test_containers_the_engine_runs_carry_the_run_token_and_the_workspace(tmp_path: Path) -> None:
    fake = FakeDockerClient()
    fake.add_image(BUSYBOX)
    Engine(fake, workspace=tmp_path).run(image=BUSYBOX, command="true", workdir=tmp_path, env={},
                                         network_mode="none", log=lambda line: None)
    (created,) = fake.calls_to("containers.create")
    assert created["labels"] == {MANAGED_LABEL: "true", RUN_LABEL: procs.run_token(),
                                 WORKSPACE_LABEL: str(tmp_path.resolve()),
                                 CONTAINER_LABEL: created["labels"][CONTAINER_LABEL]}  # its own, to find it by
    assert len(created["labels"][CONTAINER_LABEL]) == 16


def test_stop_labelled_kills_and_removes_exactly_the_containers_with_that_label(tmp_path: Path) -> None:
    fake = FakeDockerClient()
    fake.add_image(BUSYBOX)
    forever = threading.Event()
    fake.script_container(BUSYBOX, ContainerScript(block=forever))
    mine = fake.containers.create(BUSYBOX, "sleep 1", labels={STEP_LABEL: "s1"})
    created_only = fake.containers.create(BUSYBOX, "sleep 1", labels={STEP_LABEL: "s1"})
    other = fake.containers.create(BUSYBOX, "sleep 1", labels={STEP_LABEL: "s2"})
    mine.start()
    other.start()
    engine = Engine(fake)

    stopped = engine.stop_labelled(STEP_LABEL, "s1")

    assert sorted(stopped) == sorted(f"container {c.name} ({c.id[:12]}, image {BUSYBOX})"
                                     for c in (mine, created_only))
    assert mine.killed and mine.removed and created_only.removed
    assert not other.killed and not other.removed
    assert engine.labelled(STEP_LABEL, "s1") == []
    forever.set()
