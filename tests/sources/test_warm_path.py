"""The warm path: a checkout at its pin and untouched is recognised without starting git,
and anything changed behind the orchestrator's back sends it back to git, which repairs it.

Git processes are counted in the debug log (``orchestrator.commandlog``), as a user would
with ``ORCHESTRATOR_LOG=debug``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import checkoutstamp, stamps
from orchestrator.sources import FetchOptions, fetch
from tests.helpers.gitrepos import RepoSpec, Upstream, git
from tests.sources.conftest import Events


class GitLog:
    """The debug log's git lines, per repository directory."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    def lines(self) -> list[str]:
        return [r.getMessage() for r in self.caplog.records
                if r.name == "orchestrator.commands" and r.getMessage().startswith("git ")]

    def clear(self) -> None:
        self.caplog.clear()


@pytest.fixture
def git_log(caplog: pytest.LogCaptureFixture) -> Iterator[GitLog]:
    with caplog.at_level(logging.DEBUG, logger="orchestrator.commands"):
        yield GitLog(caplog)


def _repos(upstream: Upstream) -> list[RepoSpec]:
    """One of each pin the warm path answers for: annotated tag, lightweight tag on no
    branch, a commit id, an unpinned tag, a pinned branch."""
    return [
        RepoSpec(name="felix", url=upstream.url, ref="v1.0", commit=upstream.commits["c2"]),
        RepoSpec(name="cni-plugin", url=upstream.url, ref="v2.0-nobranch", commit=upstream.commits["n1"]),
        RepoSpec(name="libcalico-go", url=upstream.url, ref=upstream.commits["c3"]),
        RepoSpec(name="libcalico", url=upstream.url, ref="v0.9"),
        RepoSpec(name="node", url=upstream.url, ref="release-1", commit=upstream.commits["r2"]),
    ]


def _felix(upstream: Upstream) -> RepoSpec:
    return RepoSpec(name="felix", url=upstream.url, ref="v1.0", commit=upstream.commits["c2"])


def _warm(upstream: Upstream, options: FetchOptions, git_log: GitLog) -> Path:
    """felix fetched, and fetched again (the first run after a cold one may have to look)."""
    fetch([_felix(upstream)], options)
    fetch([_felix(upstream)], options)
    git_log.clear()
    return options.checkout_dir / "felix"


