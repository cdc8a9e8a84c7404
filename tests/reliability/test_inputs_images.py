"""Image references: what the validator accepts is exactly what the Docker engine
accepts, checked against a real engine.

A reference the engine refuses used to pass validation and fail after the build,
leaving an image tagged under some references and not others. Every reference
below is tagged on a real image the way ``Engine.build`` tags (``api.tag`` with
``imageref.split_tag``), and the engine's verdict must be the validator's.
Every reference has an ``orchestrator-test`` component; all are removed afterwards.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator

import docker
import pytest
from docker import errors

from orchestrator import imageref
from orchestrator.engine.dockerpy import Engine
from orchestrator.imageref import split_tag
from orchestrator.manifest import IMAGE_REF_RE

VALID = [
    "orchestrator-test/refs:v1",
    "orchestrator-test/refs",
    "orchestrator-test/a.b/refs:v1",
    "orchestrator-test/re__fs:V1_x.y-z",
    "orchestrator-test/re--fs:v1",
    "localhost/orchestrator-test/refs:v1",
    "localhost:5000/orchestrator-test/refs:v1",
    "registry.example.invalid/orchestrator-test/refs:v1",
    "Registry.Example.invalid:443/orchestrator-test/refs:v1",
    "a_b.c/orchestrator-test/refs:v1",  # not a host, but a valid first name component
    "orchestrator-test/refs:" + "x" * 128,
]
INVALID = [
    "UPPER/orchestrator-test:v1",
    "LOCALHOST/orchestrator-test:v1",
    "orchestrator-test/Refs:v1",
    "A_b.c/orchestrator-test:v1",
    "x:Feature/orchestrator-test",
    "orchestrator-test:5000x/refs:v1",
    "orchestrator-test/refs:vé",
    "orchestrator-test/refs:.v1",
    "orchestrator-test/refs:-v1",
    "orchestrator-test/refs:" + "x" * 129,
    "orchestrator-test//refs:v1",
    "orchestrator-test/_refs:v1",
    "orchestrator-test/refs_:v1",
    "orchestrator-test/re___fs:v1",
    "orchestrator-test/" + "a" * 250 + ":v1",
    "orchestrator-test/refs:v1\n",
]


def _empty_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w"):
        pass
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client(docker_engine: Engine) -> Iterator[docker.DockerClient]:
    client = docker.from_env(timeout=60)
    client.api.import_image_from_data(_empty_tar(), repository="orchestrator-test/refcheck", tag="1")
    image_id = client.images.get("orchestrator-test/refcheck:1").id
    try:
        yield client
    finally:
        client.api.remove_image(image_id, force=True)  # every tag given below goes with it
        client.close()


def engine_accepts(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.api.tag("orchestrator-test/refcheck:1", *split_tag(ref))
    except errors.APIError as e:
        assert e.status_code in (400, 500), e  # refused as a bad reference, not some other failure
        return False
    return True


@pytest.mark.docker
@pytest.mark.parametrize("ref", VALID + INVALID)
def test_the_validator_accepts_an_image_reference_exactly_when_the_engine_does(
        client: docker.DockerClient, ref: str) -> None:
    verdict = engine_accepts(client, ref)

    assert verdict == (ref in VALID), "the corpus is wrong about the engine"
    assert (imageref.problem(ref) is None) == verdict, imageref.problem(ref)
    # The pattern publish uses agrees (it leaves length limits to problem()).
    assert bool(IMAGE_REF_RE.match(ref)) == verdict or len(ref) > 200
