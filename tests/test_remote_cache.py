"""The shared build cache in a real registry (Debian's docker-registry on loopback), with the
real Docker engine: restore into a fresh workspace, refuse what does not match, survive a
registry that goes away, write nothing when read-only, and keep credentials out of sight."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.helpers.faultproxy import FaultProxy
from tests.helpers.registry import Registry, docker_config_with
from tests.helpers.shared_release import make_release, record

pytestmark = pytest.mark.docker


def storage_files(tmp_path: Path) -> set[str]:
    root = tmp_path / "data"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def test_a_fresh_workspace_restores_everything_from_the_cache_and_runs_no_command(
        tmp_path: Path, registry: Registry) -> None:
    release = make_release(tmp_path / "rel")
    cache = f"{registry.address}/team/cache"
    first = release.build(tmp_path / "ws1", "--all", "--cache", cache)
    assert first.returncode == 0, first.stdout + first.stderr
    ran = release.ran()
    assert sorted(ran) == ["a/image", "b/image", "tool", "user"]

    second = release.build(tmp_path / "ws2", "--all", "--cache", cache)

    assert second.returncode == 0, second.stdout + second.stderr
    assert release.ran() == ran, "a restore ran a build command"
    assert not (tmp_path / "ws2" / ".build" / "src" / "tools").exists(), "a restore checked the repository out"
    one, two = record(tmp_path / "ws1"), record(tmp_path / "ws2")
    assert two["status"] == "ok"
    for name, entry in two["artifacts"].items():
        assert entry["status"] == "restored", name
        assert entry["restored_from"].startswith(f"{cache}@sha256:"), name
        assert entry["files"] == one["artifacts"][name]["files"]
        assert [i["id"] for i in entry["images"]] == [i["id"] for i in one["artifacts"][name]["images"]]
    sums = (tmp_path / "ws2" / "dist" / "v1" / "SHA256SUMS").read_text()
    assert sums == (tmp_path / "ws1" / "dist" / "v1" / "SHA256SUMS").read_text()
    third = release.build(tmp_path / "ws2", "--all", "--cache", cache)  # now cached locally: no registry needed
    assert {e["status"] for e in record(tmp_path / "ws2")["artifacts"].values()} == {"cached"}, third.stdout


def test_a_damaged_blob_in_the_registry_is_refused_and_the_artifact_built_instead(
        tmp_path: Path, registry: Registry) -> None:
    release = make_release(tmp_path / "rel", images=False)
    cache = f"{registry.address}/cache"
    assert release.build(tmp_path / "ws1", "--all", "--cache", cache).returncode == 0
    tool = record(tmp_path / "ws1")["artifacts"]["tool"]["files"][0]
    blob = tmp_path / "data/docker/registry/v2/blobs/sha256" / tool["sha256"][:2] / tool["sha256"] / "data"
    good = blob.read_bytes()
    blob.write_bytes(good.replace(b"tool", b"evil"))  # same size, other bytes

    second = release.build(tmp_path / "ws2", "--all", "--cache", cache)

    assert second.returncode == 0, second.stdout + second.stderr
    assert "refused" in second.stderr and "tool" in second.stderr, second.stderr
    statuses = {name: e["status"] for name, e in record(tmp_path / "ws2")["artifacts"].items()}
    assert statuses == {"tool": "ok", "user": "restored", "lib": "restored"}
    built = (tmp_path / "ws2" / "dist/v1/bin/tool").read_bytes()
    assert hashlib.sha256(built).hexdigest() == tool["sha256"]
    assert not list((tmp_path / "ws2" / "dist/v1/bin").glob(".*")), "a temporary file of the refused restore was left"


def test_a_registry_that_goes_down_mid_build_costs_a_warning_and_a_local_build(
        tmp_path: Path, registry: Registry) -> None:
    release = make_release(tmp_path / "rel", images=False)
    proxy = FaultProxy(registry.address, down_after_manifests=1)
    try:
        result = release.build(tmp_path / "ws", "--all", "--cache", f"{proxy.address}/cache", "--jobs", "1")
    finally:
        proxy.close()

    assert result.returncode == 0, result.stdout + result.stderr
    assert record(tmp_path / "ws")["status"] == "ok"
    assert result.stderr.count("building locally without it") == 1, result.stderr
    assert sorted(release.ran()) == ["tool", "user"]


def test_a_read_only_cache_restores_and_writes_nothing(tmp_path: Path, registry: Registry) -> None:
    release = make_release(tmp_path / "rel", images=False)
    cache = f"{registry.address}/cache"
    empty = release.build(tmp_path / "ws0", "--all", "--cache", cache, "--cache-mode", "read")
    assert empty.returncode == 0, empty.stderr
    assert storage_files(tmp_path) == set(), "a read-only build wrote into the registry"

    assert release.build(tmp_path / "ws1", "--all", "--cache", cache).returncode == 0
    before = storage_files(tmp_path)
    read = release.build(tmp_path / "ws2", "--all", "--cache", cache, "--cache-mode", "read")

    assert read.returncode == 0, read.stderr
    assert {e["status"] for e in record(tmp_path / "ws2")["artifacts"].values()} == {"restored"}
    assert storage_files(tmp_path) == before


def test_credentials_come_from_the_docker_config_and_appear_nowhere(
        tmp_path: Path, auth_registry: Registry) -> None:
    assert auth_registry.password is not None
    release = make_release(tmp_path / "rel")
    config = docker_config_with(tmp_path, auth_registry)
    env = {"DOCKER_CONFIG": str(config)}
    cache = f"{auth_registry.address}/cache"
    first = release.build(tmp_path / "ws1", "--all", "--cache", cache, env=env)
    second = release.build(tmp_path / "ws2", "--all", "--cache", cache, env=env)
    (tmp_path / "wrong").mkdir()
    wrong = docker_config_with(tmp_path / "wrong", auth_registry, password="not-the-password")
    refused = release.build(tmp_path / "ws3", "--all", "--cache", cache, env={"DOCKER_CONFIG": str(wrong)})

    assert first.returncode == second.returncode == refused.returncode == 0, refused.stderr
    assert {e["status"] for e in record(tmp_path / "ws2")["artifacts"].values()} == {"restored"}
    assert "refused" in refused.stderr and f"docker login {auth_registry.address}" in refused.stderr
    assert {e["status"] for e in record(tmp_path / "ws3")["artifacts"].values()} == {"ok"}
    token = json.loads((config / "config.json").read_text())["auths"][auth_registry.address]["auth"]
    seen = [r.stdout + r.stderr for r in (first, second, refused)]
    for ws in ("ws1", "ws2", "ws3"):
        seen += [p.read_text(errors="replace") for p in (tmp_path / ws).rglob("*") if p.is_file()
                 and p.suffix in (".json", ".log", "")]
    for text in seen:
        assert auth_registry.password not in text and token not in text and "not-the-password" not in text


def test_a_required_cache_that_cannot_be_reached_fails_the_run(tmp_path: Path, registry: Registry) -> None:
    from tests.helpers.registry import free_port

    release = make_release(tmp_path / "rel", images=False)
    result = release.build(tmp_path / "ws", "--all", "--cache", f"127.0.0.1:{free_port()}/cache", "--require-cache")
    assert result.returncode == 1
    assert "cannot reach" in result.stdout + result.stderr
    assert release.ran() == []


def test_an_entry_for_another_artifact_or_with_files_its_kind_never_makes_is_refused(
        tmp_path: Path, registry: Registry) -> None:
    from orchestrator.ociclient import Client, json_bytes, parse_repository
    from orchestrator.remotecache import ENTRY_TYPE, FILE_TYPE, Entry, RemoteCache, entry_document

    release = make_release(tmp_path / "rel", images=False)
    cache = f"{registry.address}/cache"
    assert release.build(tmp_path / "ws1", "--all", "--cache", cache).returncode == 0
    keys = {name: e["cache_key"] for name, e in record(tmp_path / "ws1")["artifacts"].items()}
    client = Client(parse_repository(cache))
    writer = RemoteCache(client, release_dir=tmp_path, engine=None)
    # user's key now holds tool's entry (a mix-up, or someone's idea of a joke) ...
    tool_manifest, _ = client.get_manifest(keys["tool"]) or (b"", "")
    client.put_manifest(keys["user"], tool_manifest)
    # ... and tool's key an entry that would publish a file outside bin/.
    evil = b"not a binary\n"
    digest = "sha256:" + hashlib.sha256(evil).hexdigest()
    client.put_blob(digest, evil, len(evil))
    from orchestrator.outputs import FileRecord

    planted = FileRecord(path="src/tools-main.tar.gz", sha256=digest[7:], size=len(evil), mode=0o644)
    entry = Entry(artifact="tool", key=keys["tool"], files=(planted,), images=(), digests=(), duration=0.1)
    writer._put(keys["tool"], ENTRY_TYPE, json_bytes(entry_document(entry)),
                [{"mediaType": FILE_TYPE, "digest": digest, "size": len(evil)}])

    second = release.build(tmp_path / "ws2", "--all", "--cache", cache)

    assert second.returncode == 0, second.stdout + second.stderr
    statuses = {name: e["status"] for name, e in record(tmp_path / "ws2")["artifacts"].items()}
    assert statuses == {"tool": "ok", "user": "ok", "lib": "restored"}
    assert "it is the entry of tool" in second.stderr and "outside bin/" in second.stderr, second.stderr
    assert (tmp_path / "ws2/dist/v1/src/tools-main.tar.gz").read_bytes() != evil


def test_two_writers_of_the_same_keys_at_once_leave_entries_a_third_restores(
        tmp_path: Path, registry: Registry) -> None:
    release = make_release(tmp_path / "rel", images=False)
    cache = f"{registry.address}/cache"
    writers = [release.popen(tmp_path / f"ws{i}", "--all", "--cache", cache, env={}) for i in (1, 2)]
    outputs = [w.communicate(timeout=600) for w in writers]
    assert [w.returncode for w in writers] == [0, 0], outputs

    third = release.build(tmp_path / "ws3", "--all", "--cache", cache)

    assert third.returncode == 0, third.stderr
    assert {e["status"] for e in record(tmp_path / "ws3")["artifacts"].values()} == {"restored"}
    assert (tmp_path / "ws3/dist/v1/SHA256SUMS").read_text() == (tmp_path / "ws1/dist/v1/SHA256SUMS").read_text()
