"""The cache key covers everything a build is made from: also the repository's ref.

Build commands see the ref as $GIT_REF (version strings are made from it), the library
builder names its archive and the archive's top directory after it. The key held the
commit, not the ref: moving a manifest from one tag to another tag of the same commit
reported every artifact "cached" and wrote an ok record under the new manifest's sha256
over a binary that says the old tag and a library archive under the old name, which
verify then refuses. A cached result must be the one a build would give.

Real git (two tags on one commit), the real CLI.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.helpers.cli import run_cli
from tests.helpers.gitrepos import git

MANIFEST = """\
schema: 1
release: r1
defaults: {{network: none}}
repos:
  app:
    url: {url}
    ref: {ref}
    commit: {commit}
    artifacts:
      tool:
        type: binary
        command: 'mkdir -p out && echo "version $GIT_REF" > out/tool'
        outputs: [out/tool]
      lib:
        type: library
"""


def test_a_manifest_moved_to_another_tag_of_the_same_commit_rebuilds_what_the_ref_goes_into(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    git("init", "--quiet", "--initial-branch=main", cwd=work)
    (work / "VERSION").write_text("1\n")
    git("add", "--all", cwd=work)
    git("commit", "--quiet", "--message", "one", cwd=work)
    git("tag", "v1.0", cwd=work)
    git("tag", "v1.0-final", cwd=work)
    bare = tmp_path / "app.git"
    git("clone", "--quiet", "--bare", "--no-local", str(work), str(bare))
    commit = git("rev-parse", "HEAD", cwd=work)
    manifest = tmp_path / "manifest.yaml"
    workspace = tmp_path / "ws"
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, "--manifest", str(manifest), "--workspace", str(workspace), program="orchestrator",
                       cwd=tmp_path, env=env)

    manifest.write_text(MANIFEST.format(url=bare.as_uri(), ref="v1.0", commit=commit))
    assert run("build", "--all").returncode == 0
    manifest.write_text(MANIFEST.format(url=bare.as_uri(), ref="v1.0-final", commit=commit))

    result = run("build", "--all")

    assert result.returncode == 0, result.stderr
    release_dir = workspace / "dist" / "r1"
    data = json.loads((release_dir / "release.json").read_text())
    assert (release_dir / "bin" / "tool").read_text() == "version v1.0-final\n", (
        f"release.json says {data['artifacts']['tool']['status']} for a binary built at the old ref")
    assert [f["path"] for f in data["artifacts"]["lib"]["files"]] == ["src/app-v1.0-final.tar.gz"]
    verified = run("verify", "--offline")  # the old archive stays behind, in no record: reported, as ever
    assert "artifact lib" not in verified.stdout, verified.stdout
