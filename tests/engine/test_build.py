"""Engine.build_image against the fake client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from docker import errors

from orchestrator.engine.dockerpy import Engine
from orchestrator.engine.errors import Cancelled, DeadlineExceeded, ImageBuildFailed
from orchestrator.engine.protocol import BuiltImage
from orchestrator.errors import BuildError, DockerUnavailableError
from tests.engine.conftest import Lines
from tests.helpers import fake_api
from tests.helpers.fake_docker import BuildScript, FakeDockerClient

OCI = {
    "org.opencontainers.image.source": "https://example.invalid/felix.git",
    "org.opencontainers.image.revision": "abc",
}


def build(
    engine: Engine,
    context: Path,
    log: Callable[[str], None],
    *,
    tags: tuple[str, ...] = ("calico/felix:v3.2.0",),
    **kw: Any,
) -> BuiltImage:
    options: dict[str, Any] = {
        "dockerfile": "Dockerfile",
        "buildargs": {},
        "target": None,
        "labels": {},
        "network_mode": "none",
    }
    return engine.build_image(context=context, tags=tags, log=log, **(options | kw))


def test_build_logs_whole_lines_and_returns_the_id_from_the_aux_chunk(
    engine: Engine, fake: FakeDockerClient, context: Path, lines: Lines
) -> None:
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")

    image = build(engine, context, lines, labels=OCI)

    assert image.id.startswith("sha256:") and len(image.id) == 71
    assert image.tags == ("calico/felix:v3.2.0",)
    assert lines[:3] == ["Step 1/4 : FROM scratch", " ---> ", "Step 2/4 : COPY hello.txt /hello.txt"]
    assert lines[-2:] == [f"Successfully built {image.id[7:19]}", "Successfully tagged calico/felix:v3.2.0"]
    assert engine.image_labels("calico/felix:v3.2.0") == OCI
    assert engine.image_id("calico/felix:v3.2.0") == image.id


def test_build_passes_the_classic_builder_options(engine: Engine, fake: FakeDockerClient, context: Path) -> None:
    (context / "Dockerfile.felix").write_text("FROM scratch AS base\nARG ARCH\nLABEL a=b\nFROM base AS final\n")

    build(engine, context, Lines(), dockerfile="Dockerfile.felix", buildargs={"ARCH": "amd64"}, target="base")

    (call,) = fake.calls_to("api.build")
    assert call == {
        "path": str(context), "tag": "calico/felix:v3.2.0", "dockerfile": "Dockerfile.felix",
        "buildargs": {"ARCH": "amd64"}, "target": "base", "labels": {}, "network_mode": "none",
        "rm": True, "forcerm": True, "decode": True, "timeout": None,
    }  # fmt: skip


def test_every_further_tag_is_applied_with_api_tag(engine: Engine, fake: FakeDockerClient, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM scratch\nLABEL a=b\n")

    image = build(engine, context, Lines(), tags=("quay.io/calico/node:v3.2.0", "localhost:5000/calico/node:v3.2"))

    assert fake.calls_to("api.tag") == [
        {"image": image.id, "repository": "localhost:5000/calico/node", "tag": "v3.2", "force": False}
    ]
    assert engine.image_id("localhost:5000/calico/node:v3.2") == image.id


def test_an_error_chunk_mid_stream_fails_with_the_reason_and_the_log_tail(
    engine: Engine, fake: FakeDockerClient, context: Path, lines: Lines
) -> None:
    (context / "Dockerfile").write_text("FROM orchestrator-test/busybox:1\nRUN make bin/calico-felix\nLABEL x=y\n")
    reason = fake_api.run_failed("make bin/calico-felix", 2)
    fake.script_build("calico/felix:v3.2.0", BuildScript(error=reason, fail_at_step=2, output=["cc felix.c"]))

    with pytest.raises(ImageBuildFailed) as caught:
        build(engine, context, lines)

    message = str(caught.value)
    assert message.startswith(f"building image calico/felix:v3.2.0 failed: {reason}")
    assert "\n    cc felix.c\n" in message
    assert isinstance(caught.value, BuildError)
    assert lines[-1] == f"ERROR: {reason}"
    assert not any("Step 3/3" in line for line in lines), "the stream must stop at the error"
    assert fake.calls_to("api.build.closed"), "the stream is closed so the engine drops the build"


def test_a_missing_dockerfile_fails_with_the_engines_words_and_where_it_looked(engine: Engine, context: Path) -> None:
    with pytest.raises(ImageBuildFailed) as caught:
        build(engine, context, Lines(), dockerfile="build/Dockerfile", buildargs={"TOKEN": "s3cret"})

    message = str(caught.value)
    assert "Cannot locate specified Dockerfile: build/Dockerfile" in message
    assert f"hint: {context / 'build/Dockerfile'} does not exist" in message
    assert "s3cret" not in message, "str(APIError) holds the request URL with the buildargs"
    assert isinstance(caught.value.__cause__, errors.APIError)


def test_an_unknown_instruction_is_reported_with_its_line(engine: Engine, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM scratch\n\nCOPPY hello.txt /\n")

    with pytest.raises(ImageBuildFailed, match="dockerfile parse error line 3: unknown instruction: COPPY"):
        build(engine, context, Lines())


def test_a_base_image_that_is_not_there_fails_offline(engine: Engine, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM golang:1.10\n")

    with pytest.raises(ImageBuildFailed, match="no such host"):
        build(engine, context, Lines())


def test_an_invalid_tag_is_refused_before_any_request(engine: Engine, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM scratch\nLABEL a=b\n")

    with pytest.raises(ImageBuildFailed, match="invalid reference format"):
        build(engine, context, Lines(), tags=("Calico/Felix:v3",))


def test_the_id_falls_back_to_the_successfully_built_line(
    engine: Engine, fake: FakeDockerClient, context: Path
) -> None:
    (context / "Dockerfile").write_text("FROM scratch\nLABEL a=b\n")
    real_build = fake.api.build
    fake.api.build = lambda **kw: (c for c in real_build(**kw) if "aux" not in c)  # type: ignore[method-assign]

    image = build(engine, context, Lines())

    assert image.id == engine.image_id("calico/felix:v3.2.0")


def test_a_build_past_its_deadline_is_abandoned(engine: Engine, fake: FakeDockerClient, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM scratch\n" + "LABEL a=b\n" * 20)
    fake.script_build("calico/felix:v3.2.0", BuildScript(delay=0.05))

    with pytest.raises(
        DeadlineExceeded, match=r"building image calico/felix:v3.2.0 did not finish before its deadline \(0.3s"
    ):
        build(engine, context, Lines(), deadline=time.monotonic() + 0.3)

    assert fake.calls_to("api.build")[0]["timeout"] == pytest.approx(0.3, abs=0.05)


def test_a_silent_build_step_cannot_outlive_the_deadline(engine: Engine, fake: FakeDockerClient, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM scratch\nLABEL a=b\n")
    fake.script_build("calico/felix:v3.2.0", BuildScript(delay=30))  # longer than the read timeout

    with pytest.raises(DeadlineExceeded):
        build(engine, context, Lines(), deadline=time.monotonic() + 0.3)



def test_a_deadline_already_past_starts_nothing(engine: Engine, fake: FakeDockerClient, context: Path) -> None:
    with pytest.raises(DeadlineExceeded):
        build(engine, context, Lines(), deadline=time.monotonic() - 1)

    assert fake.calls_to("api.build") == []


def test_a_lost_engine_is_docker_unavailable(engine: Engine, fake: FakeDockerClient, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM scratch\nLABEL a=b\n")
    fake.make_unreachable()

    with pytest.raises(DockerUnavailableError, match="lost contact with the Docker engine while building image"):
        build(engine, context, Lines())


def test_cancel_all_stops_a_build_at_its_next_line(engine: Engine, fake: FakeDockerClient, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM scratch\n" + "LABEL a=b\n" * 50)
    fake.script_build("calico/felix:v3.2.0", BuildScript(delay=0.02))
    first_line = threading.Event()
    outcome: list[BaseException] = []

    def worker() -> None:
        try:
            build(engine, context, lambda line: first_line.set())
        except BaseException as e:  # noqa: BLE001
            outcome.append(e)

    thread = threading.Thread(target=worker)
    thread.start()
    assert first_line.wait(5)
    engine.cancel_all()
    thread.join(5)
    assert not thread.is_alive()

    assert len(outcome) == 1 and isinstance(outcome[0], Cancelled)
    assert outcome[0].exit_code == 130


def test_ctrl_c_while_building_closes_the_stream(engine: Engine, fake: FakeDockerClient, context: Path) -> None:
    (context / "Dockerfile").write_text("FROM scratch\nLABEL a=b\n")

    def interrupt(line: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build(engine, context, interrupt)

    assert fake.calls_to("api.build.closed") == [{"tag": "calico/felix:v3.2.0"}]


def test_cancel_all_kills_a_silent_run_step_so_the_build_ends_now(
    engine: Engine, fake: FakeDockerClient, context: Path
) -> None:
    (context / "Dockerfile").write_text("FROM orchestrator-test/busybox:1\nRUN make image\nLABEL a=b\n")
    fake.script_build("calico/felix:v3.2.0", BuildScript(run_seconds=30))
    running = threading.Event()
    outcome: list[BaseException] = []

    def log(line: str) -> None:
        if "Running in" in line:
            running.set()

    def worker() -> None:
        try:
            build(engine, context, log)
        except BaseException as e:  # noqa: BLE001
            outcome.append(e)

    thread = threading.Thread(target=worker)
    thread.start()
    assert running.wait(5)
    time.sleep(0.05)
    engine.cancel_all()
    thread.join(5)
    assert not thread.is_alive()

    assert len(outcome) == 1 and isinstance(outcome[0], Cancelled), outcome
    kills = fake.calls_to("api.kill")
    assert kills, "the RUN step was never killed"
    # the announced step only; maybe twice (before and after the stream is cut)
    assert all(kill == kills[0] for kill in kills)
