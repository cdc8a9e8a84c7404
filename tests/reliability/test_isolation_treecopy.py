"""What a builder container's /src brings back is hostile input: tars that lie, run
through treecopy.replace_tree and through Engine.run with an engine that lies."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from orchestrator import treecopy
from orchestrator.engine.dockerpy import Engine
from orchestrator.engine.errors import ContainerFailed
from orchestrator.treecopy import HostileArchive
from tests.engine.conftest import Lines
from tests.helpers.fake_docker import ContainerScript, FakeDockerClient
from tests.reliability.isolation_helpers import Entry, chunks_of, tar_of

BUSYBOX = "orchestrator-test/busybox:1"
SRC = Entry("src", "dir", mode=0o755)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A checkout as the host has it: a .git, a committed file, a file the build will delete."""
    path = tmp_path / "ws" / "tool"
    (path / ".git").mkdir(parents=True)
    (path / ".git" / "config").write_text("[core]\n\tbare = false\n")
    (path / "main.c").write_text("int main;\n")
    (path / "stale.o").write_text("old object\n")
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    return path


def snapshot(root: Path) -> dict[str, tuple[int, bytes | str]]:
    """Every entry under ``root``: (lstat mode, content or link target)."""
    found: dict[str, tuple[int, bytes | str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                found[str(path.relative_to(root))] = (info.st_mode, os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                found[str(path.relative_to(root))] = (info.st_mode, path.read_bytes())
            else:
                found[str(path.relative_to(root))] = (info.st_mode, "")
    return found


def bring_back(tree: Path, *entries: Entry) -> tuple[treecopy.Brought, Lines]:
    lines = Lines()
    return treecopy.replace_tree(chunks_of(tar_of(*entries)), tree, log=lines), lines


def test_the_tree_becomes_what_the_container_left_and_deleted_files_are_gone(tree: Path) -> None:
    brought, _ = bring_back(
        tree, SRC, Entry("src/main.c", data=b"int main;\n"), Entry("src/out", "dir", mode=0o755),
        Entry("src/out/tool", data=b"\x7fELF", mode=0o755),
    )

    assert sorted(p.name for p in tree.iterdir()) == [".git", "main.c", "out"]
    assert (tree / "out/tool").read_bytes() == b"\x7fELF"
    assert stat.S_IMODE((tree / "out/tool").stat().st_mode) == 0o755
    assert brought.files == 2
    assert not list(tree.parent.glob(".tmp~*")), "no temporary directory is left behind"


def test_the_host_git_is_kept_and_nothing_under_any_git_directory_comes_back(tree: Path) -> None:
    config = (tree / ".git" / "config").read_bytes()

    bring_back(
        tree, SRC, Entry("src/.git", "dir"), Entry("src/.git/config", data=b"[core]\n\tfsmonitor = touch /pwned\n"),
        Entry("src/.git/hooks", "dir"), Entry("src/.git/hooks/post-checkout", data=b"#!/bin/sh\n", mode=0o755),
        Entry("src/vendor", "dir"), Entry("src/vendor/dep", "dir"), Entry("src/vendor/dep/.git", data=b"gitdir: /x\n"),
        Entry("src/vendor/dep/ok.go", data=b"package dep\n"),
    )

    assert (tree / ".git" / "config").read_bytes() == config
    assert sorted(p.name for p in (tree / ".git").iterdir()) == ["config"]
    assert sorted(p.name for p in (tree / "vendor/dep").iterdir()) == ["ok.go"]


def test_a_file_below_a_symlinked_directory_is_refused_and_nothing_is_written_anywhere(
    tree: Path, outside: Path
) -> None:
    before = snapshot(tree)

    with pytest.raises(HostileArchive) as caught:
        bring_back(tree, SRC, Entry("src/bin", "symlink", target=str(outside)), Entry("src/bin/passwd", data=b"x"))

    assert str(caught.value) == (
        f"the builder container's /src holds 'src/bin/passwd', which lies below src/bin, which is a symlink "
        f"(-> {outside}); refusing to go through it; nothing was copied back\n"
        "  hint: the build wrote something that could reach outside the checkout; fix the build command or image"
    )
    assert list(outside.iterdir()) == []
    assert snapshot(tree) == before
    assert not list(tree.parent.glob(".tmp~*"))


@pytest.mark.parametrize(
    "name", ["/etc/passwd", "src/../escape", "src/./x", "src//x", "other/x", "../src/x", "src/a/../../x"]
)
def test_names_that_are_not_plain_paths_under_src_refuse_the_whole_archive(name: str, tree: Path) -> None:
    before = snapshot(tree)

    with pytest.raises(HostileArchive, match="is not a plain path under src/"):
        bring_back(tree, SRC, Entry("src/ok", data=b"ok"), Entry(name, data=b"x"))

    assert snapshot(tree) == before


def test_a_root_that_is_not_the_src_directory_is_refused(tree: Path) -> None:
    with pytest.raises(HostileArchive, match="should have been the directory src"):
        bring_back(tree, Entry("src", "symlink", target="/"))
    with pytest.raises(HostileArchive, match="is missing from the archive"):
        bring_back(tree)
    assert (tree / "main.c").is_file()


def test_devices_and_fifos_are_skipped_and_named_in_the_log(tree: Path) -> None:
    brought, lines = bring_back(tree, SRC, Entry("src/null", "chardev"), Entry("src/pipe", "fifo"))

    assert sorted(p.name for p in tree.iterdir()) == [".git"]
    assert lines == [
        "not copied back from the container: src/null: a character device",
        "not copied back from the container: src/pipe: a FIFO",
    ]
    assert brought.skipped == ("src/null (a character device)", "src/pipe (a FIFO)")


def test_special_bits_and_group_or_world_write_are_stripped_from_files_and_directories(tree: Path) -> None:
    bring_back(
        tree, SRC, Entry("src/suid", data=b"x", mode=0o4777), Entry("src/sgid", data=b"x", mode=0o2664),
        Entry("src/plain", data=b"x", mode=0o400), Entry("src/tmp", "dir", mode=0o1777),
    )

    modes = {name: stat.S_IMODE((tree / name).lstat().st_mode) for name in ("suid", "sgid", "plain", "tmp")}
    assert modes == {"suid": 0o755, "sgid": 0o644, "plain": 0o600, "tmp": 0o755}


def test_symlinks_come_back_as_symlinks_and_their_targets_are_never_touched(tree: Path, outside: Path) -> None:
    secret = outside / "shadow"
    secret.write_text("secret\n")

    bring_back(tree, SRC, Entry("src/shadow", "symlink", target=str(secret)), Entry("src/rel", "symlink", target="x"))

    assert os.readlink(tree / "shadow") == str(secret)
    assert os.readlink(tree / "rel") == "x"
    assert secret.read_text() == "secret\n"


def test_a_later_entry_replaces_an_earlier_one_of_the_same_name_without_following_it(
    tree: Path, outside: Path
) -> None:
    bring_back(tree, SRC, Entry("src/tool", "symlink", target=str(outside / "tool")), Entry("src/tool", data=b"real"))

    assert (tree / "tool").read_bytes() == b"real" and not (tree / "tool").is_symlink()
    assert list(outside.iterdir()) == []


def test_a_hard_link_is_a_link_to_a_file_brought_back_and_any_other_is_skipped(tree: Path) -> None:
    _, lines = bring_back(
        tree, SRC, Entry("src/a", data=b"same", mode=0o755), Entry("src/b", "hardlink", target="src/a", mode=0o755),
        Entry("src/c", "hardlink", target="/etc/passwd"), Entry("src/d", "hardlink", target="src/.git/config"),
    )

    assert (tree / "b").read_bytes() == b"same"
    # A link, not a copy: a thousand links to one big file must not fill the host's disk.
    assert (tree / "a").stat().st_ino == (tree / "b").stat().st_ino
    assert not (tree / "c").exists() and not (tree / "d").exists()
    assert lines == [
        "not copied back from the container: src/c: a hard link to '/etc/passwd', which was not brought back",
        "not copied back from the container: src/d: a hard link to 'src/.git/config', which was not brought back",
    ]


def test_pack_sends_the_tree_and_a_copy_of_git_owned_by_the_container_user_with_symlinks_kept(tree: Path) -> None:
    (tree / "link").symlink_to("/etc/hostname")
    buffer = io.BytesIO()

    treecopy.pack(tree, buffer, uid=1234, gid=5678)

    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as archive:
        members = {m.name: m for m in archive.getmembers()}
    assert sorted(members) == ["src", "src/.git", "src/.git/config", "src/link", "src/main.c", "src/stale.o"]
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members.values()} == {(1234, 5678, "", "")}
    assert members["src/link"].issym() and members["src/link"].linkname == "/etc/hostname"


# -- through Engine.run, with an engine that lies ---------------------------------------------


def test_engine_run_refuses_a_lying_archive_and_leaves_the_checkout_as_it_was(tree: Path, outside: Path) -> None:
    lines = Lines()
    fake = FakeDockerClient()
    fake.add_image(BUSYBOX)
    archive = tar_of(SRC, Entry("src/bin", "symlink", target=str(outside)), Entry("src/bin/x", data=b"pwned"))
    fake.script_container(BUSYBOX, ContainerScript(archive=archive))
    before = snapshot(tree)

    with pytest.raises(HostileArchive, match="'src/bin/x', which lies below src/bin"):
        Engine(fake).run(image=BUSYBOX, command="true", workdir=tree, env={}, network_mode="none", log=lines)

    assert list(outside.iterdir()) == []
    assert snapshot(tree) == before
    assert fake.containers.list(all=True) == [], "the container is removed"


def test_engine_run_brings_nothing_back_from_a_failed_command(tree: Path) -> None:
    lines = Lines()
    fake = FakeDockerClient()
    fake.add_image(BUSYBOX)
    before = snapshot(tree)

    with pytest.raises(ContainerFailed, match="exited with code 3"):
        Engine(fake).run(image=BUSYBOX, command="rm main.c; echo half > out; exit 3", workdir=tree, env={},
                         network_mode="none", log=lines)

    assert snapshot(tree) == before
    assert fake.calls_to("container.get_archive") == []


# -- kill -9 midway ---------------------------------------------------------------------------

KILLED = """
import os, sys, time
from pathlib import Path
from orchestrator import treecopy

tree, stop, tar = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]).read_bytes()


def chunks():
    yield tar[: len(tar) // 2]
    if stop == "extracting":
        print("stopped", flush=True)
        time.sleep(60)
    yield tar[len(tar) // 2 :]


renames = []
real_rename = os.rename


def rename(source, dest):
    real_rename(source, dest)
    renames.append(source)
    if stop == f"rename-{len(renames)}":
        print("stopped", flush=True)
        time.sleep(60)


os.rename = rename
treecopy.replace_tree(chunks(), tree, log=print)
"""


@pytest.mark.parametrize("stop", ["extracting", "rename-1", "rename-2"])
def test_a_run_killed_while_bringing_a_tree_back_leaves_a_checkout_the_next_fetch_repairs(
    stop: str, tmp_path: Path
) -> None:
    from orchestrator.sources import FetchOptions, fetch
    from tests.helpers.gitrepos import RepoSpec, build_upstream, git

    upstream = build_upstream(tmp_path / "upstream")
    options = FetchOptions(cache_dir=tmp_path / "cache", checkout_dir=tmp_path / "src", backoff=0.0)
    repo = RepoSpec(name="felix", url=upstream.url, ref="v1.0")
    checkout = fetch([repo], options)["felix"].path
    tar = tmp_path / "back.tar"
    tar.write_bytes(tar_of(SRC, Entry("src/big", data=os.urandom(1 << 21)), Entry("src/out", data=b"built")))
    process = subprocess.Popen([sys.executable, "-c", KILLED, str(checkout), stop, str(tar)],
                               cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline() == "stopped\n"
    finally:
        process.kill()
        process.wait()

    again = fetch([repo], options)["felix"].path

    assert again == checkout
    assert git("rev-parse", "HEAD", cwd=checkout) == upstream.commits["c2"]
    assert git("status", "--porcelain", "--ignored", cwd=checkout) == ""
    assert sorted(p.name for p in options.checkout_dir.iterdir()) == [".locks", ".stamps", "felix"]
