"""The pure parts of sharing a build: the shard split, the settings and their refusals,
the partial record, the cache entry's strict reader, cache references and credentials."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from orchestrator import record
from orchestrator.errors import InputError
from orchestrator.ociclient import docker_credentials, repository_problem
from orchestrator.plan import make_plan
from orchestrator.recordfields import ReleaseRecordError
from orchestrator.remotecache import parse_entry
from orchestrator.settings import load_settings, sharing_problem
from orchestrator.sharding import assign, shard_plan, wait_bounds
from tests.helpers.cli import run_cli

NAMES = [f"art{i:02d}" for i in range(40)]


def test_the_split_is_the_same_everywhere_and_gives_each_artifact_to_one_shard() -> None:
    for count in (1, 2, 3, 7, 40, 41):
        shares = assign(NAMES, {}, count)
        assert shares == assign(list(reversed(NAMES))[::-1], {}, count)
        assert sorted(name for share in shares for name in share) == NAMES
        sizes = [len(share) for share in shares]
        assert max(sizes) - min(sizes) <= 1, "by count when there are no durations"


def test_durations_balance_the_shares_and_a_new_artifact_weighs_the_median() -> None:
    durations = {"big": 100.0, "a": 10.0, "b": 10.0, "c": 10.0, "d": 10.0, "e": 10.0}
    shares = assign(["a", "b", "big", "c", "d", "e"], durations, 2)
    assert shares[0] == ("big",) and set(shares[1]) == {"a", "b", "c", "d", "e"}
    with_new = assign(["a", "b", "big", "new"], {"a": 1.0, "b": 3.0, "big": 50.0}, 2)
    assert with_new[0] == ("big",)


def test_a_shard_plan_holds_its_share_and_what_the_share_needs(tmp_path: Path) -> None:
    from orchestrator.manifest import load

    manifest = tmp_path / "m.yaml"
    manifest.write_text("""schema: 1
release: v1
repos:
  r:
    url: file:///nowhere/r
    ref: main
    artifacts:
      a: {type: binary, command: "true", outputs: [a], timeout: 30s}
      b: {type: binary, command: "true", outputs: [b], requires: [a], timeout: 1m}
      c: {type: binary, command: "true", outputs: [c], requires: [b]}
      d: {type: library}
