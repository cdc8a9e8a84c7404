"""lock_text/lock_file: set repos.<name>.commit and change nothing else."""

from __future__ import annotations

import difflib
import stat
from pathlib import Path

import pytest
import yaml

from orchestrator.errors import InputError, ManifestError
from orchestrator.lock import lock_file, lock_text

A = "30458090588d14445f4b16b5b80e6db80dbffc33"
B = "c158322b29d702b69b1d56cc08bb2b4357ac3762"
C = "cac4ce6d0f2f1fdcaac2dcbe613374465cfd4953"

MANIFEST = f"""\
# Calico v3.2.0: which repository, at which commit.
schema: 1
release: v3.2.0

repos:
  felix:
    url: https://github.com/projectcalico/felix.git
    ref: v3.2.0             # annotated tag
    commit: {"0" * 40}  # stale pin
    description: Felix, the per-host policy agent.

  calicoctl:
    # only on branch release-v3.2
    url: https://github.com/projectcalico/calicoctl.git
    ref: v3.2.0
    description: The Calico command line tool.
    artifacts:
      calicoctl:
        type: binary
        command: make bin/calicoctl

  libcalico-go:
      url: https://github.com/projectcalico/libcalico-go.git
      ref: release-v3.2     # versioned by branch
      commit:
      description: no tag for v3.2
"""


def _changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_lock_text_sets_each_commit_and_changes_no_other_line() -> None:
    locked = lock_text(MANIFEST, {"felix": A, "calicoctl": B, "libcalico-go": C})

    assert _changed_lines(MANIFEST, locked) == [
        f"-    commit: {'0' * 40}  # stale pin",
        f"+    commit: {A}  # stale pin",
        f"+    commit: {B}",
        "-      commit:",
        f"+      commit: {C}",
    ]
    loaded = yaml.safe_load(locked)
    assert {name: repo["commit"] for name, repo in loaded["repos"].items()} == {
        "felix": A,
        "calicoctl": B,
        "libcalico-go": C,
    }


def test_inserted_commit_line_follows_ref_at_its_indentation() -> None:
    locked = lock_text(MANIFEST, {"calicoctl": B})

    lines = locked.splitlines()
    ref = lines.index("    ref: v3.2.0")
    assert lines[ref + 1] == f"    commit: {B}"
    assert lines[ref + 2] == "    description: The Calico command line tool."


def test_locking_twice_changes_nothing_the_second_time() -> None:
    once = lock_text(MANIFEST, {"felix": A, "calicoctl": B})

    assert lock_text(once, {"felix": A, "calicoctl": B}) == once


def test_commit_that_yaml_would_read_as_a_number_is_quoted() -> None:
    digits = "1" * 40

    locked = lock_text(MANIFEST, {"calicoctl": digits})

    assert f'    commit: "{digits}"' in locked.splitlines()
    assert yaml.safe_load(locked)["repos"]["calicoctl"]["commit"] == digits


def test_flow_style_repo_is_refused_with_its_location() -> None:
    text = "repos:\n  felix: {url: https://x/felix.git, ref: v1}\n"

    with pytest.raises(ManifestError) as caught:
        lock_text(text, {"felix": A}, source="manifest.yaml")

    assert str(caught.value) == (
        "manifest.yaml:2:10: repos.felix: is a flow-style mapping ({...}), which cannot be edited in place; "
        "rewrite it in block style, one key per line"
    )


@pytest.mark.parametrize(
    ("text", "commits", "fragment"),
    [
        (MANIFEST, {"typha": A}, "repos.typha: not found"),
        ("release: x\n", {"felix": A}, "repos: not found"),
        ("repos:\n  felix:\n    url: x\n", {"felix": A}, "has no ref: to put commit: after"),
        ("repos: [felix]\n", {"felix": A}, "repos: is not a mapping"),
        ("repos:\n  felix:\n    ref: a\n    ref: b\n", {"felix": A}, "repos.felix.ref: is given twice"),
        ("repos: {\n", {"felix": A}, "invalid YAML"),
    ],
)
def test_manifest_that_cannot_be_locked_is_refused_clearly(text: str, commits: dict[str, str], fragment: str) -> None:
    with pytest.raises(ManifestError) as caught:
        lock_text(text, commits)

    assert fragment in str(caught.value)


def test_malformed_commit_is_refused() -> None:
    with pytest.raises(InputError, match="not a 40-hex commit id"):
        lock_text(MANIFEST, {"felix": "abc1234"})


def test_lock_file_replaces_the_file_atomically_and_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "manifest.yaml"
    path.write_text(MANIFEST)
    path.chmod(0o640)

    assert lock_file(path, {"calicoctl": B}) is True

    assert path.read_text() == lock_text(MANIFEST, {"calicoctl": B})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.yaml"]


def test_lock_file_leaves_an_already_locked_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "manifest.yaml"
    path.write_text(lock_text(MANIFEST, {"felix": A}))
    before = path.stat().st_mtime_ns

    assert lock_file(path, {"felix": A}) is False
    assert path.stat().st_mtime_ns == before


def test_lock_file_keeps_crlf_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "manifest.yaml"
    path.write_bytes(MANIFEST.replace("\n", "\r\n").encode())

    lock_file(path, {"calicoctl": B, "felix": A})

    data = path.read_bytes()
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert f"    commit: {B}\r\n".encode() in data


def test_failed_lock_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "manifest.yaml"
    path.write_text(MANIFEST)

    with pytest.raises(ManifestError):
        lock_file(path, {"felix": A, "typha": B})

    assert path.read_text() == MANIFEST
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.yaml"]
