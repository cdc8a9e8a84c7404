"""The fake client keeps docker-py's shapes, so tests against it mean something."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from docker import errors

from tests.helpers.fake_docker import FakeDockerClient


def test_unexpected_keywords_are_type_errors_not_silently_accepted(fake: FakeDockerClient, tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        fake.api.build(path=str(tmp_path), tags=["x:1"])  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'env'"):
        fake.containers.create("orchestrator-test/busybox:1", ["true"], env={"A": "1"})
    with pytest.raises(TypeError):
        fake.api.push("x", stream=True, decoded=True)  # type: ignore[call-arg]


def test_unknown_images_raise_docker_pys_image_not_found(fake: FakeDockerClient) -> None:
    with pytest.raises(errors.ImageNotFound) as caught:
        fake.images.get("calico/node:v9")

    assert caught.value.status_code == 404
    assert caught.value.explanation == "no such image: calico/node:v9: No such image: calico/node:v9"


def test_a_missing_dockerfile_fails_on_the_first_chunk_not_at_the_call(fake: FakeDockerClient, tmp_path: Path) -> None:
    stream = fake.api.build(path=str(tmp_path), dockerfile="Dockerfile", decode=True)

    with pytest.raises(errors.APIError) as caught:
        next(iter(stream))

    assert caught.value.status_code == 500
    assert caught.value.explanation == "Cannot locate specified Dockerfile: Dockerfile"


def test_a_build_path_that_is_not_a_directory_is_a_type_error_at_the_call(
    fake: FakeDockerClient, tmp_path: Path
) -> None:
    with pytest.raises(TypeError, match="You must specify a directory to build in path"):
        fake.api.build(path=str(tmp_path / "nope"))


def test_an_unreachable_engine_raises_what_requests_raises(fake: FakeDockerClient) -> None:
    fake.make_unreachable()

    with pytest.raises(requests.exceptions.ConnectionError):
        fake.ping()
    with pytest.raises(errors.DockerException, match="Error while fetching server API version"):
        fake.from_env()


def test_undecoded_streams_are_json_lines(fake: FakeDockerClient, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nLABEL a=b\n")

    raw = list(fake.api.build(path=str(tmp_path), tag="x:1"))

    assert raw[0] == b'{"stream": "Step 1/2 : FROM scratch"}\r\n'


def test_a_container_really_runs_and_can_be_killed(fake: FakeDockerClient, tmp_path: Path) -> None:
    container = fake.containers.create(
        "orchestrator-test/busybox:1", ["sh", "-c", "echo started; sleep 30"], working_dir="/src",
        volumes={str(tmp_path): {"bind": "/src", "mode": "rw"}},
    )  # fmt: skip
    container.start()
    assert next(iter(container.logs(stream=True, follow=True))) == b"started\n"

    container.kill()

    assert container.wait(timeout=5) == {"Error": None, "StatusCode": 137}
    with pytest.raises(errors.APIError, match="is not running") as caught:
        container.kill()
    assert caught.value.status_code == 409
    container.remove()
    with pytest.raises(errors.NotFound):
        container.remove(force=True)


def test_wait_past_its_timeout_raises_what_docker_py_raises(fake: FakeDockerClient, tmp_path: Path) -> None:
    container = fake.containers.create("orchestrator-test/busybox:1", ["sleep", "30"])
    container.start()
    try:
        with pytest.raises(requests.exceptions.ConnectionError, match="Read timed out"):
            container.wait(timeout=0.1)
    finally:
        container.remove(force=True)


def test_removing_an_image_by_tag_untags_and_by_id_deletes(fake: FakeDockerClient) -> None:
    image_id = fake.add_image("calico/node:v3.2.0")
    fake.api.tag(image_id, "quay.io/calico/node", tag="v3.2.0")

    fake.images.remove("calico/node:v3.2.0")
    assert fake.images.get("quay.io/calico/node:v3.2.0").id == image_id
    with pytest.raises(errors.ImageNotFound):
        fake.images.get("calico/node:v3.2.0")

    fake.api.tag(image_id, "calico/node", tag="v3.2.0")
    with pytest.raises(errors.APIError, match="must be forced"):
        fake.images.remove(image_id)
    fake.images.remove(image_id, force=True)
    with pytest.raises(errors.ImageNotFound):
        fake.images.get(image_id)
