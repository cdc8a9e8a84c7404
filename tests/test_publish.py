"""publish_release: all of the release or nothing new, digests recorded, no secret shown.

Unit tests run on the FakeDockerClient; the tests marked `docker` push to a real local
registry (Debian's docker-registry) and pull the digest back.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import provenance
from orchestrator.engine.dockerpy import Engine
from orchestrator.engine.errors import PushFailed
from orchestrator.errors import InputError, UnknownNameError
from orchestrator.manifest import Manifest
from orchestrator.publish import PublishFailed, PublishRefused, format_report, publish_release, retarget
from orchestrator.verify import verify_release
from tests.helpers import fake_api
from tests.helpers.fake_docker import FakeDockerClient
from tests.helpers.fake_registry import FakeRegistry
from tests.helpers.registry import (
    APP_COMMIT,
    LIB_COMMIT,
    Registry,
    add_images,
    docker_config_with,
    free_port,
    make_release,
    small_manifest,
)

APP_V1 = "registry.example.invalid:5000/team/app/image:v1.0.0"
APP_LATEST = "registry.example.invalid:5000/team/app/image:latest"
LIB_V1 = "lib/image:v1.0.0"
LEAK = 'Get "https://robot:s3cret-Pa55@registry.example.invalid:5000/v2/": read tcp: connection reset by peer'


class Lines(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)


def publish(release_dir: Path, manifest: Manifest, fake: FakeDockerClient, **kw: Any) -> Any:
    kw.setdefault("log", Lines())
    kw.setdefault("registry_client", FakeRegistry(fake))
    return publish_release(release_dir, manifest, Engine(fake), backoff=0.0, **kw)


def pushes(fake: FakeDockerClient) -> list[str]:
    return [f"{call['repository']}:{call['tag']}" for call in fake.calls_to("api.push")]


def record(release_dir: Path) -> dict[str, Any]:
    return json.loads((release_dir / "release.json").read_text())  # type: ignore[no-any-return]


def flaky_push(fake: FakeDockerClient, monkeypatch: pytest.MonkeyPatch, ref: str, failures: list[str]) -> None:
    """The next pushes of ``ref`` fail with each of ``failures`` in turn, then succeed."""
    real = fake.api.push
    repository = ref.rpartition(":")[0]

    def push(repository_: str, tag: str | None = None, **kw: Any) -> Any:
        if f"{repository_}:{tag}" == ref:
            chunks = [fake_api.push_refers(repository), fake_api.error_chunk(failures.pop(0))] if failures else "ok"
            fake.script_push(ref, chunks)
        return real(repository_, tag, **kw)

    monkeypatch.setattr(fake.api, "push", push)


# -- refusing ------------------------------------------------------------------------------


def test_publish_refuses_when_an_artifact_failed_and_pushes_nothing(
    tmp_path: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    release_dir = tmp_path / "dist" / manifest.release
    make_release(release_dir, manifest, add_images(fake, manifest),
                 failed={"lib": "lib: command failed with exit code 2: make\n    make: *** [all] Error 2"})
    before = (release_dir / "release.json").read_bytes()
    fake.calls.clear()

    with pytest.raises(PublishRefused) as caught:
        publish(release_dir, manifest, fake)

    message = str(caught.value)
    assert message.startswith("refusing to publish release v1.0.0: 1 problem(s); only a release whose every "
                              "artifact built ok is published")
    assert "nothing was pushed" in message
    assert "\n  lib: failed: command failed with exit code 2: make\n" in message, "the name is said once"
    assert f"hint: fix and rebuild them (invoke build --all --manifest {manifest.path}), then" in message
    assert caught.value.exit_code == 1
    assert pushes(fake) == [] and not fake.calls_to("api.tag")
    assert (release_dir / "release.json").read_bytes() == before


def test_an_artifact_that_was_never_built_is_refused_too(
    tmp_path: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    release_dir = tmp_path / "dist" / manifest.release
    make_release(release_dir, manifest, add_images(fake, manifest))
    data = record(release_dir)
    del data["artifacts"]["lib/image"]
    (release_dir / "release.json").write_text(json.dumps(data))

    with pytest.raises(PublishRefused, match=r"\n  lib/image: not built \(not in release.json\)"):
        publish(release_dir, manifest, fake)
    assert pushes(fake) == []


def test_publishing_only_good_artifacts_of_a_release_whose_other_artifact_failed_is_refused(
    tmp_path: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    release_dir = tmp_path / "dist" / manifest.release
    make_release(release_dir, manifest, add_images(fake, manifest), failed={"lib": "boom"})

    with pytest.raises(PublishRefused, match=r"\n  lib: failed: boom\n"):
        publish(release_dir, manifest, fake, artifacts=["app"])  # the repo: app and app/image, both ok
    assert pushes(fake) == []


def test_a_subset_of_a_good_release_is_published_and_unknown_names_get_a_suggestion(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    report = publish(release_dir, manifest, fake, artifacts=["app"])  # the repo: app and app/image

    assert [p.ref for p in report.pushed] == [APP_V1, APP_LATEST]
    with pytest.raises(UnknownNameError, match="did you mean 'lib/image'"):
        publish(release_dir, manifest, fake, artifacts=["lib/imag"])


def test_preflight_refuses_images_missing_or_rebuilt_before_any_push(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    rebuilt = fake.add_image(LIB_V1, labels={"rebuilt": "yes"})

    with pytest.raises(PublishRefused) as caught:
        publish(release_dir, manifest, fake)

    message = str(caught.value)
    assert message.startswith("refusing to publish: 1 image not in the Docker engine as recorded")
    assert f"\n  {LIB_V1}: is {rebuilt} in the Docker engine, release.json records sha256:" in message
    assert pushes(fake) == []
    with pytest.raises(PublishRefused, match=rf"\n  {APP_V1}: not in the Docker engine \(release.json records"):
        publish(release_dir, manifest, FakeDockerClient())


def test_a_registry_must_be_a_host_prefix_ending_in_a_slash(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    for bad in ("127.0.0.1:5000", "team/", "https://127.0.0.1:5000/"):
        with pytest.raises(InputError, match=f"registry '{bad}' is not a registry prefix"):
            publish(release_dir, manifest, fake, registry=bad)
    assert pushes(fake) == []


# -- pushing -------------------------------------------------------------------------------


def test_every_ref_is_pushed_and_its_digest_recorded_in_release_json_and_provenance(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    before = record(release_dir)
    lines = Lines()

    report = publish(release_dir, manifest, fake, log=lines)

    assert pushes(fake) == [APP_V1, APP_LATEST, LIB_V1]
    assert not report.already_published and report.registry is None
    after = record(release_dir)
    for pushed in report.pushed:
        image = after["artifacts"][pushed.artifact]["images"][0]
        assert image["pushed"][pushed.ref] == {"digest": pushed.digest, "id": image["id"]}
        assert f"pushed {pushed.ref}@{pushed.digest}" in lines
    for name, artifact in before["artifacts"].items():  # everything else kept as it was
        for image in after["artifacts"][name]["images"]:
            del image["pushed"]
        assert after["artifacts"][name] == artifact
    assert {k: v for k, v in after.items() if k != "artifacts"} == {k: v for k, v in before.items() if k != "artifacts"}
    subjects = {s["name"]: s["digest"]["sha256"] for s in json.loads((release_dir / "provenance.json").read_text())[
        "subject"]}
    assert subjects[LIB_V1] == report.pushed[2].digest.removeprefix("sha256:")
    assert verify_release(release_dir, manifest, engine=Engine(fake), commits={"app": APP_COMMIT, "lib": LIB_COMMIT},
                          registry=FakeRegistry(fake), skip=("signature",)).ok
    assert format_report(report).startswith("published release v1.0.0: 3 refs pushed\n  registry.example.invalid")


def test_a_registry_retags_every_ref_in_place_of_the_manifests_registry(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    report = publish(release_dir, manifest, fake, registry="127.0.0.1:5000/")

    assert pushes(fake) == ["127.0.0.1:5000/app/image:v1.0.0", "127.0.0.1:5000/app/image:latest",
                            "127.0.0.1:5000/lib/image:v1.0.0"]
    ids = {p.ref: p.id for p in report.pushed}
    assert Engine(fake).image_id("127.0.0.1:5000/app/image:latest") == ids["127.0.0.1:5000/app/image:latest"]
    pushed = record(release_dir)["artifacts"]["app/image"]["images"][0]["pushed"]
    assert list(pushed) == ["127.0.0.1:5000/app/image:v1.0.0", "127.0.0.1:5000/app/image:latest"]
    subjects = [s["name"] for s in json.loads((release_dir / provenance.FILENAME).read_text())["subject"]]
    assert {*ids} <= {*subjects} and APP_LATEST in subjects
    assert verify_release(release_dir, manifest, engine=Engine(fake), commits=None, registry=FakeRegistry(fake),
                          skip=("signature", "pins")).ok


@pytest.mark.parametrize(
    ("ref", "default", "expected"),
    [
        ("registry.example.invalid:5000/team/app:1", "registry.example.invalid:5000/team/", "r.invalid/app:1"),
        ("calico/node:v3.2.0", "", "r.invalid/calico/node:v3.2.0"),
        ("quay.io/calico/node:v3.2.0", "", "r.invalid/calico/node:v3.2.0"),
        ("localhost/calico/node:v3.2.0", "quay.io/", "r.invalid/calico/node:v3.2.0"),
    ],
)
def test_retarget_replaces_the_manifests_registry_or_any_registry_host(ref: str, default: str, expected: str) -> None:
    assert retarget(ref, "r.invalid/", default) == expected


def test_a_transient_push_error_is_retried_with_backoff(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky_push(fake, monkeypatch, LIB_V1, ["received unexpected HTTP status: 503 Service Unavailable"])
    sleeps: list[float] = []
    monkeypatch.setattr("orchestrator.retrying.time.sleep", sleeps.append)
    lines = Lines()

    report = publish_release(release_dir, manifest, Engine(fake), log=lines, retries=2, backoff=1.5)

    assert [p.ref for p in report.pushed] == [APP_V1, APP_LATEST, LIB_V1]
    assert pushes(fake) == [APP_V1, APP_LATEST, LIB_V1, LIB_V1]
    assert len(sleeps) == 1 and 0.75 <= sleeps[0] <= 1.5  # 1.5s, jittered down by up to half
    assert f"push of {LIB_V1} failed (received unexpected HTTP status: 503 Service Unavailable); " \
           f"retrying in {sleeps[0]:g}s" in lines
    assert f"pushing {LIB_V1} (attempt 2 of 3)" in lines


def test_a_transient_error_that_persists_fails_after_the_retries(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky_push(fake, monkeypatch, APP_V1, ["blob upload unknown: 500 Internal Server Error"] * 3)

    with pytest.raises(PublishFailed) as caught:
        publish(release_dir, manifest, fake, retries=2)

    assert pushes(fake) == [APP_V1] * 3
    assert "registry.example.invalid:5000 kept failing; publish again later" in str(caught.value)


@pytest.mark.parametrize("outcome", ["unauthorized", "no-credentials"])
def test_refused_credentials_fail_at_once_without_retry_and_say_docker_login(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient, outcome: str
) -> None:
    fake.script_push(APP_V1, outcome)

    with pytest.raises(PublishFailed) as caught:
        publish(release_dir, manifest, fake, retries=5)

    assert pushes(fake) == [APP_V1]
    message = str(caught.value)
    assert message.startswith(f"publishing stopped: pushing {APP_V1} failed: ")
    assert "hint: registry.example.invalid:5000 refused the credentials: run `docker login " \
           "registry.example.invalid:5000`, then publish again" in message
    assert "  nothing landed\n" in message
    assert isinstance(caught.value.error, PushFailed) and caught.value.error.problem == "auth"


def test_an_unreachable_registry_fails_at_once_with_its_own_message(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    fake.script_push(APP_V1, "unreachable")

    with pytest.raises(PublishFailed) as caught:
        publish(release_dir, manifest, fake, retries=5)

    assert pushes(fake) == [APP_V1]
    assert "connection refused" in str(caught.value)
    assert "the registry registry.example.invalid:5000 could not be reached" in str(caught.value)
    assert "docker login" not in str(caught.value)


def test_a_push_failing_midway_reports_which_refs_landed_and_a_rerun_pushes_only_the_rest(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    fake.script_push(APP_LATEST, "unauthorized")

    with pytest.raises(PublishFailed) as caught:
        publish(release_dir, manifest, fake)

    failed = caught.value
    [landed] = failed.landed
    assert landed.ref == APP_V1 and landed.digest.startswith("sha256:")
    assert failed.not_pushed == (APP_LATEST, LIB_V1)
    message = str(failed)
    assert f"  landed in the registry (1):\n    {APP_V1}@{landed.digest}\n" in message
    assert f"  not pushed (2):\n    {APP_LATEST}\n    {LIB_V1}\n" in message
    assert record(release_dir)["artifacts"]["app/image"]["images"][0]["pushed"] == {
        APP_V1: {"digest": landed.digest, "id": landed.id}
    }

    fake.script_push(APP_LATEST, "ok")
    report = publish(release_dir, manifest, fake)

    assert [p.ref for p in report.pushed] == [APP_LATEST, LIB_V1]
    assert [p.ref for p in report.already] == [APP_V1]
    assert pushes(fake) == [APP_V1, APP_LATEST, APP_LATEST, LIB_V1]


def test_republishing_an_unchanged_release_is_a_no_op_that_says_so(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    first = publish(release_dir, manifest, fake)
    fake.calls.clear()
    before = (release_dir / "release.json").read_bytes()
    lines = Lines()

    again = publish(release_dir, manifest, fake, log=lines)

    assert again.already_published and again.pushed == ()
    assert again.already == first.pushed
    assert fake.calls == [], "no push, no tag, not even a look-up"
    assert lines == ["release v1.0.0 is already published: all 3 refs pushed with the same images"]
    assert (release_dir / "release.json").read_bytes() == before
    assert format_report(again).startswith("release v1.0.0 is already published; nothing pushed\n")


def test_a_rebuilt_image_is_pushed_again(release_dir: Path, manifest: Manifest, fake: FakeDockerClient) -> None:
    publish(release_dir, manifest, fake)
    data = record(release_dir)
    image = data["artifacts"]["lib/image"]["images"][0]
    image["id"] = fake.add_image(LIB_V1, labels={"rebuilt": "yes"})
    (release_dir / "release.json").write_text(json.dumps(data))

    report = publish(release_dir, manifest, fake)

    assert [p.ref for p in report.pushed] == [LIB_V1]
    assert not report.already_published


def test_no_password_reaches_the_log_the_error_or_the_records(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky_push(fake, monkeypatch, APP_V1, [LEAK])
    fake.script_push(APP_LATEST, [fake_api.push_refers("registry.example.invalid:5000/team/app/image"),
                                  fake_api.error_chunk(LEAK.replace("read tcp: connection reset", "denied"))])
    lines = Lines()

    with pytest.raises(PublishFailed) as caught:
        publish(release_dir, manifest, fake, log=lines)

    shown = "\n".join([*lines, str(caught.value), repr(caught.value.landed)])
    assert "connection reset by peer" in shown and "https://***@registry.example.invalid:5000/v2/" in shown
    for text in (shown, (release_dir / "release.json").read_text(), (release_dir / "provenance.json").read_text()):
        assert "s3cret-Pa55" not in text
        assert "tok3n-value" not in text  # the manifest URL's token


# -- a real registry -----------------------------------------------------------------------


@pytest.fixture
def real_release(tmp_path: Path, docker_engine: Engine) -> Iterator[tuple[Path, Manifest, str]]:
    """A one-image release (FROM scratch) built by the real engine under a unique tag."""
    tag = "t" + uuid.uuid4().hex[:12]  # unique: other test sessions may share this engine
    manifest = small_manifest(tmp_path, f"""\
