"""The engine's contract, on the fake client and on a real engine alike.

Each scenario runs twice: ``fake`` (tests/helpers/fake_docker.py, commands run as host
processes) and ``real`` (the Docker engine, an offline busybox image; skipped with the
reason when none answers). What passes on both is what the fake promises; tests that
only the fake can stage (a broken stream, a race at an exact call) stay in test_run.py
and test_build.py.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator import procs
from orchestrator.engine.dockerpy import Engine
from orchestrator.engine.errors import Cancelled, ContainerFailed, DeadlineExceeded, ImageBuildFailed, ImageMissing
from orchestrator.shim import RUN_LABEL
from tests.engine.conftest import Lines
from tests.helpers.docker_images import BUSYBOX_REF
from tests.helpers.fake_docker import FakeDockerClient


@dataclass
class Arena:
    engine: Engine
    image: str
    containers: Callable[[bool], list[Any]]  # ours on the engine (all=True: stopped ones too)
    fresh: Callable[[], Engine]  # another engine on the same client: a cancelled engine stays cancelled


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.docker)])
def arena(request: pytest.FixtureRequest) -> Iterator[Arena]:
    if request.param == "fake":
        fake = FakeDockerClient()
        fake.add_image(BUSYBOX_REF, env={"PATH": "/usr/bin:/bin"})
        yield Arena(Engine(fake), BUSYBOX_REF, lambda every: list(fake.containers.list(all=every)),
                    lambda: Engine(fake))
        return
    import docker

    engine = request.getfixturevalue("docker_engine")
    image = request.getfixturevalue("busybox")
    client = docker.from_env()
    try:
        # This process's containers only (its run token): other sessions may share the engine.
        mine = {"label": f"{RUN_LABEL}={procs.run_token()}"}
        yield Arena(engine, image, lambda every: list(client.containers.list(all=every, sparse=True, filters=mine)),
                    Engine.from_env)
    finally:
        client.close()


def run(arena: Arena, workdir: Path, command: str | list[str], log: Callable[[str], None] | None = None,
        engine: Engine | None = None, **kw: Any) -> None:
    options: dict[str, Any] = {"image": arena.image, "env": {}, "network_mode": "none"}
    log = Lines() if log is None else log
    (engine or arena.engine).run(workdir=workdir, command=command, log=log, **(options | kw))


def test_the_result_comes_back_owned_by_the_caller_with_whole_lines_logged(arena: Arena, tmp_path: Path) -> None:
    lines = Lines()
    run(arena, tmp_path, "mkdir -p bin && echo felix > bin/calico-felix && id -u && echo $ARCH", lines,
        env={"ARCH": "amd64"})

    output = tmp_path / "bin/calico-felix"
    assert output.read_text() == "felix\n"
    assert (output.stat().st_uid, output.stat().st_gid) == (os.getuid(), os.getgid())
    assert lines == [str(os.getuid()), "amd64"]
    assert arena.containers(True) == [], "the container is removed"


def test_a_failing_command_raises_with_its_exit_code_and_output(arena: Arena, tmp_path: Path) -> None:
    with pytest.raises(ContainerFailed) as caught:
        run(arena, tmp_path, ["sh", "-c", "echo building; exit 7"])

    assert caught.value.exit_code == 7
    assert str(caught.value).endswith("exited with code 7\n  last output:\n    building")
    assert not (tmp_path / "bin").exists()
    assert arena.containers(True) == []


def test_a_missing_image_is_named_with_how_to_get_it(arena: Arena, tmp_path: Path) -> None:
    missing = "orchestrator-test.invalid/engine-nothing:1"
    with pytest.raises(ImageMissing) as caught:
        run(arena, tmp_path, "true", image=missing)

    assert str(caught.value) == (
        f"image '{missing}' is not in the Docker engine\n"
        f"  hint: build the artifact that makes it first, or get it with `docker pull {missing}` or `docker load`"
    )


def test_a_command_past_its_deadline_is_killed_and_removed(arena: Arena, tmp_path: Path) -> None:
    with pytest.raises(DeadlineExceeded) as caught:  # sleep 60 would exit 0: the deadline cut it
        run(arena, tmp_path, "echo waiting; sleep 60", deadline=time.monotonic() + 1.5)

    assert "did not finish before its deadline (1.5s after it started)" in str(caught.value)
    assert "    waiting" in str(caught.value)
    assert arena.containers(True) == []


def test_ctrl_c_kills_and_removes_the_container_then_propagates(arena: Arena, tmp_path: Path) -> None:
    timer = threading.Timer(1.5, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run(arena, tmp_path, "sleep 60")
    finally:
        timer.cancel()

    assert arena.containers(True) == []


def test_cancel_all_stops_runs_in_other_threads_and_every_later_one(arena: Arena, tmp_path: Path) -> None:
    engine = arena.fresh()
    outcomes: list[BaseException | None] = []

    def worker(n: int) -> None:
        try:
            (tmp_path / str(n)).mkdir()
            run(arena, tmp_path / str(n), "sleep 60", engine=engine)
            outcomes.append(None)
        except BaseException as e:  # noqa: BLE001
            outcomes.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(arena.containers(False)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(arena.containers(False)) == 2

    engine.cancel_all()
    for thread in threads:
        thread.join(30)

    assert [type(o) for o in outcomes] == [Cancelled, Cancelled]
    assert arena.containers(True) == []
    with pytest.raises(Cancelled):
        run(arena, tmp_path, "true", engine=engine)


def test_a_missing_dockerfile_fails_the_build_saying_where_it_looked(arena: Arena, tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hello\n")
    with pytest.raises(ImageBuildFailed) as caught:
        arena.engine.build_image(context=tmp_path, dockerfile="Dockerfile.nope",
                                 tags=("orchestrator-test.invalid/x:1",), buildargs={}, target=None, labels={},
                                 network_mode="none", log=Lines())

    assert "Cannot locate specified Dockerfile: Dockerfile.nope" in str(caught.value)  # the engine's words
    assert f"{tmp_path / 'Dockerfile.nope'} does not exist" in str(caught.value)


def test_image_layers_are_the_content_one_diff_id_per_copy_whatever_the_labels(arena: Arena, tmp_path: Path) -> None:
    from tests.conftest import IMAGE_PREFIX

    (tmp_path / "tree/bin").mkdir(parents=True)
    (tmp_path / "tree/bin/app").write_text("app v1\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY tree/ /\n")

    def build(tag: str, labels: dict[str, str]) -> str:
        return arena.engine.build_image(context=tmp_path, dockerfile="Dockerfile", tags=(f"{IMAGE_PREFIX}{tag}",),
                                        buildargs={}, target=None, labels=labels, network_mode="none",
                                        log=Lines()).id

    first, relabelled = build("layers:1", {"n": "1"}), build("layers:2", {"n": "2"})
    (tmp_path / "tree/bin/app").write_text("app v2\n")
    changed = build("layers:3", {"n": "1"})

    layers = arena.engine.image_layers(first)
    assert len(layers) == 1 and layers[0].startswith("sha256:") and len(layers[0]) == 71
    assert relabelled != first and arena.engine.image_layers(relabelled) == layers, "labels are not content"
    assert arena.engine.image_layers(f"{IMAGE_PREFIX}layers:3") == arena.engine.image_layers(changed) != layers
    with pytest.raises(ImageMissing):
        arena.engine.image_layers(f"{IMAGE_PREFIX}layers:never-built")
