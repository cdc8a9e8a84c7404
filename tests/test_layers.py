"""Image content as layer diff ids: recorded next to each image id, read back strictly
(records from before they were recorded still read), and made comparable across builds
by giving the build context the commit's time."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orchestrator import record
from orchestrator.builders.image import clamp_times
from orchestrator.record import ReleaseRecordError
from tests.helpers.fake_docker import FakeDockerClient
from tests.test_cache import Workspace

COMMIT_TIME = 1534248000  # 2018-08-14


def test_the_record_keeps_each_images_layers_and_reads_them_back(release_dir: Path, fake: FakeDockerClient) -> None:
    image = record.read(release_dir).artifacts["lib/image"].images[0]

    assert image.layers == tuple(fake.images.get(image.id).layers) and len(image.layers) == 1
    data = json.loads((release_dir / "release.json").read_text())
    assert list(data["artifacts"]["lib/image"]["images"][0]) == ["id", "refs", "labels", "layers"]


def test_a_record_written_before_layers_were_recorded_still_reads_with_none(release_dir: Path) -> None:
    path = release_dir / "release.json"
    data = json.loads(path.read_text())
    for artifact in data["artifacts"].values():
        for image in artifact["images"]:
            del image["layers"]
    path.write_text(json.dumps(data))

    assert {i.layers for a in record.read(release_dir).artifacts.values() for i in a.images} == {()}


@pytest.mark.parametrize(("layers", "problem"), [
    ("sha256:" + "a" * 64, "artifacts.lib/image.images[0].layers: expected an array, got a string"),
    (["a" * 64], "artifacts.lib/image.images[0].layers[0]: expected sha256: and 64 hex digits, got"),
    ([5], "artifacts.lib/image.images[0].layers[0]: expected sha256: and 64 hex digits, got a number (5)"),
])
def test_a_layer_list_of_the_wrong_shape_is_refused_naming_the_field(
    release_dir: Path, layers: object, problem: str
) -> None:
    path = release_dir / "release.json"
    data = json.loads(path.read_text())
    data["artifacts"]["lib/image"]["images"][0]["layers"] = layers
    path.write_text(json.dumps(data))

    with pytest.raises(ReleaseRecordError) as caught:
        record.read(release_dir)
    assert problem in str(caught.value)


def test_clamp_times_gives_newer_entries_the_commit_time_and_leaves_git_and_older_ones(tmp_path: Path) -> None:
    (tmp_path / "tree/bin").mkdir(parents=True)
    (tmp_path / "tree/bin/app").write_text("app\n")
    (tmp_path / "old").write_text("old\n")
    os.utime(tmp_path / "old", (1000, 1000))
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git/index").write_text("index\n")
    os.symlink("/nonexistent/target", tmp_path / "link")

    changed = clamp_times(tmp_path, COMMIT_TIME)

    assert changed == 5, "the context itself, tree, tree/bin, tree/bin/app and the link"
    for name in (".", "tree", "tree/bin", "tree/bin/app"):
        assert (tmp_path / name).stat().st_mtime == COMMIT_TIME, name
    assert os.lstat(tmp_path / "link").st_mtime == COMMIT_TIME, "the link's own time; its target is not followed"
    assert (tmp_path / "old").stat().st_mtime == 1000
    assert (tmp_path / ".git/index").stat().st_mtime > COMMIT_TIME, "host git's files keep their times"
    assert clamp_times(tmp_path, COMMIT_TIME) == 0


def test_an_image_build_records_its_layers_and_a_cache_hit_without_them_asks_the_engine(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    built = ws.build()["calico/node"].output.images[0]
    assert built.layers == tuple(ws.client.images.get(built.id).layers) and len(built.layers) == 1

    state = tmp_path / "state/calico+node.json"  # a cache record saved before layers were recorded
    data = json.loads(state.read_text())
    del data["images"][0]["layers"]
    state.write_text(json.dumps(data))

    again = ws.build()["calico/node"]
    assert again.status == "cached" and again.output.images[0].layers == built.layers