""")
    loaded = load(manifest)
    plan = make_plan(loaded, everything=True)
    covered: set[str] = set()
    for index in (1, 2):
        sub, share = shard_plan(loaded, plan, {}, index, 2)
        assert set(share) <= set(sub.artifacts)
        for step in sub.steps:
            assert set(step.dependencies) <= set(sub.artifacts)
            assert step.requested == (step.artifact in share)
        covered |= set(share)
    assert covered == {"a", "b", "c", "d"}
    assert wait_bounds(loaded, ["b"]) == {"b": 90.0}


@pytest.mark.parametrize(("env", "expected"), [
    ({"ORCHESTRATOR_CACHE": "127.0.0.1:5000/c", "ORCHESTRATOR_SHARD": "2/3", "ORCHESTRATOR_SHARD_DEPS": "build",
      "ORCHESTRATOR_CACHE_MODE": "read", "ORCHESTRATOR_REQUIRE_CACHE": "1", "ORCHESTRATOR_ASSEMBLE": "true"},
     ("127.0.0.1:5000/c", (2, 3), "build", "read", True, True)),
    ({}, (None, None, "wait", "readwrite", False, False)),
])
def test_the_sharing_settings_come_from_the_environment(env: dict[str, str], expected: tuple[object, ...],
                                                        tmp_path: Path) -> None:
    s = load_settings(env=env, cwd=tmp_path)
    assert (s.cache, s.shard, s.shard_deps, s.cache_mode, s.require_cache, s.assemble) == expected


def test_the_sharing_settings_come_from_the_config_file_located(tmp_path: Path) -> None:
    (tmp_path / "orchestrator.yaml").write_text("cache: registry.example.com/team/cache\nshard: 1/4\n"
                                                "cache_mode: read\n")
    s = load_settings(env={}, cwd=tmp_path)
    assert (s.cache, s.shard, s.cache_mode) == ("registry.example.com/team/cache", (1, 4), "read")
    (tmp_path / "orchestrator.yaml").write_text("jobs: 2\nshard: 5/4\n")
    with pytest.raises(InputError, match=r"orchestrator.yaml:2:8: shard: expected K/N"):
        load_settings(env={}, cwd=tmp_path)


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"shard": (1, 2)}, "--shard needs a remote cache"),
    ({"assemble": True}, "--assemble needs a remote cache"),
    ({"require_cache": True}, "--require-cache needs a remote cache"),
    ({"cache": "h.io/c", "shard": (1, 2), "assemble": True}, "contradict"),
    ({"cache": "h.io/c", "shard": (1, 2), "cache_mode": "read"}, "needs --cache-mode readwrite"),
])
def test_contradicting_sharing_settings_are_refused(overrides: dict[str, object], problem: str,
                                                    tmp_path: Path) -> None:
    found = sharing_problem(load_settings(overrides, env={}, cwd=tmp_path))
    assert found is not None and problem in found


@pytest.mark.parametrize(("args", "message"), [
    (["--shard", "0/2", "--cache", "h.io/c"], "--shard: expected K/N"),
    (["--shard", "x", "--cache", "h.io/c"], "--shard: expected K/N"),
    (["--cache", "https://h.io/c"], "without a scheme"),
    (["--cache", "h.io/c@sha256:" + "0" * 64], "without a tag or digest"),
    (["--cache", "h.io/Upper"], "lower-case path"),
    (["--cache-mode", "write", "--cache", "h.io/c"], "--cache-mode: expected read or readwrite"),
    (["--shard-deps", "pull", "--cache", "h.io/c"], "--shard-deps: expected wait or build"),
    (["--assemble"], "--assemble needs a remote cache"),
])
def test_bad_sharing_flags_exit_2_with_one_message(args: list[str], message: str, tmp_path: Path) -> None:
    result = run_cli("build", "--all", *args, "--workspace", str(tmp_path), program="orchestrator", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("ref", "ok"), [
    ("127.0.0.1:5000/cache", True), ("localhost:5000/a/b", True), ("registry.example.com/team/release-cache", True),
    ("ghcr.io/org/cache", True), ("cache", False), ("team/cache", False), ("h.io/", False), ("h.io/a:b", False),
])
def test_cache_references_name_a_repository_on_a_registry(ref: str, ok: bool) -> None:
    assert (repository_problem(ref) is None) == ok


def test_docker_config_credentials_are_found_for_the_registry_host(tmp_path: Path) -> None:
    token = base64.b64encode(b"ci:pw").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {
        "https://other.example/": {"auth": "eA=="}, "127.0.0.1:5000": {"auth": token},
        "h.io": {"username": "u", "password": "p"}}}))
    env = {"DOCKER_CONFIG": str(tmp_path)}
    assert docker_credentials("127.0.0.1:5000", env) == token
    assert docker_credentials("h.io", env) == base64.b64encode(b"u:p").decode()
    assert docker_credentials("nowhere.io", env) is None
    assert docker_credentials("h.io", {"DOCKER_CONFIG": str(tmp_path / "missing")}) is None


def test_a_partial_record_round_trips_and_never_reads_as_ok() -> None:
    release = record.Release(release="v1", status="partial", shard="1/2",
                             manifest=record.ManifestEntry(path="m.yaml", sha256="0" * 64),
                             started="2026-01-01T00:00:00Z", finished="2026-01-01T00:00:00Z", orchestrator="0",
                             artifacts={"a": record.ArtifactEntry(repo="r", type="library", status="restored",
                                                                  restored_from="h.io/c@sha256:" + "1" * 64)})
    again = record.parse_bytes(record.encode(release), "release.json")
    assert again == release
    data = json.loads(record.encode(release))
    data["shard"] = "0/2"
    with pytest.raises(ReleaseRecordError, match="shard: expected K/N"):
        record.parse_bytes(json.dumps(data).encode(), "release.json")


@pytest.mark.parametrize(("change", "message"), [
    ({"format": 2}, "format: expected 1"),
    ({"key": "abc"}, "key: expected 64 hex digits"),
    ({"files": [{"path": "../etc/passwd", "sha256": "0" * 64, "size": 1, "mode": 420}]}, "files[0].path"),
    ({"images": [{"id": "sha256:" + "0" * 64, "refs": ["a:b"], "labels": {}, "digest": "md5:x"}]},
     "images[0].digest"),
    ({"duration": "long"}, "duration"),
    ({"extra": 1}, "extra: unknown field"),
])
def test_a_cache_entry_is_read_strictly(change: dict[str, object], message: str) -> None:
    entry = {"format": 1, "artifact": "a", "key": "f" * 64, "files": [], "images": [], "duration": 1.5, **change}
    with pytest.raises(ReleaseRecordError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_entry(json.dumps(entry).encode(), "entry")