schema: 1
release: {tag}
repos:
  app:
    url: https://example.invalid/app.git
    ref: v1
    commit: {APP_COMMIT}
    artifacts:
      orchestrator-test/publish:
        type: image
""")
    context = tmp_path / "context"
    context.mkdir()
    (context / "hello.txt").write_text(f"hello {tag}\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /\n")
    ref = f"orchestrator-test/publish:{tag}"
    built = docker_engine.build_image(context=context, dockerfile="Dockerfile", tags=(ref,), buildargs={}, target=None,
                                      labels={}, network_mode="none", log=Lines())
    release_dir = tmp_path / "dist" / tag
    make_release(release_dir, manifest, {"orchestrator-test/publish": built.id})
    yield release_dir, manifest, built.id
    import docker

    client = docker.from_env()
    for image_id in {built.id, *(i.id for i in client.images.list() if any(t.endswith(f":{tag}") for t in i.tags))}:
        with contextlib.suppress(docker.errors.NotFound):
            client.images.remove(image_id, force=True)
    client.close()


@pytest.mark.docker
def test_a_release_published_to_a_real_registry_pulls_back_as_the_same_image(
    real_release: tuple[Path, Manifest, str], registry: Registry, docker_engine: Engine
) -> None:
    import docker

    release_dir, manifest, image_id = real_release
    report = publish_release(release_dir, manifest, docker_engine, registry=f"{registry.address}/", log=Lines())

    [pushed] = report.pushed
    assert pushed.ref == f"{registry.address}/orchestrator-test/publish:{manifest.release}"
    client = docker.from_env()
    try:
        client.images.remove(image_id, force=True)  # every tag gone: the pull must fetch from the registry
        pulled = client.images.pull(f"{registry.address}/orchestrator-test/publish", tag=pushed.digest)
        assert pulled.id == image_id
    finally:
        client.close()
    recorded = record(release_dir)["artifacts"]["orchestrator-test/publish"]["images"][0]["pushed"]
    assert recorded == {pushed.ref: {"digest": pushed.digest, "id": image_id}}
    again = publish_release(release_dir, manifest, docker_engine, registry=f"{registry.address}/", log=Lines())
    assert again.already_published


@pytest.mark.docker
def test_a_real_registry_with_docker_login_credentials_accepts_the_push_and_no_password_shows(
    real_release: tuple[Path, Manifest, str], auth_registry: Registry, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release_dir, manifest, _ = real_release
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config_with(tmp_path, auth_registry)))
    engine = Engine.from_env()  # reads the Docker config, as after `docker login`
    lines = Lines()

    report = publish_release(release_dir, manifest, engine, registry=f"{auth_registry.address}/", log=lines)

    assert report.pushed[0].digest.startswith("sha256:")
    assert auth_registry.password is not None
    for text in ("\n".join(lines), format_report(report), (release_dir / "release.json").read_text(),
                 (release_dir / provenance.FILENAME).read_text()):
        assert auth_registry.password not in text


@pytest.mark.docker
def test_a_wrong_password_fails_at_once_as_an_auth_problem(
    real_release: tuple[Path, Manifest, str], auth_registry: Registry, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release_dir, manifest, _ = real_release
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config_with(tmp_path, auth_registry, password="wrong-Pa55")))
    engine = Engine.from_env()
    lines = Lines()

    with pytest.raises(PublishFailed) as caught:
        publish_release(release_dir, manifest, engine, registry=f"{auth_registry.address}/", log=lines)

    message = str(caught.value)
    assert f"run `docker login {auth_registry.address}`, then publish again" in message
    assert "  nothing landed\n" in message
    assert sum(line.startswith("pushing ") for line in lines) == 1, "not retried"
    assert "wrong-Pa55" not in message + "\n".join(lines)


@pytest.mark.docker
def test_a_registry_nobody_listens_on_fails_at_once_as_unreachable(
    real_release: tuple[Path, Manifest, str], docker_engine: Engine
) -> None:
    release_dir, manifest, _ = real_release
    address = f"127.0.0.1:{free_port()}"
    lines = Lines()

    with pytest.raises(PublishFailed) as caught:
        publish_release(release_dir, manifest, docker_engine, registry=f"{address}/", log=lines)

    message = str(caught.value)
    assert f"the registry {address} could not be reached" in message
    assert "connection refused" in message
    assert sum(line.startswith("pushing ") for line in lines) == 1, "not retried"
    assert "pushed" not in record(release_dir)["artifacts"]["orchestrator-test/publish"]["images"][0]


def test_the_demo_without_registry_is_refused_before_anything_else(tmp_path: Path) -> None:
    from orchestrator.manifest import load
    from orchestrator.sandbox import DEMO_REGISTRY, create_demo

    demo = load(create_demo(tmp_path / "demo"))
    assert demo.defaults.registry == DEMO_REGISTRY
    fake = FakeDockerClient()
    release_dir = tmp_path / "dist" / demo.release
    make_release(release_dir, demo, add_images(fake, demo))

    with pytest.raises(InputError, match=r"the demo's images are named under orchestrator-demo\.invalid/") as caught:
        publish_release(release_dir, demo, Engine(fake), log=lambda line: None)
    assert "--registry" in str(caught.value)
    assert fake.calls_to("api.push") == [] and fake.calls_to("images.get") == []
    with pytest.raises(InputError, match="the demo's images"):  # before the record is even read
        publish_release(tmp_path / "nowhere", demo, Engine(fake), log=lambda line: None)
