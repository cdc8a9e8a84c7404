"""publish pushes references by name, and the Docker engine is shared: whatever a
reference points to when its push starts is what lands in the registry.

The preflight checks every reference against the recorded image id before the first
push, but a release's pushes take a while, and image references are global to an
engine (README: two workspaces building one release on one engine re-tag the same
references). A reference re-tagged after the preflight must never be pushed and
recorded as the release's image: the registry would serve another image under the
release's name, and release.json and provenance.json would vouch for its digest.

The real engine, a real registry; the re-tag is made by the real engine too, at the
moment the first push starts (as the other workspace's build would), and what the
registry holds is read back through its own API, not through the code under test.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator import record
from orchestrator.engine.dockerpy import Engine
from orchestrator.publish import PublishFailed, publish_release
from tests.helpers import registry as real
from tests.helpers.registry import APP_COMMIT, make_release, small_manifest

pytestmark = pytest.mark.docker


@dataclass(frozen=True)
class Release:
    release_dir: Path
    manifest_path: Path
    ids: dict[str, str]  # artifact -> recorded image id
    refs: dict[str, str]  # artifact -> its one reference
    intruder: str  # another image, as another workspace's build would make


def _build(engine: Engine, folder: Path, text: str, tag: str) -> str:
    folder.mkdir()
    (folder / "file.txt").write_text(text)
    (folder / "Dockerfile").write_text("FROM scratch\nCOPY file.txt /\n")
    return engine.build_image(context=folder, dockerfile="Dockerfile", tags=(tag,), buildargs={}, target=None,
                              labels={}, network_mode="none", log=lambda line: None).id


@pytest.fixture
def release(tmp_path: Path, docker_engine: Engine, registry: real.Registry) -> Iterator[Release]:
    """Two image artifacts whose references live in the local registry (defaults.registry)."""
    tag = "t" + uuid.uuid4().hex[:12]
    manifest = small_manifest(tmp_path, f"""\
schema: 1
release: {tag}
defaults:
  registry: {registry.address}/
repos:
  app:
    url: https://example.invalid/app.git
    ref: v1
    commit: {APP_COMMIT}
    artifacts:
      x1/first:
        type: image
      x1/second:
        type: image
""")
    refs = {name: f"{registry.address}/{name}:{tag}" for name in ("x1/first", "x1/second")}
    ids = {name: _build(docker_engine, tmp_path / name.replace("/", "-"), f"{name} {tag}\n", ref)
           for name, ref in refs.items()}
    intruder = _build(docker_engine, tmp_path / "intruder", f"intruder {tag}\n",
                      f"{registry.address}/x1/intruder:{tag}")
    release_dir = tmp_path / "ws" / "dist" / tag
    make_release(release_dir, manifest, ids)
    yield Release(release_dir=release_dir, manifest_path=manifest.path, ids=ids, refs=refs, intruder=intruder)
    import docker

    client = docker.from_env()
    for image in client.images.list():
        if any(t.endswith(f":{tag}") for t in image.tags):
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image.id, force=True)
    client.close()


def registry_config_digest(ref: str) -> str:
    """The image id (config digest) that the registry serves under ``ref``: its own API."""
    host, _, rest = ref.partition("/")
    name, _, tag = rest.rpartition(":")
    request = urllib.request.Request(f"http://{host}/v2/{name}/manifests/{tag}", headers={
        "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.load(response)["config"]["digest"])


def retag_when_pushing(engine: Engine, monkeypatch: pytest.MonkeyPatch, image: str, ref: str, *,
                       when: str, times: int) -> None:
    """When a push of ``when`` starts (the first ``times`` of them), ``ref`` is moved to
    ``image`` in the engine, as another workspace's build on this engine would tag it."""
    real_push = engine.push
    seen: list[str] = []

    def push(pushed: str, **kw: Any) -> str:
        if pushed == when and len(seen) < times:
            seen.append(pushed)
            engine.tag(image, ref)
        return real_push(pushed, **kw)

    monkeypatch.setattr(engine, "push", push)


def publish(release: Release, engine: Engine) -> list[str]:
    from orchestrator.manifest import load

    lines: list[str] = []
    publish_release(release.release_dir, load(release.manifest_path), engine, log=lines.append, retries=0)
    return lines


def assert_every_recorded_push_is_served(release: Release) -> None:
    """What release.json says landed is what the registry serves under that reference."""
    recorded = record.read(release.release_dir)
    for name, ref in release.refs.items():
        image = recorded.artifacts[name].images[0]
        if ref in image.pushed:
            served = registry_config_digest(ref)
            assert served == image.id == release.ids[name], (
                f"release.json records {ref} as pushed with image {image.id}, "
                f"but the registry serves image {served} under it")


def test_a_reference_retagged_after_the_preflight_is_pushed_as_the_recorded_image(
    release: Release, docker_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    retag_when_pushing(docker_engine, monkeypatch, release.intruder, release.refs["x1/second"],
                       when=release.refs["x1/first"], times=1)

    publish(release, docker_engine)

    assert_every_recorded_push_is_served(release)
    assert all(registry_config_digest(ref) == release.ids[name] for name, ref in release.refs.items())


def test_a_reference_retagged_during_its_own_push_is_pushed_again_as_the_recorded_image(
    release: Release, docker_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    second = release.refs["x1/second"]
    retag_when_pushing(docker_engine, monkeypatch, release.intruder, second, when=second, times=1)

    lines = publish(release, docker_engine)

    assert_every_recorded_push_is_served(release)
    assert registry_config_digest(second) == release.ids["x1/second"]
    assert any(f"{second} was re-tagged while it was pushed" in line for line in lines), lines


def test_a_reference_retagged_at_every_push_stops_publishing_and_is_never_recorded(
    release: Release, docker_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    second = release.refs["x1/second"]
    retag_when_pushing(docker_engine, monkeypatch, release.intruder, second, when=second, times=99)

    with pytest.raises(PublishFailed) as caught:
        publish(release, docker_engine)

    message = str(caught.value)
    assert f"{second} was re-tagged in the Docker engine while it was pushed" in message, message
    assert "Traceback" not in message
    assert second not in record.read(release.release_dir).artifacts["x1/second"].images[0].pushed
    assert_every_recorded_push_is_served(release)
