"""Rebuild only what changed: cache keys, intact outputs, --force."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from orchestrator import stamps
from orchestrator.cache import KEY_LABEL, Found, LocalCache
from orchestrator.engine.dockerpy import Engine
from orchestrator.execute import Options, Result, execute
from orchestrator.manifest import Manifest, loads
from orchestrator.outputs import ArtifactOutput, FileRecord, Source
from orchestrator.plan import make_plan
from tests.helpers.fake_docker import FakeDockerClient

TEXT = """schema: 1
release: v9
defaults: {network: none}
repos:
  felix:
    url: file:///up/felix
    ref: v1
    artifacts:
      felix:
        type: binary
        command: mkdir -p bin && echo felix-1 > bin/calico-felix && echo ran >> ../felix.runs
        outputs: [bin/calico-felix]
  node:
    url: file:///up/node
    ref: v1
    artifacts:
      calico/node:
        type: image
        stage: {bin/calico-felix: felix}
  other:
    url: file:///up/other
    ref: v1
    artifacts:
      other:
        type: binary
        command: echo other > other && echo ran >> ../other.runs
        outputs: [other]
"""


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.client = FakeDockerClient()
        self.commits = {"felix": "1" * 40, "node": "2" * 40, "other": "3" * 40}
        for repo in self.commits:
            (root / "src" / repo).mkdir(parents=True)
        (root / "src/node/Dockerfile").write_text("FROM scratch\nCOPY bin/calico-felix /\n")

    def build(self, text: str = TEXT, **options: object) -> dict[str, Result]:
        m: Manifest = loads(text)
        sources = {name: Source(repo=name, url=f"file:///up/{name}", ref="v1", commit=commit, commit_time=0,
                                path=self.root / "src" / name) for name, commit in self.commits.items()}
        opts = Options(log_dir=self.root / "logs", release_dir=self.root / "dist", **options)  # type: ignore[arg-type]
        engine = Engine(self.client)
        return execute(make_plan(m, everything=True), m, sources, opts, engine=engine,
                       cache=LocalCache(self.root / "state", release_dir=self.root / "dist", engine=engine))

    def runs(self, repo: str) -> int:
        path = self.root / "src" / f"{repo}.runs"
        return len(path.read_text().splitlines()) if path.exists() else 0


def statuses(results: dict[str, Result]) -> dict[str, str]:
    return {name: r.status for name, r in results.items()}


def test_an_unchanged_release_is_entirely_cached_and_runs_nothing(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    first = ws.build()
    assert set(statuses(first).values()) == {"ok"}
    builds = len(ws.client.calls_to("api.build"))
    second = ws.build()
    assert set(statuses(second).values()) == {"cached"}
    assert ws.runs("felix") == 1 and ws.runs("other") == 1
    assert len(ws.client.calls_to("api.build")) == builds
    assert {n: r.cache_key for n, r in first.items()} == {n: r.cache_key for n, r in second.items()}
    assert second["calico/node"].output.images == first["calico/node"].output.images


def test_a_recipe_change_rebuilds_that_artifact_and_its_dependents_only(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.build()
    changed = ws.build(TEXT.replace("echo felix-1", "echo felix-2"))
    assert statuses(changed) == {"felix": "ok", "calico/node": "ok", "other": "cached"}


def test_a_description_change_rebuilds_nothing(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.build()
    text = TEXT.replace("        type: binary\n", "        type: binary\n        description: now documented\n", 1)
    assert set(statuses(ws.build(text)).values()) == {"cached"}


def test_a_pin_change_rebuilds_that_repo_and_its_dependents(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.build()
    ws.commits["felix"] = "4" * 40
    assert statuses(ws.build()) == {"felix": "ok", "calico/node": "ok", "other": "cached"}


def test_a_deleted_or_altered_output_file_is_rebuilt(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.build()
    (tmp_path / "dist/bin/other").unlink()
    assert statuses(ws.build())["other"] == "ok"
    (tmp_path / "dist/bin/other").write_text("tampered\n")
    assert statuses(ws.build())["other"] == "ok"
    assert (tmp_path / "dist/bin/other").read_text() == "other\n"


def test_a_deleted_image_is_rebuilt(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    first = ws.build()
    image = first["calico/node"].output.images[0]
    ws.client.images.remove(image.id, force=True)
    assert statuses(ws.build())["calico/node"] == "ok"


def test_images_carry_their_cache_key_as_a_label(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    result = ws.build()["calico/node"]
    (build,) = ws.client.calls_to("api.build")
    assert build["labels"][KEY_LABEL] == result.cache_key


def test_force_rebuilds_everything_or_just_the_named(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.build()
    assert set(statuses(ws.build(force=True)).values()) == {"ok"}
    assert statuses(ws.build(force=frozenset({"other"}))) == {"felix": "cached", "calico/node": "cached",
                                                              "other": "ok"}


def test_a_failed_build_forgets_the_previous_success(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.build()
    failing = TEXT.replace("echo other > other", "exit 1")
    assert statuses(ws.build(failing, keep_going=True))["other"] == "failed"
    # Back to the old recipe: its record is gone, so it builds again rather than trusting stale state.
    assert not (tmp_path / "state/other.json").exists()
    assert statuses(ws.build())["other"] == "ok"


def test_key_changes_with_the_release_name(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    first = ws.build()
    second = ws.build(TEXT.replace("release: v9", "release: v10"))
    assert first["other"].cache_key != second["other"].cache_key
    assert second["other"].status == "ok"


def test_a_fully_cached_release_checks_nothing_out_and_a_rebuild_checks_out_once(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.build()
    checkouts: list[str] = []
    m = loads(TEXT)
    sources = {name: Source(repo=name, url=f"file:///up/{name}", ref="v1", commit=commit, commit_time=0,
                            path=tmp_path / "src" / name, prepare=lambda name=name: checkouts.append(name))
               for name, commit in ws.commits.items()}
    opts = Options(log_dir=tmp_path / "logs", release_dir=tmp_path / "dist")
    engine = Engine(ws.client)
    local = LocalCache(tmp_path / "state", release_dir=tmp_path / "dist", engine=engine)
    results = execute(make_plan(m, everything=True), m, sources, opts, engine=engine, cache=local)
    assert {r.status for r in results.values()} == {"cached"} and checkouts == []
    forced = Options(log_dir=tmp_path / "logs", release_dir=tmp_path / "dist",
                     force=frozenset({"felix", "calico/node"}))
    execute(make_plan(m, everything=True), m, sources, forced, engine=engine, cache=local)
    assert sorted(checkouts) == ["felix", "node"]


class Shelf:
    """A cache kept somewhere else (as a shared cache would be): outputs stored by key,
    restored by copying the files back into the release directory."""

    def __init__(self, release_dir: Path) -> None:
        self.release_dir = release_dir
        self.kept: dict[tuple[str, str], tuple[ArtifactOutput, dict[str, bytes]]] = {}
        self.calls: list[tuple[str, str]] = []

    def lookup(self, artifact: str, key: str) -> Found:
        self.calls.append(("lookup", artifact))
        kept = self.kept.get((artifact, key))
        return Found(kept[0], "cached") if kept else Found(None, "not on the shelf")

    def restore(self, artifact: str, key: str, found: Found) -> ArtifactOutput:
        self.calls.append(("restore", artifact))
        output, blobs = self.kept[(artifact, key)]
        for path, data in blobs.items():
            (self.release_dir / path).parent.mkdir(parents=True, exist_ok=True)
            (self.release_dir / path).write_bytes(data)
        return output

    def store(self, artifact: str, key: str, output: ArtifactOutput, duration: float = 0.0) -> None:
        self.calls.append(("store", artifact))
        self.kept[(artifact, key)] = (output, {f.path: (self.release_dir / f.path).read_bytes() for f in output.files})

    def forget(self, artifact: str) -> None:
        self.calls.append(("forget", artifact))


def test_any_cache_behind_the_protocol_can_restore_outputs_instead_of_a_build(tmp_path: Path) -> None:
    text = TEXT.split("  node:")[0]  # felix alone: files only
    ws = Workspace(tmp_path)
    m = loads(text)
    sources = {"felix": Source(repo="felix", url="file:///up/felix", ref="v1", commit=ws.commits["felix"],
                               commit_time=0, path=tmp_path / "src" / "felix")}
    options = Options(log_dir=tmp_path / "logs", release_dir=tmp_path / "dist")
    shelf = Shelf(tmp_path / "dist")

    first = execute(make_plan(m, everything=True), m, sources, options, cache=shelf)
    (tmp_path / "dist" / "bin" / "calico-felix").unlink()  # as on a fresh machine
    second = execute(make_plan(m, everything=True), m, sources, options, cache=shelf)

    assert (first["felix"].status, second["felix"].status) == ("ok", "cached")
    assert ws.runs("felix") == 1
    assert (tmp_path / "dist" / "bin" / "calico-felix").read_text() == "felix-1\n"
    assert shelf.calls == [("lookup", "felix"), ("forget", "felix"), ("store", "felix"),
                           ("lookup", "felix"), ("restore", "felix")]


def test_a_cached_image_costs_one_inspection_however_many_references_it_has(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    text = TEXT.replace("        stage: {bin/calico-felix: felix}\n",
                        "        stage: {bin/calico-felix: felix}\n"
                        "        tags: ['{registry}{name}:{tag}', 'quay.io/calico/node:{tag}', 'calico/node:latest']\n")
    ws.build(text)
    before = len(ws.client.calls)

    assert statuses(ws.build(text))["calico/node"] == "cached"

    asked = [name for name, _ in ws.client.calls[before:]]
    assert asked == ["images.get"]


def test_a_reference_moved_to_another_image_is_rebuilt_although_the_image_is_still_there(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    first = ws.build()
    (ref,) = first["calico/node"].output.images[0].refs
    ws.client.add_image(ref)  # the reference now names some other image; the built one keeps its id

    assert statuses(ws.build())["calico/node"] == "ok"


def test_an_image_without_the_cache_key_label_is_rebuilt(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    first = ws.build()
    (image,) = first["calico/node"].output.images
    ws.client._images[image.id].config["Labels"] = {}

    second = ws.build()

    assert statuses(second)["calico/node"] == "ok"



def test_unchanged_outputs_are_judged_by_stat_data_and_a_rewrite_with_the_same_size_and_mtime_is_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orchestrator.cache as cache_module

    trust = stamps.key(tmp_path / "keys")
    assert trust is not None
    real_init, real_damage = LocalCache.__init__, cache_module.damage
    hashed: list[str] = []

    def with_trust(self: LocalCache, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **{**kwargs, "trust": trust})

    def counting(release_dir: Path, record: FileRecord) -> str | None:
        hashed.append(record.path)
        return real_damage(release_dir, record)

    monkeypatch.setattr(LocalCache, "__init__", with_trust)
    monkeypatch.setattr(cache_module, "damage", counting)
    ws = Workspace(tmp_path)

    def build() -> tuple[str, list[str]]:
        hashed.clear()
        return ws.build()["other"].status, sorted(hashed)

    build()
    assert build() == ("cached", ["bin/calico-felix", "bin/other"])  # hashed, and their stat data kept
    assert build() == ("cached", [])  # unchanged: not read again
    published = tmp_path / "dist" / "bin" / "other"
    before = published.stat()
    published.write_text("OTHER\n")  # same size, new content, mtime put back
    os.utime(published, ns=(before.st_atime_ns, before.st_mtime_ns))

    assert build() == ("ok", ["bin/other"])
    assert published.read_text() == "other\n"
