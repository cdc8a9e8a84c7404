"""Executing plans: order, staging, parallelism, failures, interruption, the record.

Sources are plain directories (no git needed) and Docker is the hand-written fake.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest

from orchestrator.engine.dockerpy import Engine
from orchestrator.errors import Interrupted
from orchestrator.execute import Event, Options, execute
from orchestrator.manifest import Manifest, loads
from orchestrator.outputs import Source
from orchestrator.plan import make_plan
from orchestrator.report import write_release
from tests.helpers.fake_docker import ContainerScript, FakeDockerClient

COMMIT = "1" * 40


def manifest(repos: str) -> Manifest:
    return loads("schema: 1\nrelease: v9\ndefaults: {network: none, env: {ARCH: amd64}}\nrepos:\n"
                 + textwrap.indent(textwrap.dedent(repos), "  "))


def sources_for(m: Manifest, root: Path, files: dict[str, dict[str, str]] | None = None) -> dict[str, Source]:
    result = {}
    for name in m.repos:
        path = root / "src" / name
        path.mkdir(parents=True, exist_ok=True)
        for rel, text in (files or {}).get(name, {}).items():
            (path / rel).parent.mkdir(parents=True, exist_ok=True)
            (path / rel).write_text(text)
        result[name] = Source(repo=name, url=f"file:///up/{name}", ref="v1", commit=COMMIT,
                              commit_time=1_534_204_800, path=path)
    return result


def options(root: Path, **kw: object) -> Options:
    return Options(log_dir=root / "logs", release_dir=root / "dist" / "v9", **kw)  # type: ignore[arg-type]


def binary(name: str, command: str, output: str, extra: str = "") -> str:
    return f"""
    {name}:
      type: binary
      command: '{command}'
      outputs: [{output}]{extra}
    """


STAGED = """
felix:
  url: file:///up/felix
  ref: v1
  artifacts:
    felix:
      type: binary
      command: mkdir -p bin && printf 'felix %s' "$RELEASE" > bin/calico-felix
      outputs: [bin/calico-felix]
node:
  url: file:///up/node
  ref: v1
  artifacts:
    calico/node:
      type: image
      stage: {bin/calico-felix: felix}
"""


def test_staged_binary_is_built_first_and_copied_into_the_image_context(tmp_path: Path) -> None:
    m = manifest(STAGED)
    src = sources_for(m, tmp_path, {"node": {"Dockerfile": "FROM scratch\nCOPY bin/calico-felix /bin/\n"}})
    client = FakeDockerClient()
    results = execute(make_plan(m, ["calico/node"]), m, src, options(tmp_path), engine=Engine(client))
    assert [r.status for r in results.values()] == ["ok", "ok"]
    assert list(results) == ["felix", "calico/node"]
    assert (src["node"].path / "bin/calico-felix").read_text() == "felix v9"
    (build,) = client.calls_to("api.build")
    assert build["network_mode"] == "none"
    assert build["labels"]["org.opencontainers.image.revision"] == COMMIT
    assert build["labels"]["org.opencontainers.image.created"] == "2018-08-14T00:00:00Z"
    image = results["calico/node"].output.images[0]
    assert image.refs == ("calico/node:v9",) and image.id.startswith("sha256:")


def test_a_missing_declared_output_fails_the_artifact_naming_the_path(tmp_path: Path) -> None:
    m = manifest("a:\n  url: file:///a\n  ref: v1\n  artifacts:" + binary("a", "true", "bin/a"))
    results = execute(make_plan(m, ["a"]), m, sources_for(m, tmp_path), options(tmp_path))
    assert results["a"].status == "failed"
    assert "declared output 'bin/a' does not exist" in (results["a"].error or "")


def test_failed_command_reports_exit_code_and_log_tail(tmp_path: Path) -> None:
    m = manifest("a:\n  url: file:///a\n  ref: v1\n  artifacts:" + binary("a", "echo compiling; echo boom >&2; exit 3",
                                                                        "bin/a"))
    results = execute(make_plan(m, ["a"]), m, sources_for(m, tmp_path), options(tmp_path))
    error = results["a"].error or ""
    assert "exit code 3" in error and "    boom" in error
    assert "boom" in (tmp_path / "logs" / "a.log").read_text()


KEEP_GOING = """
bad:
  url: file:///bad
  ref: v1
  artifacts:
    bad:
      type: binary
      command: exit 1
      outputs: [x]
    after-bad:
      type: binary
      command: touch y
      outputs: [y]
      requires: [bad]
