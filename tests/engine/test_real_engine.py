"""Engine against a real Docker engine: no network, no registry; FROM scratch or an imported busybox.

Start one with ``.ci/docker-up``; without it these tests skip and say so.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from orchestrator.engine.dockerpy import Engine
from orchestrator.engine.errors import (
    Cancelled,
    DeadlineExceeded,
    ImageBuildFailed,
    PushFailed,
)
from tests.engine.conftest import Lines
from tests.helpers.fake_docker import FakeDockerClient
from tests.helpers.registry import Registry, docker_config_with

pytestmark = pytest.mark.docker

OCI = {
    "org.opencontainers.image.source": "https://github.com/projectcalico/felix.git",
    "org.opencontainers.image.revision": "30458090588d14445f4b16b5b80e6db80dbffc33",
    "org.opencontainers.image.version": "v3.2.0",
}


@pytest.fixture(scope="module")
def client(docker_engine: Engine) -> Iterator[Any]:
    """docker-py itself, to check what the engine did behind the Engine's back."""
    raw = docker.from_env()
    yield raw
    for image in raw.images.list(name="orchestrator-test/engine-*"):
        for tag in image.tags:
            raw.images.remove(tag, force=True)
    raw.close()


def build(engine: Engine, context: Path, log: Lines, **kw: Any) -> Any:
    options: dict[str, Any] = {"dockerfile": "Dockerfile", "buildargs": {}, "target": None, "labels": {}}
    options |= {"network_mode": "none", "tags": ("orchestrator-test/engine-build:1",)}
    return engine.build_image(context=context, log=log, **(options | kw))


def test_a_from_scratch_build_carries_its_oci_labels(
    docker_engine: Engine, client: Any, context: Path, lines: Lines
) -> None:
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    tags = ("orchestrator-test/engine-build:1", "orchestrator-test/engine-build:v3.2.0")

    image = build(docker_engine, context, lines, tags=tags, labels=OCI)

    assert docker_engine.image_labels(tags[0]) == OCI
    assert docker_engine.image_id(tags[0]) == docker_engine.image_id(tags[1]) == image.id
    assert lines[0] == "Step 1/5 : FROM scratch", "the engine adds a LABEL step per label"
    assert f"Successfully built {image.id[7:19]}" in lines


def test_the_fake_streams_the_same_lines_as_the_real_engine(docker_engine: Engine, busybox: str, context: Path) -> None:
    (context / "Dockerfile").write_text(f"FROM {busybox}\nARG ARCH\nCOPY hello.txt /hello.txt\nLABEL a=b\n")

    def shape(engine: Engine) -> list[str]:
        lines = Lines()
        build(engine, context, lines, buildargs={"ARCH": "amd64", "UNUSED": "x"}, labels=OCI | {"a": "x y"})
        # Whether a step ran or came from the engine's layer cache depends on what the
        # engine built before (a fresh CI engine has no cache): compare the rest.
        noise = (" ---> Using cache", " ---> Running in ", "Removing intermediate container ")
        text = "\n".join(line for line in lines if not line.startswith(noise))
        return re.sub(r"\b[0-9a-f]{12}\b", "<id>", text).splitlines()

    fake = FakeDockerClient()
    fake.add_image(busybox)
    assert shape(Engine(fake)) == shape(docker_engine)


def test_a_failing_run_step_raises_with_the_engines_error_and_the_output(
    docker_engine: Engine, busybox: str, context: Path, lines: Lines
) -> None:
    (context / "Dockerfile").write_text(f"FROM {busybox}\nRUN echo compiling felix; echo oops >&2; exit 3\n")

    with pytest.raises(ImageBuildFailed) as caught:
        build(docker_engine, context, lines)

    message = str(caught.value)
    assert "The command '/bin/sh -c echo compiling felix; echo oops >&2; exit 3' returned a non-zero code: 3" in message
    assert "\n    compiling felix\n" in message
    assert "    oops" in message, "stderr arrives colour-coded; the colours are stripped"
    assert "\x1b" not in message


