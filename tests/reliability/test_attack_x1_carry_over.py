"""Carry-over must not vouch for an artifact built from inputs that changed since.

``build a`` after ``build --all`` carries the artifacts it does not rebuild over from the
old record when their files are intact and their repository is at the same commit. An
artifact that stages (or requires) another one is built from that one's output too: when
the dependency is rebuilt from another commit (an unpinned branch moved), the dependent's
published bytes hold the old dependency, while the new record, its SHA256SUMS and its
provenance say the release was built from the new commit, and verify agrees. ``build
--all`` would rebuild it (its cache key names the dependency's): carrying it over
vouches for a release that building it would not give.

Real git (an upstream whose branch moves), the real CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.helpers.cli import run_cli
from tests.helpers.gitrepos import git, git_env

MANIFEST = """\
schema: 1
release: r1
defaults: {{network: none}}
repos:
  liba:
    url: {liba}
    ref: main
    artifacts:
      a:
        type: binary
        command: "mkdir -p out && cp VERSION out/a"
        outputs: [out/a]
  appb:
    url: {appb}
    ref: main
    artifacts:
      b:
        type: binary
        stage: {{in/a: a}}
        command: "mkdir -p out && cat in/a > out/b"
        outputs: [out/b]
"""


def upstream(root: Path, name: str, content: str) -> tuple[Path, Path]:
    """A bare repository ``name.git`` with one commit holding VERSION; and its work tree."""
    work = root / f"{name}-work"
    work.mkdir()
    git("init", "--quiet", "--initial-branch=main", cwd=work)
    (work / "VERSION").write_text(content)
    git("add", "--all", cwd=work)
    git("commit", "--quiet", "--message", content, cwd=work)
    bare = root / f"{name}.git"
    git("clone", "--quiet", "--bare", "--no-local", str(work), str(bare))
    return bare, work


def test_an_artifact_whose_dependency_was_rebuilt_from_another_commit_is_not_carried_over(tmp_path: Path) -> None:
    liba, liba_work = upstream(tmp_path, "liba", "one\n")
    appb, _ = upstream(tmp_path, "appb", "app\n")
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(MANIFEST.format(liba=liba.as_uri(), appb=appb.as_uri()))
    workspace = tmp_path / "ws"
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, "--manifest", str(manifest), "--workspace", str(workspace), program="orchestrator",
                       cwd=tmp_path, env=env)

    assert run("build", "--all").returncode == 0
    (liba_work / "VERSION").write_text("two\n")  # liba's main moves on
    git("commit", "--quiet", "--all", "--message", "two", cwd=liba_work)
    subprocess.run(["git", "push", "--quiet", str(liba), "main"], cwd=liba_work, env={**os.environ, **git_env()},
                   check=True)

    result = run("build", "a")

    assert result.returncode == 0, result.stderr
    release_dir = workspace / "dist" / "r1"
    data = json.loads((release_dir / "release.json").read_text())
    assert (release_dir / "bin" / "a").read_text() == "two\n"
    b = data["artifacts"].get("b")
    assert b is None or (release_dir / "bin" / "b").read_text() == "two\n", (
        "release.json vouches for b, built from liba at its old commit, in a release it says was built from "
        f"liba {data['repos']['liba']['commit']}: {json.dumps(b)}")
