"""Published files get 0755 or 0644 and never a special bit; two outputs never share
one path of the release, so SHA256SUMS never lists a path twice. (Literal output
names that collide are refused by manifest validation; globs can only be caught when
they match, which is what these tests do.)"""

from __future__ import annotations

import stat
from pathlib import Path

from orchestrator.execute import Options, execute
from orchestrator.manifest import loads
from orchestrator.outputs import Source
from orchestrator.plan import make_plan
from tests.reliability.isolation_helpers import Workspace, make_repo

MODES = """
tool:
  type: binary
  command: >-
    mkdir -p out && echo a > out/suid && chmod 4775 out/suid && echo b > out/data && chmod 666 out/data
    && echo c > out/owner-x && chmod 700 out/owner-x && echo d > out/readonly && chmod 400 out/readonly
  outputs: [out/suid, out/data, out/owner-x, out/readonly]
"""


def workspace(tmp_path: Path, artifacts: str) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    commit = make_repo(tmp_path / "repo", {"README": "tool\n"})
    ws.manifest(tmp_path / "repo", commit, artifacts)
    return ws


def sums(ws: Workspace) -> list[str]:
    return [line.split("  ", 1)[1] for line in (ws.release / "SHA256SUMS").read_text().splitlines()]


def test_published_modes_are_0755_with_any_execute_bit_else_0644_and_the_record_says_which(tmp_path: Path) -> None:
    manifest = loads("schema: 1\nrelease: v1\nrepos:\n  tool:\n    url: file:///x\n    ref: v1\n    artifacts:\n"
                     + "".join("      " + line + "\n" for line in MODES.strip().splitlines()))
    checkout = tmp_path / "src" / "tool"
    checkout.mkdir(parents=True)
    sources = {"tool": Source(repo="tool", url="file:///x", ref="v1", commit="1" * 40, commit_time=0, path=checkout)}
    release = tmp_path / "dist" / "v1"

    results = execute(make_plan(manifest, ["tool"]), manifest, sources,
                      Options(log_dir=tmp_path / "logs", release_dir=release))

    assert results["tool"].status == "ok", results["tool"].error
    recorded = {f.path: f.mode for f in results["tool"].output.files}
    on_disk = {f.path: stat.S_IMODE((release / f.path).stat().st_mode) for f in results["tool"].output.files}
    expected = {"bin/suid": 0o755, "bin/data": 0o644, "bin/owner-x": 0o755, "bin/readonly": 0o644}
    assert recorded == expected
    assert on_disk == expected


def test_two_outputs_of_one_artifact_for_one_path_fail_naming_both(tmp_path: Path) -> None:
    ws = workspace(tmp_path, """
tool:
  type: binary
  command: mkdir -p a b && echo a > a/tool && echo b > b/tool
  outputs: ["a/*", "b/*"]
""")

    code, output = ws.run("build", "tool")

    assert code == 1
    assert ("tool: output 'b/tool' would be published as bin/tool, where tool's output 'a/tool' is published already"
            in output)
    assert "hint: outputs are published by file name; rename one of them or drop one from `outputs`" in output
    assert not (ws.release / "bin/tool").exists(), "every path is claimed before anything is published"
    assert "bin/tool" not in sums(ws)


def test_outputs_of_two_artifacts_for_one_path_fail_the_later_and_keep_the_first(tmp_path: Path) -> None:
    ws = workspace(tmp_path, """
first:
  type: binary
  command: mkdir -p a && echo first > a/tool
  outputs: [a/tool]
second:
  type: binary
  command: mkdir -p b && echo second > b/tool
  outputs: ["b/*"]
  requires: [first]
""")

    code, output = ws.run("build", "second")

    assert code == 1
    assert "second: output 'b/tool' would be published as bin/tool, where first's output 'a/tool'" in output
    assert (ws.release / "bin/tool").read_text() == "first\n"
    assert sums(ws) == ["bin/tool"]


def test_a_new_output_cannot_take_the_path_of_a_cached_artifact(tmp_path: Path) -> None:
    first = """
first:
  type: binary
  command: mkdir -p a && echo first > a/tool
  outputs: [a/tool]
"""
    ws = workspace(tmp_path, first)
    code, output = ws.run("build", "first")
    assert code == 0, output
    commit = make_repo(tmp_path / "repo2", {"README": "x\n"})
    manifest = (ws.root / "manifest.yaml").read_text() + f"""  other:
    url: {(tmp_path / "repo2").as_uri()}
    ref: v1
    commit: {commit}
    artifacts:
      second:
        type: binary
        command: mkdir -p b && echo second > b/tool
        outputs: ["b/*"]
"""
    (ws.root / "manifest.yaml").write_text(manifest)

    code, output = ws.run("build", "--all", "--jobs", "1", "--keep-going")

    assert code == 1
    assert "second: output 'b/tool' would be published as bin/tool, where first's output 'bin/tool'" in output
    assert (ws.release / "bin/tool").read_text() == "first\n"
    assert sums(ws) == ["bin/tool"]


def test_one_file_matched_by_two_patterns_is_published_once(tmp_path: Path) -> None:
    ws = workspace(tmp_path, """
tool:
  type: binary
  command: mkdir -p out && echo tool > out/tool
  outputs: [out/tool, "out/*"]
""")

    code, output = ws.run("build", "tool")

    assert code == 0, output
    assert sums(ws) == ["bin/tool"]


def test_an_output_whose_name_could_forge_a_sha256sums_line_is_refused(tmp_path: Path) -> None:
    forged = "x\\n" + "0" * 64 + "  bin\\\\evil"
    ws = workspace(tmp_path, f"""
tool:
  type: binary
  command: mkdir -p out && printf tool > "out/$(printf '{forged}')"
  outputs: ["out/*"]
""")

    code, output = ws.run("build", "tool")

    assert code == 1
    assert "has a control character or backslash in its name" in output
    assert not (ws.release / "SHA256SUMS").exists() or "evil" not in (ws.release / "SHA256SUMS").read_text()