def test_a_silent_build_step_past_the_deadline_is_abandoned(
    docker_engine: Engine, client: Any, busybox: str, context: Path
) -> None:
    # A fresh RUN line each time: the engine's layer cache must not answer it.
    (context / "Dockerfile").write_text(f"FROM {busybox}\nRUN sleep 60 && echo {uuid.uuid4().hex}\n")

    # RUN sleep 60 would succeed: DeadlineExceeded proves the build was cut short.
    with pytest.raises(DeadlineExceeded):
        build(docker_engine, context, Lines(), deadline=time.monotonic() + 2)

    # The engine abandons a build whose client went away: its RUN container goes too.
    assert_run_containers_go(client, busybox)


def test_cancel_all_ends_a_build_in_a_silent_run_step(busybox: str, client: Any, context: Path) -> None:
    engine = Engine.from_env()  # its own: a cancelled engine stays cancelled
    # A fresh RUN line each time: the engine's layer cache must not answer it.
    (context / "Dockerfile").write_text(f"FROM {busybox}\nRUN sleep 60 && echo {uuid.uuid4().hex}\n")
    running = threading.Event()
    outcome: list[BaseException] = []

    def log(line: str) -> None:
        if "Running in" in line:
            running.set()

    def worker() -> None:
        try:
            build(engine, context, log)  # type: ignore[arg-type]
        except BaseException as e:  # noqa: BLE001
            outcome.append(e)

    thread = threading.Thread(target=worker)
    thread.start()
    assert running.wait(30)
    engine.cancel_all()
    thread.join(45)  # bounded wait; the RUN step alone would take 60 s

    assert not thread.is_alive()
    assert [type(e) for e in outcome] == [Cancelled]
    assert_run_containers_go(client, busybox)


def assert_run_containers_go(client: Any, busybox: str) -> None:
    """The RUN step's container is gone within seconds: the engine removes a killed or
    abandoned step's container itself, a moment after the build's stream ends."""
    for _ in range(100):
        if not client.containers.list(all=True, filters={"ancestor": busybox}):
            return
        time.sleep(0.1)
    left = client.containers.list(all=True, filters={"ancestor": busybox})
    assert [(c.short_id, c.status) for c in left] == []


def test_push_to_a_local_registry_returns_its_digest(
    docker_engine: Engine, client: Any, context: Path, registry: Registry, lines: Lines
) -> None:
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /\n")
    ref = f"{registry.address}/orchestrator-test/engine-push:1"
    build(docker_engine, context, Lines(), tags=(ref,))

    digest = docker_engine.push(ref, log=lines)

    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    assert lines[-1] == f"1: digest: {digest} size: {lines[-1].rsplit(' ', 1)[1]}"
    client.images.remove(ref, force=True)


def test_push_without_credentials_is_an_auth_problem(
    docker_engine: Engine, client: Any, context: Path, auth_registry: Registry
) -> None:
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /\n")
    ref = f"{auth_registry.address}/orchestrator-test/engine-push:1"
    build(docker_engine, context, Lines(), tags=(ref,))

    with pytest.raises(PushFailed) as caught:
        docker_engine.push(ref, log=Lines())

    assert caught.value.problem == "auth"
    assert f"docker login {auth_registry.address}" in str(caught.value)
    client.images.remove(ref, force=True)


def test_push_with_docker_login_credentials_never_shows_the_password(
    client: Any, context: Path, auth_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config_with(tmp_path, auth_registry)))
    engine = Engine.from_env()  # reads the Docker config, as after `docker login`
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /\n")
    ref = f"{auth_registry.address}/orchestrator-test/engine-push:1"
    build(engine, context, Lines(), tags=(ref,))
    lines = Lines()

    digest = engine.push(ref, log=lines)

    assert digest.startswith("sha256:")
    assert auth_registry.password is not None and auth_registry.password not in "\n".join(lines)
    client.images.remove(ref, force=True)


def test_push_to_a_registry_nobody_listens_on_is_unreachable(docker_engine: Engine, client: Any, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /\n")
    ref = "127.0.0.1:9/orchestrator-test/engine-push:1"
    build(docker_engine, context, Lines(), tags=(ref,))

    with pytest.raises(PushFailed) as caught:
        docker_engine.push(ref, log=Lines())

    assert caught.value.problem == "unreachable"
    assert "connection refused" in str(caught.value)
    client.images.remove(ref, force=True)