def _rewrite_keeping_times(path: Path, data: bytes) -> None:
    """Write ``data`` over ``path`` and put its atime and mtime back, as `touch -r` would."""
    before = path.stat()
    path.write_bytes(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_warm_fetch_of_untouched_checkouts_starts_no_git_process(
    upstream: Upstream, options: FetchOptions, git_log: GitLog
) -> None:
    repos = _repos(upstream)
    first = fetch(repos, options)
    git_log.clear()

    second = fetch(repos, options)

    assert git_log.lines() == []
    assert {n: c.commit for n, c in second.items()} == {n: c.commit for n, c in first.items()}
    assert {n: c.commit_time for n, c in second.items()} == {n: c.commit_time for n, c in first.items()}
    assert not any(c.fetched for c in second.values())


def test_cold_fetch_of_a_pinned_tag_asks_the_remote_once_and_runs_four_git_processes(
    upstream: Upstream, options: FetchOptions, git_log: GitLog, network_calls: list[tuple[str, ...]]
) -> None:
    fetch([_felix(upstream)], options)

    commands = [line.split()[1] for line in git_log.lines()]
    assert [call[0] for call in network_calls] == ["fetch"]  # no ls-remote for a pinned ref
    # The mirror: fetch, then peel and date the commit; the checkout: fetch from the
    # mirror, check out. Both repositories are made without git (repoconfig.init).
    assert sorted(commands) == sorted(["fetch", "rev-list", "fetch", "checkout"])


def test_a_file_rewritten_with_the_same_size_and_its_mtime_restored_is_caught_and_repaired(
    upstream: Upstream, options: FetchOptions, git_log: GitLog
) -> None:
    checkout = _warm(upstream, options, git_log)
    original = (checkout / "VERSION").read_bytes()
    _rewrite_keeping_times(checkout / "VERSION", b"X" * len(original))

    fetch([_felix(upstream)], options)

    assert git_log.lines(), "a changed checkout must be checked with git"
    assert (checkout / "VERSION").read_bytes() == original
    git_log.clear()
    fetch([_felix(upstream)], options)
    assert git_log.lines() == []  # repaired and stamped again


def test_a_checkout_touched_after_the_stamp_is_checked_with_git(
    upstream: Upstream, options: FetchOptions, git_log: GitLog
) -> None:
    checkout = _warm(upstream, options, git_log)
    os.utime(checkout / "c1")

    fetch([_felix(upstream)], options)

    assert git_log.lines()


def test_a_head_moved_by_hand_is_put_back(upstream: Upstream, options: FetchOptions, git_log: GitLog) -> None:
    checkout = _warm(upstream, options, git_log)
    _rewrite_keeping_times(checkout / ".git" / "HEAD", (upstream.commits["c1"] + "\n").encode())

    result = fetch([_felix(upstream)], options)["felix"]

    assert git_log.lines()
    assert result.commit == upstream.commits["c2"]
    assert git("rev-parse", "HEAD", git_dir=checkout / ".git") == upstream.commits["c2"]


def test_an_index_rewritten_behind_our_back_is_put_back(
    upstream: Upstream, options: FetchOptions, git_log: GitLog
) -> None:
    checkout = _warm(upstream, options, git_log)
    git("read-tree", "--empty", git_dir=checkout / ".git")  # the index only: files untouched

    fetch([_felix(upstream)], options)

    assert git_log.lines()
    assert git("status", "--porcelain", cwd=checkout) == ""
    assert git("diff", "--cached", "--name-only", cwd=checkout) == ""


def test_an_added_file_is_noticed_and_cleaned(upstream: Upstream, options: FetchOptions, git_log: GitLog) -> None:
    checkout = _warm(upstream, options, git_log)
    (checkout / "planted.o").write_text("left by a build\n")  # ignored by .gitignore, still not ours

    fetch([_felix(upstream)], options)

    assert git_log.lines()
    assert not (checkout / "planted.o").exists()


def test_a_tag_moved_in_the_mirror_is_not_taken_on_trust(
    upstream: Upstream, options: FetchOptions, git_log: GitLog
) -> None:
    _warm(upstream, options, git_log)
    mirror = next(options.cache_dir.glob("*.git"))
    (mirror / "refs" / "tags" / "v1.0").write_text(upstream.commits["c1"] + "\n")

    result = fetch([_felix(upstream)], options)["felix"]

    assert git_log.lines()
    assert result.commit == upstream.commits["c2"]
    assert (mirror / "refs" / "tags" / "v1.0").read_text().strip() == upstream.tag_objects["v1.0"]


def _stamp(options: FetchOptions) -> Path:
    return checkoutstamp.stamp_path(options.checkout_dir, "felix")


@pytest.mark.parametrize("hostile", ["garbage", "huge", "fifo", "directory", "forged", "other key", "symlink"])
def test_a_hostile_stamp_is_never_trusted_nor_followed(
    upstream: Upstream, options: FetchOptions, git_log: GitLog, tmp_path: Path, hostile: str
) -> None:
    checkout = _warm(upstream, options, git_log)
    stamp = _stamp(options)
    good = stamp.read_bytes()
    original = (checkout / "VERSION").read_bytes()
    _rewrite_keeping_times(checkout / "VERSION", b"Y" * len(original))  # what a trusted stamp would hide
    stamp.unlink()
    if hostile == "garbage":
        stamp.write_bytes(b"\x00{not json")
    elif hostile == "huge":
        stamp.write_bytes(good + b" " * (stamps.MAX_STAMP_BYTES + 1))
    elif hostile == "fifo":
        os.mkfifo(stamp)
    elif hostile == "directory":
        stamp.mkdir()
    elif hostile == "forged":  # our shape, the tree digest of the changed checkout, no key
        fields = json.loads(good)
        fields["tree"] = stamps.take(checkout, 0)[0]  # type: ignore[index]
        stamp.write_text(json.dumps(fields))
    elif hostile == "other key":  # signed by someone else's key
        (options.cache_dir / stamps.KEY_NAME).unlink()
        stamps._KEYS.clear()
        stamp.write_bytes(good)
    elif hostile == "symlink":  # a good stamp, reached through a link
        target = tmp_path / "elsewhere.json"
        target.write_bytes(good)
        stamp.symlink_to(target)

    fetch([_felix(upstream)], options)

    assert git_log.lines(), "git must decide"
    assert (checkout / "VERSION").read_bytes() == original
    assert stamp.is_file() and not stamp.is_symlink()  # replaced by a stamp of our own
    if hostile == "symlink":
        assert (tmp_path / "elsewhere.json").read_bytes() == good


def test_a_racily_clean_file_is_judged_by_its_content(
    upstream: Upstream, options: FetchOptions, git_log: GitLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file system whose timestamps cannot tell (as when a file is rewritten in the same
    # clock tick the stamp was taken): only the content hash of racy files can.
    monkeypatch.setattr(stamps, "fs_now", lambda directory: 0)  # every file is racy
    monkeypatch.setattr(stamps, "_line", lambda relative, info: relative + b"\n")  # stat data says nothing
    checkout = _warm(upstream, options, git_log)
    assert json.loads(_stamp(options).read_text())["racy"]
    fetch([_felix(upstream)], options)
    assert git_log.lines() == []  # unchanged content: still trusted

    (checkout / "VERSION").write_bytes(b"Z" * len((checkout / "VERSION").read_bytes()))
    fetch([_felix(upstream)], options)

    assert git_log.lines()
    assert (checkout / "VERSION").read_text() == "c2\n"


def test_the_signing_key_is_private_and_a_readable_one_is_replaced(options: FetchOptions) -> None:
    secret = stamps.key(options.cache_dir)
    path = options.cache_dir / stamps.KEY_NAME
    assert secret is not None and path.stat().st_mode & 0o777 == 0o600

    stamps._KEYS.clear()
    path.chmod(0o644)
    replaced = stamps.key(options.cache_dir)

    assert replaced is not None and replaced != secret
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_refresh_never_takes_the_stamp(upstream: Upstream, options: FetchOptions, git_log: GitLog) -> None:
    import dataclasses

    _warm(upstream, options, git_log)

    fetch([_felix(upstream)], dataclasses.replace(options, refresh=True))

    assert any(line.startswith("git ls-remote") or line.startswith("git fetch") for line in git_log.lines())


def test_a_discarded_checkout_is_made_again(upstream: Upstream, options: FetchOptions, git_log: GitLog) -> None:
    checkout = _warm(upstream, options, git_log)
    shutil.rmtree(checkout)

    result = fetch([_felix(upstream)], options)["felix"]

    assert git_log.lines()
    assert (result.path / "VERSION").read_text() == "c2\n"


def test_a_new_checkout_takes_the_mirrors_pack_through_index_pack_and_a_tampered_one_is_caught(
    upstream: Upstream, options: FetchOptions, git_log: GitLog, events: Events
) -> None:
    # The fixture is small: git would store its few objects loose rather than as a pack.
    (Path.home() / ".gitconfig").write_text("[transfer]\n\tunpackLimit = 1\n")
    fetch([_felix(upstream)], options)
    assert "git index-pack --stdin" in " ".join(git_log.lines())  # no fetch from the mirror
    shutil.rmtree(options.checkout_dir / "felix")
    mirror = next(options.cache_dir.glob("*.git"))
    (pack,) = (mirror / "objects" / "pack").glob("*.pack")
    pack.chmod(0o644)
    data = bytearray(pack.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 32] = bytes(32)  # same size, other bytes
    pack.write_bytes(bytes(data))

    result = fetch([_felix(upstream)], options, on_event=events)["felix"]

    assert result.commit == upstream.commits["c2"]
    assert (result.path / "VERSION").read_text() == "c2\n"
    assert any("damaged git objects" in message for message in events.messages("felix")), events.text()


def test_a_key_planted_as_a_symlink_is_replaced_and_its_target_left_alone(options: FetchOptions,
                                                                         tmp_path: Path) -> None:
    planted = tmp_path / "readable-by-all"
    planted.write_bytes(b"k" * stamps.KEY_BYTES)
    planted.chmod(0o600)
    options.cache_dir.mkdir(parents=True)
    (options.cache_dir / stamps.KEY_NAME).symlink_to(planted)
    stamps._KEYS.clear()

    secret = stamps.key(options.cache_dir)

    assert secret is not None and secret != b"k" * stamps.KEY_BYTES
    assert not (options.cache_dir / stamps.KEY_NAME).is_symlink()
    assert planted.read_bytes() == b"k" * stamps.KEY_BYTES


def test_what_a_killed_run_left_beside_the_stamps_is_swept(upstream: Upstream, options: FetchOptions,
                                                           git_log: GitLog) -> None:
    checkout = _warm(upstream, options, git_log)
    stamps_dir = _stamp(options).parent
    dead = 2 ** 22 + 12345  # above the default pid_max: no such process
    leftovers = [stamps_dir / f".stamp-probe-{dead}-00ff", stamps_dir / f".felix.json.tmp-{dead}-00ff"]
    for leftover in leftovers:
        leftover.write_text("")
    (checkout / "VERSION").write_text("changed\n")  # so that the stamp is written again

    fetch([_felix(upstream)], options)

    assert not any(leftover.exists() for leftover in leftovers)


def test_a_temporary_copy_a_killed_run_left_sends_only_its_repo_to_git(
    upstream: Upstream, options: FetchOptions, git_log: GitLog
) -> None:
    repos = _repos(upstream)
    fetch(repos, options)
    fetch(repos, options)
    leftover = options.checkout_dir / ".tmp~felix~k1ll3d"
    (leftover / "src").mkdir(parents=True)
    git_log.clear()

    fetch(repos, options)

    assert not leftover.exists()
    where = [re.search(r"\[([^\]]+)\] -> exit", line) for line in git_log.lines()]
    assert git_log.lines() and all(where), git_log.lines()
    assert {Path(m.group(1)).parent.name for m in where if m} == {"felix"}, git_log.lines()


def test_the_repos_with_leftovers_are_read_from_one_listing(tmp_path: Path) -> None:
    for name in (".tmp~felix~abc", ".tmp~node~", ".tmp~broken", "felix", ".stamps", "tmp~calicoctl~x"):
        (tmp_path / name).mkdir()

    assert checkoutstamp.left_behind(tmp_path) == frozenset({"felix", "node"})
    assert checkoutstamp.left_behind(tmp_path / "absent") == frozenset()
    (tmp_path / "file").write_text("")
    assert checkoutstamp.left_behind(tmp_path / "file") is None
