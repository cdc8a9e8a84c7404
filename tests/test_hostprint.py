"""A host command's cache key holds what it depends on that the manifest cannot say."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator import hostprint
from orchestrator.cache import cache_key
from orchestrator.manifest import loads


@pytest.mark.parametrize(("command", "expected"), [
    ("make bin/calico-felix", ["sh", "make"]),
    ("CGO_ENABLED=0 go build ./... && strip bin/x", ["sh", "go", "strip"]),
    ("cd sub; ./build.sh | tee log\npython3 -m build", ["sh", "./build.sh", "tee", "python3"]),
    ("if true; then gcc -o x x.c; fi", ["sh", "gcc"]),
    (("python3", "-m", "build"), ["python3"]),
    ("echo $CC; $CC -o x x.c", ["sh"]),
])
def test_the_programs_a_recipe_names_are_found(command: str | tuple[str, ...], expected: list[str]) -> None:
    assert hostprint.programs(command) == expected


def tool(directory: Path, name: str, body: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(f"#!/bin/sh\n{body}\n")
    (directory / name).chmod(0o755)


def test_the_fingerprint_changes_with_the_program_not_with_its_path(tmp_path: Path) -> None:
    tool(tmp_path / "a", "mytool", "echo 1")
    tool(tmp_path / "b", "mytool", "echo 1")
    tool(tmp_path / "c", "mytool", "echo 2")
    path = os.environ["PATH"]
    one = hostprint.fingerprint("mytool build", f"{tmp_path / 'a'}:{path}")
    same = hostprint.fingerprint("mytool build", f"{tmp_path / 'b'}:{path}")
    other = hostprint.fingerprint("mytool build", f"{tmp_path / 'c'}:{path}")
    assert one == same, "the same program elsewhere on PATH"
    assert one != other and one["programs"]["mytool"] != other["programs"]["mytool"]
    assert one["os"] and one["machine"]
    missing = hostprint.fingerprint("no-such-tool-here x", path)
    assert missing["programs"]["no-such-tool-here"] is None


def test_a_host_command_gets_a_host_fingerprint_in_its_key_and_a_builder_command_does_not() -> None:
    text = """\
schema: 1
release: v1
repos:
  app:
    url: file:///up/app
    ref: v1
    artifacts:
      app:
        type: binary
        command: make
        outputs: [app]
"""
    manifest = loads(text)
    artifact = manifest.artifacts["app"]
    keys = {cache_key(manifest, artifact, commit="0" * 40, dependency_keys={}, builder_id=None, host=host)
            for host in (None, {"os": "Linux"}, {"os": "Darwin"})}
    assert len(keys) == 3
    from orchestrator import kinds

    assert kinds.get("binary").host_command(artifact) == "make"
    in_builder = loads(text.replace("command: make", "command: make\n        builder: busybox:1"))
    assert kinds.get("binary").host_command(in_builder.artifacts["app"]) is None