good:
  url: file:///good
  ref: v1
  artifacts:
    good:
      type: binary
      command: touch z
      outputs: [z]
"""


def test_keep_going_builds_everything_independent_and_skips_dependents_saying_why(tmp_path: Path) -> None:
    m = manifest(KEEP_GOING)
    results = execute(make_plan(m, everything=True), m, sources_for(m, tmp_path), options(tmp_path, keep_going=True))
    assert {n: r.status for n, r in results.items()} == {"bad": "failed", "after-bad": "skipped", "good": "ok"}
    assert results["after-bad"].error == "skipped: dependency bad failed"


def test_without_keep_going_no_new_work_starts_after_a_failure(tmp_path: Path) -> None:
    m = manifest(KEEP_GOING)
    results = execute(make_plan(m, everything=True), m, sources_for(m, tmp_path), options(tmp_path, jobs=1))
    assert results["bad"].status == "failed"
    assert results["good"].status == "not-started"
    assert "stopped after bad failed" in (results["good"].error or "")
    assert not (tmp_path / "dist" / "v9" / "bin" / "z").exists()


def test_independent_repos_build_in_parallel(tmp_path: Path) -> None:
    # Each command waits (bounded) for the other's marker: only parallel runs succeed.
    wait_for = "touch ../{me}.started; i=0; while [ ! -e ../{other}.started ] && [ $i -lt 100 ]; do sleep 0.1; " \
               "i=$((i+1)); done; [ -e ../{other}.started ] && touch out-{me}"
    text = "".join(
        f"{me}:\n  url: file:///{me}\n  ref: v1\n  artifacts:\n    {me}:\n      type: binary\n"
        f"      command: '{wait_for.format(me=me, other=other)}'\n      outputs: [out-{me}]\n"
        for me, other in (("a", "b"), ("b", "a"))
    )
    m = manifest(text)
    results = execute(make_plan(m, everything=True), m, sources_for(m, tmp_path), options(tmp_path, jobs=2))
    assert {r.status for r in results.values()} == {"ok"}


def test_artifacts_of_one_repo_never_run_at_once_in_its_shared_checkout(tmp_path: Path) -> None:
    guard = "mkdir busy || exit 9; sleep 0.3; rmdir busy; touch {out}"
    m = manifest("r:\n  url: file:///r\n  ref: v1\n  artifacts:"
                 + binary("one", guard.format(out="one"), "one") + binary("two", guard.format(out="two"), "two"))
    results = execute(make_plan(m, ["r"]), m, sources_for(m, tmp_path), options(tmp_path, jobs=2))
    assert {r.status for r in results.values()} == {"ok"}


def test_commands_get_an_explicit_environment_without_stray_variables(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAINER_NAME", "leaked")
    m = manifest("a:\n  url: file:///a\n  ref: v1\n  artifacts:" + binary("a", "env > env.txt", "env.txt"))
    execute(make_plan(m, ["a"]), m, sources_for(m, tmp_path), options(tmp_path))
    env = dict(line.split("=", 1) for line in (tmp_path / "src/a/env.txt").read_text().splitlines() if "=" in line)
    assert "CONTAINER_NAME" not in env
    assert env["RELEASE"] == "v9" and env["GIT_COMMIT"] == COMMIT and env["ARCH"] == "amd64"
    assert env["SOURCE_DATE_EPOCH"] == "1534204800" and "PATH" in env


def test_ctrl_c_stops_running_commands_and_publishes_nothing(tmp_path: Path) -> None:
    m = manifest("a:\n  url: file:///a\n  ref: v1\n  artifacts:" + binary("a", "sleep 30; touch late", "late"))
    src = sources_for(m, tmp_path)

    def interrupt_when_running(event: Event) -> None:
        if event.state == "running":
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as caught:
        execute(make_plan(m, ["a"]), m, src, options(tmp_path), on_event=interrupt_when_running)
    assert caught.value.exit_code == 130
    assert not (src["a"].path / "late").exists()
    assert not (tmp_path / "dist" / "v9" / "bin").exists()
    assert subprocess.run(["pgrep", "-f", "sleep 30; touch late"], capture_output=True).returncode == 1


def test_ctrl_c_stops_host_commands_builder_containers_and_their_stubborn_children_alike(tmp_path: Path) -> None:
    word = f"mark{tmp_path.name}{id(tmp_path)}"
    m = manifest(f"""
    host:
      url: file:///host
      ref: v1
      artifacts:
        host:
          type: binary
          command: (trap '' TERM; while :; do sleep 0.1; done; echo {word}) & echo started; wait
          outputs: [x]
    boxed:
      url: file:///boxed
      ref: v1
      artifacts:
        boxed:
          type: binary
          builder: orchestrator-test/busybox:1
          command: sleep 600
          outputs: [y]
    """)
    client = FakeDockerClient()
    client.add_image("orchestrator-test/busybox:1")
    client.script_container("orchestrator-test/busybox:1", ContainerScript(duration=600))
    src = sources_for(m, tmp_path)

    returned, rescued = threading.Event(), threading.Event()

    def ctrl_c_once_both_run() -> None:  # a real SIGINT to the main thread, as a terminal sends
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (client.calls_to("container.start") and pgrep(word)):
            time.sleep(0.05)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        if not returned.wait(60):  # a safety bound: a hung stop is a failure, not a hung suite
            rescued.set()
            for pid in pgrep(word):
                os.kill(int(pid), signal.SIGKILL)

    threading.Thread(target=ctrl_c_once_both_run, daemon=True).start()
    try:
        with pytest.raises(Interrupted):
            execute(make_plan(m, everything=True), m, src, options(tmp_path, jobs=2), engine=Engine(client))
    finally:
        returned.set()

    assert not rescued.is_set(), "the stop hung until the test killed the command's child"
    assert pgrep(word) == [], "the child that ignored SIGTERM is gone"
    assert len(client.calls_to("container.start")) == 1
    assert client.calls_to("container.kill") and client.calls_to("container.remove")
    assert client.containers.list(all=True) == []


def pgrep(word: str) -> list[str]:
    return subprocess.run(["pgrep", "-f", word], capture_output=True, text=True).stdout.split()


def test_release_record_and_sha256sums_verify_with_sha256sum(tmp_path: Path) -> None:
    m = manifest(KEEP_GOING)
    src = sources_for(m, tmp_path)
    opts = options(tmp_path, keep_going=True)
    results = execute(make_plan(m, everything=True), m, src, opts)
    record = write_release(m, src, results, release_dir=opts.release_dir, workspace=tmp_path, started=0)
    assert record.status == "failed"
    assert record.artifacts["good"].files[0].path == "bin/z"
    assert record.repos["good"].commit == COMMIT
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=opts.release_dir, capture_output=True, text=True)
    assert check.returncode == 0 and "bin/z: OK" in check.stdout
    on_disk = json.loads((opts.release_dir / "release.json").read_text())
    assert on_disk["artifacts"]["bad"]["status"] == "failed" and on_disk["artifacts"]["bad"]["log"]
    assert not list(opts.release_dir.rglob(".*tmp*"))
