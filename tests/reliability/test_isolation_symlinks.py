"""Symlinks in a repository's commits, made by a build, or planted in dist/ never lead
a read or a write of the orchestrator out of the checkout or the release directory."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from orchestrator.builders.common import Job, stage_inputs
from orchestrator.commands import CommandRunner
from orchestrator.errors import BuildError
from orchestrator.manifest import loads
from orchestrator.outputs import Source
from tests.reliability.isolation_helpers import Link, Workspace, make_repo

FELIX = """
felix:
  type: binary
  command: "mkdir -p out && printf 'felix\\n' > out/calico-felix && chmod 755 out/calico-felix"
  outputs: [out/calico-felix]
"""


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside every checkout and release, which must stay empty."""
    path = tmp_path / "outside"
    path.mkdir()
    return path


def workspace(tmp_path: Path, files: dict[str, str | Link], artifacts: str) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    commit = make_repo(tmp_path / "repo", {"README": "tool\n", **files})
    ws.manifest(tmp_path / "repo", commit, artifacts)
    return ws


@pytest.mark.parametrize("made_by", ["commit", "command"])
def test_an_output_that_is_a_symlink_to_a_host_file_is_refused_naming_where_it_points(
    made_by: str, tmp_path: Path
) -> None:
    files: dict[str, str | Link] = {"leak": Link("/etc/hostname")} if made_by == "commit" else {}
    command = "'true'" if made_by == "commit" else "ln -s /etc/hostname leak"
    ws = workspace(tmp_path, files, f"tool:\n  type: binary\n  command: {command}\n  outputs: [leak]")

    code, output = ws.run("build", "tool")

    assert code == 1
    assert f"tool: output 'leak' resolves to /etc/hostname, outside the checkout {ws.checkout}" in output
    assert "hint: an output must be a file inside the checkout; a symlink may only point inside it" in output
    assert not (ws.release / "bin" / "leak").exists()


@pytest.mark.parametrize("pattern", ["etc/hostname", "etc/hostnam*"])
def test_outputs_below_a_committed_directory_symlink_out_of_the_checkout_are_refused(
    pattern: str, tmp_path: Path
) -> None:
    ws = workspace(tmp_path, {"etc": Link("/etc")}, f"tool:\n  type: binary\n  command: 'true'\n  outputs: [{pattern}]")

    code, output = ws.run("build", "tool")

    assert code == 1
    assert "tool: output 'etc/hostname' resolves to /etc/hostname, outside the checkout" in output
    assert not (ws.release / "bin").exists() or list((ws.release / "bin").iterdir()) == []


def test_a_symlink_to_a_file_inside_the_checkout_publishes_that_files_bytes(tmp_path: Path) -> None:
    ws = workspace(
        tmp_path,
        {"build/tool-1.0": "#!/bin/sh\necho tool\n", "bin/tool": Link("../build/tool-1.0")},
        "tool:\n  type: binary\n  command: 'chmod 755 build/tool-1.0'\n  outputs: [bin/tool]",
    )

    code, output = ws.run("build", "tool")

    assert code == 0, output
    published = ws.release / "bin" / "tool"
    assert not published.is_symlink()
    assert published.read_text() == "#!/bin/sh\necho tool\n"
    assert stat.S_IMODE(published.stat().st_mode) == 0o755


def test_a_committed_symlink_at_a_stage_destination_is_replaced_not_written_through(
    tmp_path: Path, outside: Path
) -> None:
    target = outside / "calico-felix"
    ws = workspace(tmp_path, {"bin/calico-felix": Link(str(target))}, FELIX + """
node:
  type: binary
  command: cat bin/calico-felix > copied
  outputs: [copied]
  stage: {bin/calico-felix: felix}
""")

    code, output = ws.run("build", "node")

    assert code == 0, output
    assert list(outside.iterdir()) == []
    staged = ws.checkout / "bin" / "calico-felix"
    assert not staged.is_symlink() and staged.read_text() == "felix\n"
    assert (ws.release / "bin" / "copied").read_text() == "felix\n"


def test_a_committed_parent_symlink_out_of_the_checkout_refuses_staging(tmp_path: Path, outside: Path) -> None:
    ws = workspace(tmp_path, {"bin": Link(str(outside))}, FELIX + """
node:
  type: binary
  command: 'true'
  outputs: [README]
  stage: {bin/calico-felix: felix}
""")

    code, output = ws.run("build", "node")

    assert code == 1
    assert (f"node: cannot stage calico-felix at 'bin/calico-felix': bin: resolves to {outside}, "
            f"outside the checkout {ws.checkout}") in output
    assert list(outside.iterdir()) == []


