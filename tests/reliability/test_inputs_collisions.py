"""Two artifacts never share a file: not a log, not a cache record, not a published file.

Artifact names may contain '/', and the one mapping from a name to a file name
(``model.file_stem``) must keep ``a/b`` and ``a_b`` apart. Collisions in
``dist/<release>/`` are refused at validation (tests/data/manifests/invalid_*).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cache import LocalCache
from orchestrator.execute import Options, Result, execute
from orchestrator.kinds import library
from orchestrator.manifest import loads
from orchestrator.model import file_stem
from orchestrator.outputs import Source
from orchestrator.plan import make_plan
from orchestrator.schema import ARTIFACT_NAME_RE

TEXT = """schema: 1
release: v1
defaults: {network: none}
repos:
  tools:
    url: file:///up/tools
    ref: v1
    artifacts:
      a/b:
        type: binary
        command: echo slash-artifact-ran && echo one > one
        outputs: [one]
      a_b:
        type: binary
        command: echo underscore-artifact-ran && echo two > two
        outputs: [two]
"""


def _build(root: Path) -> dict[str, Result]:
    manifest = loads(TEXT)
    (root / "src" / "tools").mkdir(parents=True, exist_ok=True)
    sources = {"tools": Source(repo="tools", url="file:///up/tools", ref="v1", commit="1" * 40, commit_time=0,
                               path=root / "src" / "tools")}
    options = Options(log_dir=root / "logs", release_dir=root / "dist")
    return execute(make_plan(manifest, everything=True), manifest, sources, options,
                   cache=LocalCache(root / "state", release_dir=root / "dist", engine=None))


def test_artifacts_a_slash_b_and_a_underscore_b_keep_their_own_log_and_cache_record(tmp_path: Path) -> None:
    first = _build(tmp_path)
    assert {name: r.status for name, r in first.items()} == {"a/b": "ok", "a_b": "ok"}
    slash_log, underscore_log = first["a/b"].log, first["a_b"].log
    assert slash_log is not None and underscore_log is not None and slash_log != underscore_log
    assert "slash-artifact-ran" in slash_log.read_text() and "underscore" not in slash_log.read_text()
    assert "underscore-artifact-ran" in underscore_log.read_text() and "slash" not in underscore_log.read_text()

    second = _build(tmp_path)

    # A shared cache record would hold only the last one's key: the other would rebuild.
    assert {name: r.status for name, r in second.items()} == {"a/b": "cached", "a_b": "cached"}
    assert len(list((tmp_path / "state").rglob("*.json"))) == 2


@pytest.mark.parametrize(("one", "other"), [("a/b", "a_b"), ("a/b", "a-b"), ("x", "x.log/y"), ("a/b/c", "a/b_c"),
                                            ("a.b/c", "a.b_c")])
def test_distinct_artifact_names_map_to_distinct_file_names(one: str, other: str) -> None:
    assert ARTIFACT_NAME_RE.fullmatch(one) and ARTIFACT_NAME_RE.fullmatch(other)
    assert file_stem(one) != file_stem(other)
    assert "/" not in file_stem(one) and "/" not in file_stem(other)


@pytest.mark.parametrize(("ref", "commit"), [("v3.2.0", None), ("release/v3.2", None), ("a" * 40, "a" * 40),
                                             ("v1", "b" * 40)])
def test_the_validator_names_library_archives_as_the_library_builder_writes_them(ref: str, commit: str | None,
                                                                                tmp_path: Path) -> None:
    """Collisions in dist/<release>/src/ are judged on the archive's path before the
    commit is known (library.archive_path): it must be the path the build writes."""
    pin = f"\n    commit: {commit}" if commit and commit != ref else ""
    manifest = loads(f"schema: 1\nrelease: v1\nrepos:\n  lib:\n    url: file:///up/lib\n    ref: '{ref}'{pin}\n"
                     "    artifacts:\n      lib:\n        type: library\n")
    resolved = commit or "c" * 40
    built = f"src/{library.archive_stem('lib', ref, resolved)}.tar.gz"
    assert library.archive_path(manifest, manifest.artifacts["lib"]) == built
