"""Sharded builds and the assemble step, on real engines and a real registry: two shards on
two Docker engines give, once assembled in a third workspace, the very files of a
single-machine build; a killed shard leaves nothing an assemble would take as complete;
a dependency another shard never builds is waited for with a bound, then named."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from orchestrator.sharding import assign
from tests.helpers.cli import run_cli
from tests.helpers.faultproxy import FaultProxy
from tests.helpers.registry import Registry
from tests.helpers.second_engine import SecondEngine
from tests.helpers.shared_release import make_release, record

pytestmark = pytest.mark.docker


def files_of(workspace: Path) -> dict[str, bytes]:
    root = workspace / "dist" / "v1"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in ("release.json", "provenance.json")}


def test_two_shards_on_two_engines_then_an_assemble_give_the_single_machine_release(
        tmp_path: Path, registry: Registry, second_engine: SecondEngine) -> None:
    release = make_release(tmp_path / "rel")
    names = ["tool", "user", "a/image", "b/image", "lib"]
    shares = assign(names, {}, 2)
    assert {"a/image", "b/image"} - set(shares[0]) and {"a/image", "b/image"} - set(shares[1]), shares
    single = release.build(tmp_path / "single", "--all")
    assert single.returncode == 0, single.stdout + single.stderr
    cache = f"{registry.address}/shared"
    # Both at once, as CI runs them: shard 2 on the second engine, waiting for what shard 1 builds.
    one = release.popen(tmp_path / "shard1", "--all", "--cache", cache, "--shard", "1/2", env={})
    two = release.popen(tmp_path / "shard2", "--all", "--cache", cache, "--shard", "2/2",
                        env={"DOCKER_HOST": second_engine.host})
    out_one, out_two = one.communicate(timeout=600), two.communicate(timeout=600)
    assert (one.returncode, two.returncode) == (0, 0), out_one + out_two
    for index, workspace in ((1, "shard1"), (2, "shard2")):
        partial = record(tmp_path / workspace)
        assert (partial["status"], partial["shard"]) == ("partial", f"{index}/2")
        built = {name for name, e in partial["artifacts"].items() if e["status"] == "ok"}
        assert built == set(shares[index - 1])
    verify_partial = run_cli("verify", "--offline", "-m", str(release.manifest), "-w", str(tmp_path / "shard1"),
                             program="orchestrator", cwd=tmp_path, env={"XDG_CACHE_HOME": str(release.root / "xdg")})
    assert verify_partial.returncode == 1 and "partial" in verify_partial.stdout

    ran = release.ran()
    assembled = release.build(tmp_path / "assembled", "--all", "--cache", cache, "--assemble")

    assert assembled.returncode == 0, assembled.stdout + assembled.stderr
    assert release.ran() == ran, "the assemble step ran a command"
    whole = record(tmp_path / "assembled")
    assert whole["status"] == "ok" and "shard" not in whole
    assert {e["status"] for e in whole["artifacts"].values()} == {"restored"}
    assert files_of(tmp_path / "assembled") == files_of(tmp_path / "single")
    verify = run_cli("verify", "--offline", "--skip", "signature", "-m", str(release.manifest),
                     "-w", str(tmp_path / "assembled"), program="orchestrator", cwd=tmp_path,
                     env={"XDG_CACHE_HOME": str(release.root / "xdg")})
    assert verify.returncode == 0, verify.stdout + verify.stderr
    from orchestrator.ociclient import Client, parse_repository
    from orchestrator.remotecache import RemoteCache

    timings = RemoteCache(Client(parse_repository(cache)), release_dir=tmp_path, engine=None).timings()
    assert set(timings) == set(names), "the assemble did not store the build seconds for the next split"
    published = run_cli("publish", "--all", "-m", str(release.manifest), "-w", str(tmp_path / "assembled"),
                        "-r", f"{registry.address}/", program="orchestrator", cwd=tmp_path,
                        env={"XDG_CACHE_HOME": str(release.root / "xdg")})
    assert published.returncode == 0, published.stdout + published.stderr


def test_a_shard_killed_while_storing_leaves_nothing_an_assemble_takes_as_complete(
        tmp_path: Path, registry: Registry) -> None:
    release = make_release(tmp_path / "rel", chain=True)
    proxy = FaultProxy(registry.address, stall_manifests=True)
    try:
        shard = release.popen(tmp_path / "shard1", "--all", "--cache", f"{proxy.address}/shared", "--shard", "1/2",
                              env={})
        assert proxy.stalled.wait(120), "the shard never stored its entry"
        shard.send_signal(signal.SIGKILL)
        shard.communicate(timeout=60)
    finally:
        proxy.close()
    assert release.ran() == ["a-tool"]
    blob_uploads = [r for r in proxy.requests if r.startswith("PUT") and "/blobs/uploads/" in r]
    assert blob_uploads, "the file's blob never reached the registry: the kill came too early to test anything"

    assembled = release.build(tmp_path / "assembled", "--all", "--cache", f"{registry.address}/shared",
                              "--assemble")

    assert assembled.returncode == 1
    assert "2 artifact(s) are not in the cache" in assembled.stderr and "a-tool, b-user" in assembled.stderr
    assert record(tmp_path / "assembled")["status"] != "ok"
    assert not (tmp_path / "assembled" / "dist/v1/bin/tool").exists()


def test_a_dependency_no_other_shard_builds_is_waited_for_then_named(tmp_path: Path, registry: Registry) -> None:
    release = make_release(tmp_path / "rel", chain=True, dep_timeout="3s")
    cache = f"{registry.address}/shared"
    started = time.monotonic()
    waited = release.build(tmp_path / "shard2", "--all", "--cache", cache, "--shard", "2/2")
    took = time.monotonic() - started

    assert waited.returncode == 1
    assert "waited 3s for another shard to build a-tool" in waited.stdout, waited.stdout
    assert "--shard-deps build" in waited.stdout
    assert took < 120
    assert release.ran() == []

    built = release.build(tmp_path / "shard2b", "--all", "--cache", cache, "--shard", "2/2", "--shard-deps", "build")
    assert built.returncode == 0, built.stdout + built.stderr
    assert release.ran() == ["a-tool", "b-user"]
    assert record(tmp_path / "shard2b")["status"] == "partial"
