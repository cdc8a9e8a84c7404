"""Engine.run against the fake client, which runs commands on the host in the container's own directory."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator import procs
from orchestrator.engine import connection as engine_module
from orchestrator.engine.dockerpy import Engine
from orchestrator.engine.errors import Cancelled, ContainerFailed, DeadlineExceeded, EngineError
from orchestrator.engine.protocol import CONTAINER_LABEL, MANAGED_LABEL
from orchestrator.errors import DockerUnavailableError
from orchestrator.shim import RUN_LABEL
from tests.engine.conftest import Lines
from tests.helpers.fake_docker import ContainerScript, FakeContainer, FakeDockerClient

BUSYBOX = "orchestrator-test/busybox:1"


def run(engine: Engine, workdir: Path, command: str | list[str], log: Callable[[str], None], **kw: Any) -> None:
    options: dict[str, Any] = {"image": BUSYBOX, "env": {}, "network_mode": "none"}
    engine.run(workdir=workdir, command=command, log=log, **(options | kw))


def created(fake: FakeDockerClient) -> list[dict[str, Any]]:
    return fake.calls_to("containers.create")


def test_a_command_runs_on_a_copy_of_the_workdir_whose_result_comes_back_and_logs_whole_lines(
    engine: Engine, fake: FakeDockerClient, tmp_path: Path, lines: Lines
) -> None:
    run(engine, tmp_path, "mkdir -p bin && echo built > bin/calico-felix && echo done", lines, env={"ARCH": "amd64"})

    assert (tmp_path / "bin/calico-felix").read_text() == "built\n"
    assert lines == ["done"]
    (call,) = created(fake)
    assert call == {
        "image": BUSYBOX,
        "command": ["sh", "-c", "mkdir -p bin && echo built > bin/calico-felix && echo done"],
        "environment": {"ARCH": "amd64"},
        "network_mode": "none",
        "working_dir": "/src",
        "user": f"{os.getuid()}:{os.getgid()}",
        # The run token too: a later run finds what a killed one left (tests/reliability).
        "labels": {MANAGED_LABEL: "true", RUN_LABEL: procs.run_token(),
                   CONTAINER_LABEL: call["labels"][CONTAINER_LABEL]},  # its own token, to find it again
        "use_config_proxy": False,
    }


def test_a_list_command_is_the_argv_without_a_shell(engine: Engine, fake: FakeDockerClient, tmp_path: Path) -> None:
    run(engine, tmp_path, ["sh", "-c", 'printf %s "$1" > arg.txt', "sh", "a b; c"], Lines())

    assert (tmp_path / "arg.txt").read_text() == "a b; c"
    assert created(fake)[0]["command"] == ["sh", "-c", 'printf %s "$1" > arg.txt', "sh", "a b; c"]


def test_the_container_sees_only_the_given_environment(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKY_SECRET", "from-the-host")

    run(engine, tmp_path, "env > env.txt", Lines(), env={"GOFLAGS": "-mod=vendor"})

    seen = (tmp_path / "env.txt").read_text()
    assert "GOFLAGS=-mod=vendor" in seen
    assert "LEAKY_SECRET" not in seen


def test_a_failing_command_shows_command_exit_code_and_the_indented_tail(
    engine: Engine, fake: FakeDockerClient, tmp_path: Path, lines: Lines
) -> None:
    command = "echo compiling; echo 'felix.go:12: undefined: x' >&2; exit 3"

    with pytest.raises(ContainerFailed) as caught:
        run(engine, tmp_path, command, lines)

    error = caught.value
    assert (error.exit_code, error.command, error.image) == (3, command, BUSYBOX)
    assert str(error) == (
        f"command `{command}` in image {BUSYBOX} exited with code 3\n"
        "  last output:\n    compiling\n    felix.go:12: undefined: x"
    )
    assert lines == ["compiling", "felix.go:12: undefined: x"]
    assert fake.containers.list(all=True) == [], "the container is removed"


def test_a_command_the_image_lacks_cannot_start(engine: Engine, fake: FakeDockerClient, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r'could not run .*exec: "no-such-tool": executable file not found'):
        run(engine, tmp_path, ["no-such-tool", "--version"], Lines())

    assert fake.containers.list(all=True) == []


def test_an_unknown_network_cannot_start(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="network calico-net not found"):
        run(engine, tmp_path, "true", Lines(), network_mode="calico-net")


def test_a_command_past_its_deadline_is_killed_and_removed(
    engine: Engine, fake: FakeDockerClient, tmp_path: Path
) -> None:
    with pytest.raises(DeadlineExceeded) as caught:
        run(engine, tmp_path, "echo waiting; sleep 30", Lines(), deadline=time.monotonic() + 0.5)

    assert "did not finish before its deadline (0.5s after it started)" in str(caught.value)
    assert "    waiting" in str(caught.value)
    assert fake.calls_to("container.kill")
    assert fake.containers.list(all=True) == []


def test_ctrl_c_kills_and_removes_the_container_then_propagates(
    engine: Engine, fake: FakeDockerClient, tmp_path: Path
) -> None:
    fake.script_container(BUSYBOX, ContainerScript(output=b"running\n", block=threading.Event()))
    # A real SIGINT to this (main) thread, while run() blocks on the container.
    timer = threading.Timer(0.3, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run(engine, tmp_path, "sleep 30", Lines())
    finally:
        timer.cancel()

    names = [name for name, _ in fake.calls if name.startswith("container.")]
    assert names.index("container.kill") < names.index("container.remove"), "killed first, then removed"
    assert fake.calls_to("container.remove")[0]["force"] is True
    assert fake.containers.list(all=True) == []


def test_cancel_all_kills_every_running_container_from_another_thread(
    engine: Engine, fake: FakeDockerClient, tmp_path: Path
) -> None:
    fake.script_container(BUSYBOX, ContainerScript(block=threading.Event()))
    outcomes: list[BaseException | None] = []

    def worker() -> None:
        try:
            run(engine, tmp_path, "sleep 30", Lines())
            outcomes.append(None)
        except BaseException as e:  # noqa: BLE001
            outcomes.append(e)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while len(fake.containers.list()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(fake.containers.list()) == 3

    engine.cancel_all()
    for thread in threads:
        thread.join(5)

    assert len(outcomes) == 3 and all(isinstance(o, Cancelled) for o in outcomes), outcomes
    assert fake.containers.list(all=True) == []
    with pytest.raises(Cancelled):
        run(engine, tmp_path, "true", Lines())
    assert len(created(fake)) == 3, "a cancelled engine starts nothing new"


def test_a_container_created_just_after_cancel_all_never_starts(
    engine: Engine, fake: FakeDockerClient, tmp_path: Path
) -> None:
    real_create = fake.containers.create

    def create_then_cancel(*args: Any, **kwargs: Any) -> FakeContainer:
        container = real_create(*args, **kwargs)
        engine.cancel_all()  # lands between create() and start()
        return container

    fake.containers.create = create_then_cancel  # type: ignore[method-assign]

    with pytest.raises(Cancelled):
        run(engine, tmp_path, "true", Lines())

    assert fake.calls_to("container.start") == []
    assert fake.containers.list(all=True) == []


def test_output_a_broken_log_stream_missed_is_caught_up(
    engine: Engine, fake: FakeDockerClient, tmp_path: Path, lines: Lines
) -> None:
    fake.script_container(BUSYBOX, ContainerScript(output="one\ntwo\nthree ✓\n".encode(), duration=0.2))
    real_create = fake.containers.create

    def create(*args: Any, **kwargs: Any) -> FakeContainer:
        container = real_create(*args, **kwargs)
        real_logs = container.logs

        def logs(**kw: Any) -> Any:
            # docker-py ends a follow stream silently when a read times out
            return iter([b"one\ntw"]) if kw.get("stream") else real_logs(**kw)

        container.logs = logs  # type: ignore[method-assign, assignment]
        return container

    fake.containers.create = create  # type: ignore[method-assign]

    run(engine, tmp_path, "build", lines)

    assert lines == ["one", "two", "three ✓"]


def test_a_log_stream_that_ends_early_is_reopened_while_the_command_runs(
    engine: Engine, fake: FakeDockerClient, tmp_path: Path, lines: Lines, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "RECHECK_SECONDS", 0.05)
    fake.script_container(BUSYBOX, ContainerScript(output=b"one\n", duration=0.5))
    real_create = fake.containers.create
    opened: list[int] = []

    def create(*args: Any, **kwargs: Any) -> FakeContainer:
        container = real_create(*args, **kwargs)
        real_logs = container.logs

        def logs(**kw: Any) -> Any:
            if kw.get("stream"):
                opened.append(1)
                if len(opened) == 1:
                    return iter([b"o"])
            return real_logs(**kw)

        container.logs = logs  # type: ignore[method-assign, assignment]
        return container

    fake.containers.create = create  # type: ignore[method-assign]

    run(engine, tmp_path, "build", lines)

    assert len(opened) >= 2
    assert lines == ["one"]


def test_a_lost_engine_is_docker_unavailable(engine: Engine, fake: FakeDockerClient, tmp_path: Path) -> None:
    fake.make_unreachable()

    with pytest.raises(DockerUnavailableError, match="lost contact with the Docker engine while creating a container"):
        run(engine, tmp_path, "true", Lines())


def test_parallel_runs_share_one_engine(engine: Engine, fake: FakeDockerClient, tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        workdir = tmp_path / f"w{number}"
        workdir.mkdir()
        try:
            run(engine, workdir, f"echo {number} > out.txt", Lines())
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert errors == []
    assert [(tmp_path / f"w{n}/out.txt").read_text() for n in range(8)] == [f"{n}\n" for n in range(8)]
    assert fake.containers.list(all=True) == []


def test_ctrl_c_as_the_engine_creates_the_container_still_removes_it(
    engine: Engine, fake: FakeDockerClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The engine made the container, but the interrupt came before its answer: no handle.
    create = fake.containers.create

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        create(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(fake.containers, "create", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(engine, tmp_path, "true", Lines())

    assert fake.containers.list(all=True) == []
