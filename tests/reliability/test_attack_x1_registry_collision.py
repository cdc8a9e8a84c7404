"""``--registry`` must not fold two images of a release onto one reference.

``--registry`` replaces each reference's registry host, so ``quay.io/calico/node:v1``
and ``calico/node:v1`` (two artifacts, two images) both become
``127.0.0.1:5000/calico/node:v1``. Both were pushed there, the second over the first:
the registry then held one artifact under no name at all, while release.json recorded
both as landed there and provenance.json named the first image's digest for a tag that
serves the second. Two different images onto one reference is refused before anything
is pushed; one image under two references that fold into one is pushed once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.engine.dockerpy import Engine
from orchestrator.errors import InputError
from orchestrator.manifest import Manifest
from orchestrator.publish import publish_release
from tests.helpers.fake_docker import FakeDockerClient
from tests.helpers.registry import APP_COMMIT, add_images, make_release, small_manifest

MANIFEST = f"""\
schema: 1
release: v1
repos:
  app:
    url: https://example.invalid/app.git
    ref: v1
    commit: {APP_COMMIT}
    artifacts:
      node:
        type: image
        tags: [{{tags}}]
      node-hub:
        type: image
        tags: ["calico/node:{{{{tag}}}}"]
"""


def release(tmp_path: Path, tags: str) -> tuple[Path, Manifest, FakeDockerClient]:
    manifest = small_manifest(tmp_path, MANIFEST.format(tags=tags))
    fake = FakeDockerClient()
    release_dir = tmp_path / "dist" / manifest.release
    make_release(release_dir, manifest, add_images(fake, manifest))
    return release_dir, manifest, fake


def test_two_images_folded_onto_one_reference_by_registry_are_refused_before_any_push(tmp_path: Path) -> None:
    release_dir, manifest, fake = release(tmp_path, '"quay.io/calico/node:{tag}"')
    before = (release_dir / "release.json").read_bytes()

    with pytest.raises(InputError) as caught:
        publish_release(release_dir, manifest, Engine(fake), registry="127.0.0.1:5000/", log=lambda line: None)

    message = str(caught.value)
    assert "127.0.0.1:5000/calico/node:v1" in message and "node" in message and "node-hub" in message, message
    assert not fake.calls_to("api.push")
    assert (release_dir / "release.json").read_bytes() == before


def test_one_image_under_two_references_that_fold_into_one_is_pushed_once(tmp_path: Path) -> None:
    release_dir, manifest, fake = release(tmp_path, '"quay.io/team/node:{tag}", "docker.io/team/node:{tag}"')

    report = publish_release(release_dir, manifest, Engine(fake), registry="127.0.0.1:5000/", log=lambda line: None)

    pushed = [f"{call['repository']}:{call['tag']}" for call in fake.calls_to("api.push")]
    assert pushed.count("127.0.0.1:5000/team/node:v1") == 1, pushed
    assert sorted(p.ref for p in report.pushed) == ["127.0.0.1:5000/calico/node:v1", "127.0.0.1:5000/team/node:v1"]


def test_publishing_the_two_one_at_a_time_onto_one_reference_is_refused_too(tmp_path: Path) -> None:
    release_dir, manifest, fake = release(tmp_path, '"quay.io/calico/node:{tag}"')
    engine = Engine(fake)
    publish_release(release_dir, manifest, engine, artifacts=["node"], registry="127.0.0.1:5000/",
                    log=lambda line: None)

    with pytest.raises(InputError, match="would receive two images"):
        publish_release(release_dir, manifest, engine, artifacts=["node-hub"], registry="127.0.0.1:5000/",
                        log=lambda line: None)
    assert len(fake.calls_to("api.push")) == 1