def test_a_parent_symlink_that_stays_inside_the_checkout_is_followed_for_staging(tmp_path: Path) -> None:
    ws = workspace(tmp_path, {"build/bin/.keep": "", "bin": Link("build/bin")}, FELIX + """
node:
  type: binary
  command: cat build/bin/calico-felix > copied
  outputs: [copied]
  stage: {bin/calico-felix: felix}
""")

    code, output = ws.run("build", "node")

    assert code == 0, output
    assert (ws.checkout / "build" / "bin" / "calico-felix").read_text() == "felix\n"


def test_a_directory_symlink_planted_in_the_release_does_not_redirect_publishing(
    tmp_path: Path, outside: Path
) -> None:
    ws = workspace(tmp_path, {}, FELIX)
    code, output = ws.run("build", "felix")
    assert code == 0, output
    (ws.release / "bin" / "calico-felix").unlink()
    (ws.release / "bin").rmdir()
    (ws.release / "bin").symlink_to(outside)

    code, output = ws.run("build", "felix", "--force")

    assert code == 1
    assert f"bin: is a symlink (-> {outside}); refusing to go through it" in output
    assert list(outside.iterdir()) == []


def test_a_file_symlink_planted_in_the_release_is_replaced_not_written_through(
    tmp_path: Path, outside: Path
) -> None:
    victim = outside / "victim"
    victim.write_text("precious\n")
    ws = workspace(tmp_path, {}, FELIX)
    code, output = ws.run("build", "felix")
    assert code == 0, output
    published = ws.release / "bin" / "calico-felix"
    published.unlink()
    published.symlink_to(victim)

    code, output = ws.run("build", "felix", "--force")

    assert code == 0, output
    assert victim.read_text() == "precious\n"
    assert not published.is_symlink() and published.read_text() == "felix\n"


def test_staging_never_reads_a_release_file_through_a_symlink(tmp_path: Path) -> None:
    manifest = loads("schema: 1\nrelease: v1\nrepos:\n  node:\n    url: file:///x\n    ref: v1\n    artifacts:\n"
                     "      node: {type: binary, command: 'true', outputs: [x]}\n")
    release, checkout = tmp_path / "dist" / "v1", tmp_path / "src" / "node"
    (release / "bin").mkdir(parents=True)
    checkout.mkdir(parents=True)
    (release / "bin" / "calico-felix").symlink_to("/etc/hostname")
    job = Job(manifest=manifest, artifact=manifest.artifacts["node"], release_dir=release, log=lambda line: None,
              runner=CommandRunner(), staged={"bin/calico-felix": (release / "bin" / "calico-felix",)},
              source=Source(repo="node", url="file:///x", ref="v1", commit="1" * 40, commit_time=0, path=checkout))

    with pytest.raises(BuildError, match="bin/calico-felix: is a symlink; refusing to follow it"):
        stage_inputs(job)

    assert not os.path.lexists(checkout / "bin" / "calico-felix")


def test_a_dangling_symlink_output_is_a_missing_output_not_a_crash(tmp_path: Path) -> None:
    ws = workspace(tmp_path, {"dangling": Link("missing")}, "tool:\n  type: binary\n  command: 'true'\n"
                   "  outputs: [dangling]")

    code, output = ws.run("build", "tool")

    assert code == 1
    assert "tool: declared output 'dangling' does not exist in" in output
    assert "unexpected" not in output


def test_a_symlink_planted_at_the_temporary_name_of_a_published_file_is_never_followed(
    tmp_path: Path, outside: Path
) -> None:
    from orchestrator.confined import write_file

    release = tmp_path / "dist" / "v1"
    (release / "bin").mkdir(parents=True)
    victim = outside / "victim"
    victim.write_text("precious\n")
    planted = release / "bin" / f".tool.tmp-{os.getpid()}-{threading.get_ident()}"
    planted.symlink_to(victim)

    written = write_file(release, "bin/tool", iter([b"tool\n"]), mode=0o755)

    assert victim.read_text() == "precious\n"
    assert (release / "bin" / "tool").read_bytes() == b"tool\n" and written.mode == 0o755
    assert not os.path.lexists(planted)
