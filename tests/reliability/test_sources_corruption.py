"""A damaged mirror cache is repaired, not reported as a missing ref.

The mirror cache is not trusted: a disk fault, a full disk or a killed process can
leave truncated or missing objects. Whatever the damage, the next fetch (and a
build's lazy checkout) discards the mirror, fetches it again once, and succeeds; a ref
that really does not exist is still "not found" (exit 2); damage that survives a fresh
fetch (the server's own repository) is a real error with git's words (exit 1).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.errors import EXIT_BAD_INPUT, EXIT_FAILED
from orchestrator.sources import (
    CommitNotFoundError,
    CorruptObjectsError,
    FetchFailed,
    FetchOptions,
    NotCachedError,
    RefNotFoundError,
    fetch,
    mirror_name,
)
from tests.helpers.cli import run_cli
from tests.helpers.gitrepos import RepoSpec, Upstream, build_upstream, git
from tests.reliability.sources_helpers import write_manifest
from tests.sources.conftest import Events


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    return build_upstream(tmp_path_factory.mktemp("upstream"))


@pytest.fixture
def options(tmp_path: Path) -> FetchOptions:
    return FetchOptions(cache_dir=tmp_path / "cache", checkout_dir=tmp_path / "ws" / ".build" / "src", backoff=0.0)


@pytest.fixture
def events() -> Events:
    return Events()


def _mirror(options: FetchOptions, upstream: Upstream) -> Path:
    return options.cache_dir / mirror_name(upstream.url)


def _loose(mirror: Path, oid: str) -> Path:
    path = mirror / "objects" / oid[:2] / oid[2:]
    assert path.is_file(), f"{oid} is not a loose object in the mirror"
    path.chmod(0o644)  # git writes objects read-only
    return path


def truncate_loose_commit(mirror: Path, up: Upstream) -> None:
    path = _loose(mirror, up.commits["c2"])
    path.write_bytes(path.read_bytes()[:10])


def truncate_pack(mirror: Path, up: Upstream) -> None:
    git("repack", "-a", "-d", "-q", git_dir=mirror)
    (pack,) = (mirror / "objects" / "pack").glob("*.pack")
    pack.chmod(0o644)
    data = pack.read_bytes()
    pack.write_bytes(data[: len(data) // 2])


def delete_needed_commit(mirror: Path, up: Upstream) -> None:
    _loose(mirror, up.commits["c2"]).unlink()


def garble_tagged_commit(mirror: Path, up: Upstream) -> None:
    # v1.0 is an annotated tag: the tag object is intact, the commit it points to is not.
    _loose(mirror, up.commits["c2"]).write_bytes(os.urandom(64))


def truncate_tag_object(mirror: Path, up: Upstream) -> None:
    path = _loose(mirror, up.tag_objects["v1.0"])
    path.write_bytes(path.read_bytes()[:5])


DAMAGE: dict[str, Callable[[Path, Upstream], None]] = {
    "truncated loose object": truncate_loose_commit,
    "truncated pack": truncate_pack,
    "deleted object the ref needs": delete_needed_commit,
    "corrupt object a tag points to": garble_tagged_commit,
    "truncated tag object": truncate_tag_object,
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_the_next_fetch_repairs_a_damaged_mirror_and_succeeds(
    upstream: Upstream, options: FetchOptions, damage: str
) -> None:
    repo = RepoSpec(name="felix", url=upstream.url, ref="v1.0", commit=upstream.commits["c2"])
    fetch([repo], options)
    DAMAGE[damage](_mirror(options, upstream), upstream)
    shutil.rmtree(options.checkout_dir)  # the checkout must come from the damaged mirror
    events = Events()

    checkout = fetch([repo], options, on_event=events)["felix"]

    assert checkout.commit == upstream.commits["c2"]
    assert git("rev-parse", "HEAD", cwd=checkout.path) == upstream.commits["c2"]
    assert git("fsck", "--no-dangling", git_dir=_mirror(options, upstream)) == ""
    repaired = [m for m in events.messages("felix") if m.startswith("damaged git objects")]
    assert len(repaired) == 1, events.text()
    assert repaired[0].endswith("discarding the mirror and fetching again")


@pytest.mark.parametrize("ref", ["v1.1", "release-1", "commit r1"])
def test_every_ref_shape_is_repaired_when_its_commit_is_truncated(
    upstream: Upstream, options: FetchOptions, ref: str
) -> None:
    ref = upstream.commits["r1"] if ref == "commit r1" else ref
    repo = RepoSpec(name="felix", url=upstream.url, ref=ref)
    expected = fetch([repo], options)["felix"].commit
    path = _loose(_mirror(options, upstream), expected)
    path.write_bytes(path.read_bytes()[:12])

    assert fetch([repo], options)["felix"].commit == expected


def test_a_damaged_blob_is_repaired_when_the_checkout_fetches_from_the_mirror(
    upstream: Upstream, options: FetchOptions, events: Events
) -> None:
    repo = RepoSpec(name="felix", url=upstream.url, ref="v1.0")
    fetch([repo], options)
    mirror = _mirror(options, upstream)
    blob = git("rev-parse", f"{upstream.commits['c2']}:c2", git_dir=mirror)
    _loose(mirror, blob).write_bytes(b"")
    shutil.rmtree(options.checkout_dir)

    # The pin reads only the commit (cached, no network): the blob is read by the
    # checkout's fetch from the mirror, which must then repair the mirror itself.
    checkout = fetch([repo], options, on_event=events)["felix"]

    assert (checkout.path / "c2").read_text() == "c2\n"
    messages = events.messages("felix")
    assert "cached, no network" in messages
    assert any(m.endswith("checking out afresh") for m in messages), events.text()
    assert any(m.endswith("discarding the mirror and fetching again") for m in messages), events.text()


@pytest.mark.parametrize("damage", ["truncated loose object", "deleted object the ref needs"])
def test_a_ref_that_does_not_exist_is_still_not_found_with_a_damaged_mirror(
    upstream: Upstream, options: FetchOptions, damage: str
) -> None:
    fetch([RepoSpec(name="felix", url=upstream.url, ref="v1.0")], options)
    DAMAGE[damage](_mirror(options, upstream), upstream)

    with pytest.raises(FetchFailed) as caught:
        fetch([RepoSpec(name="felix", url=upstream.url, ref="v9.9")], options)

    assert isinstance(caught.value.failures["felix"], RefNotFoundError)
    assert caught.value.exit_code == EXIT_BAD_INPUT


def test_a_commit_that_does_not_exist_is_still_not_found(upstream: Upstream, options: FetchOptions) -> None:
    fetch([RepoSpec(name="felix", url=upstream.url, ref="v1.0")], options)

    with pytest.raises(FetchFailed) as caught:
        fetch([RepoSpec(name="felix", url=upstream.url, ref="ab" * 20)], options)

    assert isinstance(caught.value.failures["felix"], CommitNotFoundError)
    assert caught.value.exit_code == EXIT_BAD_INPUT


def test_damage_on_the_server_is_reported_with_gits_words_after_one_repair(
    upstream: Upstream, options: FetchOptions, events: Events, tmp_path: Path
) -> None:
    server = upstream.copy(tmp_path / "server.git")
    (pack,) = (server.path / "objects" / "pack").glob("*.pack")
    pack.chmod(0o644)
    data = bytearray(pack.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = os.urandom(64)
    pack.write_bytes(bytes(data))
    repo = RepoSpec(name="felix", url=server.url, ref="v1.0")

    with pytest.raises(FetchFailed) as caught:
        fetch([repo], dataclasses.replace(options, retries=2), on_event=events)

    error = caught.value.failures["felix"]
    assert isinstance(error, CorruptObjectsError)
    assert caught.value.exit_code == EXIT_FAILED
    message = str(error)
    assert "still damaged after discarding it and fetching again" in message
    assert "corrupt" in message.lower()
    assert not [m for m in events.messages() if m.startswith("retrying")]


def test_offline_a_damaged_mirror_is_reported_as_not_cached(upstream: Upstream, options: FetchOptions) -> None:
    repo = RepoSpec(name="felix", url=upstream.url, ref="v1.0")
    fetch([repo], options)
    truncate_loose_commit(_mirror(options, upstream), upstream)
    shutil.rmtree(options.checkout_dir / "felix")  # the checkout must be made again from the mirror

    with pytest.raises(FetchFailed) as caught:
        fetch([repo], dataclasses.replace(options, offline=True))

    error = caught.value.failures["felix"]
    assert isinstance(error, NotCachedError)
    assert "its mirror is damaged" in str(error)
    assert caught.value.missing == ["felix"]


def test_a_damaged_mirror_under_an_intact_checkout_is_left_for_when_it_is_needed(
    upstream: Upstream, options: FetchOptions
) -> None:
    # A warm run reads the mirror's ref, not its objects (the checkout holds what the
    # build needs): the damage is found, and repaired, once a checkout needs the mirror.
    repo = RepoSpec(name="felix", url=upstream.url, ref="v1.0")
    fetch([repo], options)
    truncate_loose_commit(_mirror(options, upstream), upstream)

    offline = fetch([repo], dataclasses.replace(options, offline=True))["felix"]
    (options.checkout_dir / "felix" / "VERSION").write_text("changed\n")
    repaired = fetch([repo], options)["felix"]

    assert offline.commit == repaired.commit == upstream.commits["c2"]
    assert (options.checkout_dir / "felix" / "VERSION").read_text() == "c2\n"


def test_a_builds_lazy_checkout_repairs_a_damaged_mirror(upstream: Upstream, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    manifest = write_manifest(tmp_path / "manifest.yaml", {"felix": (upstream.url, "v1.0")})
    env = {"XDG_CACHE_HOME": str(workspace / "cache"), "HOME": str(workspace)}
    first = run_cli("build", "--all", "--manifest", str(manifest), "--workspace", str(workspace),
                    program="orchestrator", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    mirror = workspace / "cache" / "orchestrator" / "git" / mirror_name(upstream.url)
    blob = git("rev-parse", f"{upstream.commits['c2']}:VERSION", git_dir=mirror)
    path = _loose(mirror, blob)
    path.write_bytes(path.read_bytes()[:8])
    shutil.rmtree(workspace / ".build" / "src")

    again = run_cli("build", "--all", "--force", "--manifest", str(manifest), "--workspace", str(workspace),
                    program="orchestrator", cwd=tmp_path, env=env)

    assert again.returncode == 0, again.stderr
    assert "discarding the mirror and fetching again" in again.stderr
    assert (workspace / ".build" / "src" / "felix" / "VERSION").read_text() == "c2\n"


def test_through_the_cli_a_missing_ref_in_a_damaged_mirror_exits_2(upstream: Upstream, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    env = {"XDG_CACHE_HOME": str(workspace / "cache"), "HOME": str(workspace)}
    good = write_manifest(tmp_path / "good.yaml", {"felix": (upstream.url, "v1.0")})
    assert run_cli("fetch", "--all", "--manifest", str(good), "--workspace", str(workspace),
                   program="orchestrator", cwd=tmp_path, env=env).returncode == 0
    mirror = workspace / "cache" / "orchestrator" / "git" / mirror_name(upstream.url)
    truncate_loose_commit(mirror, upstream)
    repaired = run_cli("fetch", "--all", "--manifest", str(good), "--workspace", str(workspace),
                       program="orchestrator", cwd=tmp_path, env=env)
    truncate_loose_commit(mirror, upstream)
    missing = write_manifest(tmp_path / "missing.yaml", {"felix": (upstream.url, "v9.9")})

    result = run_cli("fetch", "--all", "--manifest", str(missing), "--workspace", str(workspace),
                     program="orchestrator", cwd=tmp_path, env=env)

    assert repaired.returncode == 0, repaired.stderr
    assert result.returncode == 2, result.stderr
    assert "ref 'v9.9' not found" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_a_damaged_checkout_is_checked_out_afresh_from_the_intact_mirror_even_offline(
    upstream: Upstream, options: FetchOptions, events: Events, damage: str
) -> None:
    repo = RepoSpec(name="felix", url=upstream.url, ref="v1.0")
    path = fetch([repo], options)["felix"].path
    blob = git("rev-parse", f"{upstream.commits['c2']}:c2", cwd=path)
    loose = _loose(path / ".git", blob)
    if damage == "deleted":
        loose.unlink()
    else:
        loose.write_bytes(loose.read_bytes()[:5])
    (path / "c2").write_text("changed by an earlier build\n")  # so the checkout must read the blob

    checkout = fetch([repo], dataclasses.replace(options, offline=True), on_event=events)["felix"]

    assert (checkout.path / "c2").read_text() == "c2\n"
    assert any(m.endswith("checking out afresh") for m in events.messages()), events.text()
    assert not any("discarding the mirror" in m for m in events.messages())
