"""Engine.image_id, image_labels, import_rootfs and push against the fake client."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from orchestrator.engine.dockerpy import Engine
from orchestrator.engine.errors import EngineError, ImageMissing, PushFailed
from orchestrator.errors import DockerUnavailableError
from tests.engine.conftest import Lines
from tests.helpers import fake_api
from tests.helpers.fake_docker import FakeDockerClient

REF = "127.0.0.1:5000/calico/node:v3.2.0"


def test_image_id_is_none_for_an_image_the_engine_lacks(engine: Engine, fake: FakeDockerClient) -> None:
    image_id = fake.add_image("calico/node:v3.2.0")

    assert engine.image_id("calico/node:v3.2.0") == image_id
    assert engine.image_id(image_id) == image_id
    assert engine.image_id("calico/node:v9") is None


def test_image_labels_of_a_missing_image_say_so(engine: Engine, fake: FakeDockerClient) -> None:
    fake.add_image("calico/node:v3.2.0", labels={"org.opencontainers.image.version": "v3.2.0"})

    assert engine.image_labels("calico/node:v3.2.0") == {"org.opencontainers.image.version": "v3.2.0"}
    with pytest.raises(ImageMissing, match="image 'calico/node:v9' is not in the Docker engine"):
        engine.image_labels("calico/node:v9")


def test_import_rootfs_returns_the_id_and_tags_the_image(
    engine: Engine, fake: FakeDockerClient, tmp_path: Path
) -> None:
    tar_path = tmp_path / "rootfs.tar"
    with tarfile.open(tar_path, "w") as archive:
        archive.add(__file__, "bin/tool")

    image_id = engine.import_rootfs(tar_path, "orchestrator-test/tool", "1", changes=["ENV PATH=/bin"])

    assert image_id.startswith("sha256:")
    assert engine.image_id("orchestrator-test/tool:1") == image_id
    assert fake.calls_to("api.import_image_from_file") == [
        {"filename": str(tar_path), "repository": "orchestrator-test/tool", "tag": "1", "changes": ["ENV PATH=/bin"]}
    ]


def test_import_of_a_missing_tar_is_refused_before_the_engine_misreads_it(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"rootfs.tar is not a file"):
        engine.import_rootfs(tmp_path / "rootfs.tar", "orchestrator-test/tool", "1")


def test_import_of_a_broken_tar_reports_the_engines_reason(engine: Engine, tmp_path: Path) -> None:
    tar_path = tmp_path / "rootfs.tar"
    tar_path.write_bytes(b"not a tar" * 100)

    with pytest.raises(EngineError, match="archive/tar"):
        engine.import_rootfs(tar_path, "orchestrator-test/tool", "1")


def test_push_returns_the_digest_and_logs_status_lines_not_progress(
    engine: Engine, fake: FakeDockerClient, lines: Lines
) -> None:
    fake.add_image(REF)

    digest = engine.push(REF, log=lines)

    assert digest.startswith("sha256:") and len(digest) == 71
    assert fake.calls_to("api.push") == [
        {
            "repository": "127.0.0.1:5000/calico/node",
            "tag": "v3.2.0",
            "stream": True,
            "auth_config": None,
            "decode": True,
        }
    ]
    assert lines[0] == "The push refers to repository [127.0.0.1:5000/calico/node]"
    assert not any("[====" in line for line in lines)
    assert lines[-1] == f"v3.2.0: digest: {digest} size: 524"


@pytest.mark.parametrize("outcome", ["no-credentials", "unauthorized"])
def test_a_refused_push_is_an_auth_problem_with_a_login_hint(
    engine: Engine, fake: FakeDockerClient, outcome: str
) -> None:
    fake.add_image(REF)
    fake.script_push(REF, outcome)

    with pytest.raises(PushFailed) as caught:
        engine.push(REF, log=Lines())

    assert caught.value.problem == "auth"
    assert "hint: 127.0.0.1:5000 refused the credentials: run `docker login 127.0.0.1:5000`" in str(caught.value)


def test_an_unreachable_registry_is_told_apart_from_a_refusal(engine: Engine, fake: FakeDockerClient) -> None:
    fake.add_image(REF)
    fake.script_push(REF, "unreachable")

    with pytest.raises(PushFailed) as caught:
        engine.push(REF, log=Lines())

    assert caught.value.problem == "unreachable"
    assert "connection refused" in str(caught.value)
    assert "could not be reached" in str(caught.value)


def test_pushing_an_image_that_is_not_there_says_so(engine: Engine) -> None:
    with pytest.raises(ImageMissing, match=REF):
        engine.push(REF, log=Lines())


def test_credentials_in_a_registry_url_never_reach_the_message_or_the_log(
    engine: Engine, fake: FakeDockerClient, lines: Lines
) -> None:
    fake.add_image(REF)
    leak = 'Get "https://robot:tok3n-value@127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused'
    fake.script_push(REF, [fake_api.push_refers("127.0.0.1:5000/calico/node"), fake_api.error_chunk(leak)])

    with pytest.raises(PushFailed) as caught:
        engine.push(REF, log=lines)

    assert "tok3n-value" not in str(caught.value)
    assert "tok3n-value" not in "\n".join(lines)
    assert "https://***@127.0.0.1:5000/v2/" in str(caught.value)


def test_the_digest_falls_back_to_the_status_line(engine: Engine, fake: FakeDockerClient) -> None:
    fake.add_image(REF)
    digest = "sha256:" + "ab" * 32
    chunks = fake_api.push_ok("127.0.0.1:5000/calico/node", "v3.2.0", "10219f3f1d4f", digest)
    fake.script_push(REF, [chunk for chunk in chunks if "aux" not in chunk])

    assert engine.push(REF, log=Lines()) == digest


def test_a_push_without_any_digest_fails(engine: Engine, fake: FakeDockerClient) -> None:
    fake.add_image(REF)
    fake.script_push(REF, [fake_api.push_refers("127.0.0.1:5000/calico/node")])

    with pytest.raises(PushFailed, match="the registry reported no digest"):
        engine.push(REF, log=Lines())


def test_lookups_on_a_lost_engine_are_docker_unavailable(engine: Engine, fake: FakeDockerClient) -> None:
    fake.make_unreachable()

    with pytest.raises(DockerUnavailableError, match="while looking up image calico/node:v3.2.0: No such file"):
        engine.image_id("calico/node:v3.2.0")
    with pytest.raises(DockerUnavailableError, match="while pushing"):
        engine.push(REF, log=Lines())
