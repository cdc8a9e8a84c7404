"""`clean --cache` in one workspace never takes the mirrors other workspaces use.

The mirror cache ($XDG_CACHE_HOME/orchestrator/git) is shared by every workspace and
project of the user. `clean --cache` removed every mirror the manifest it was given does
not name: cleaning the demo (or any other project) deleted the mirrors of the real
release, which then had to be fetched again from the network, or failed offline. Now a
mirror the manifest does not name is removed only when no fetch used it for
``--unused-for`` days (default 30): each use stamps the mirror, and a mirror written by
an older version (no stamp) is judged by when git last changed it, never removed for the
stamp's absence. A mirror whose lock a live run holds, or whose lock record names a live
run, is never removed.
"""

from __future__ import annotations

import fcntl
import os
import re
import stat
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator import housekeeping, mirroruse, procs
from orchestrator.sources import FetchOptions, fetch, mirror_name
from tests.helpers.cli import BIN, run_cli
from tests.helpers.gitrepos import RepoSpec, Upstream, build_upstream
from tests.reliability.sources_helpers import write_manifest

DAY = 86400.0
OTHER_URL = "https://example.invalid/typha.git"  # what the cleaning workspace's manifest names


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    return build_upstream(tmp_path_factory.mktemp("upstream"))


def orchestrator(workspace: Path, cache_home: Path, *args: str) -> tuple[int, str]:
    workspace.mkdir(parents=True, exist_ok=True)
    result = run_cli(*args, "--workspace", str(workspace), program="orchestrator", cwd=workspace,
                     env={"XDG_CACHE_HOME": str(cache_home)})
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout + result.stderr


def clean_elsewhere(tmp_path: Path, cache_home: Path, *args: str) -> tuple[int, str]:
    """`clean --cache` from a second workspace whose manifest names another repository."""
    other = write_manifest(tmp_path / "other.yaml", {"typha": (OTHER_URL, "v1.0")})
    return orchestrator(tmp_path / "second", cache_home, "clean", "--cache", "--manifest", str(other), *args)


def age(mirror: Path, days: float) -> None:
    """Make every timestamp clean may look at ``days`` old (a mirror last used then)."""
    when = time.time() - days * DAY
    for entry in [mirror / mirroruse.STAMP, mirror / "FETCH_HEAD", mirror]:
        if os.path.lexists(entry):
            os.utime(entry, (when, when), follow_symlinks=False)


def fake_mirror(cache: Path, url: str, *, days: float | None = None) -> Path:
    mirror = cache / mirror_name(url)
    (mirror / "objects").mkdir(parents=True)
    (mirror / "HEAD").write_text("ref: refs/heads/main\n")
    if days is not None:
        age(mirror, days)
    return mirror


def test_clean_cache_keeps_a_mirror_another_workspace_just_fetched(upstream: Upstream, tmp_path: Path) -> None:
    cache_home = tmp_path / "cache-home"
    first = write_manifest(tmp_path / "first.yaml", {"felix": (upstream.url, "v1.0")})
    code, out = orchestrator(tmp_path / "first", cache_home, "fetch", "--all", "--manifest", str(first))
    assert code == 0, out
    mirror = cache_home / "orchestrator" / "git" / mirror_name(upstream.url)

    code, out = clean_elsewhere(tmp_path, cache_home)

    assert code == 0, out
    assert mirror.is_dir(), "the mirror another workspace uses was removed"
    assert re.search(rf"kept \S*{re.escape(mirror.name)}  \(used today; not named by this manifest\)", out), out
    assert "nothing to remove" in out
    # ... and the other workspace still needs no network: its mirror is intact.
    code, out = orchestrator(tmp_path / "first", cache_home, "fetch", "--all", "--offline", "--manifest", str(first))
    assert code == 0, out


def test_a_cached_fetch_records_its_use_too(upstream: Upstream, tmp_path: Path) -> None:
    options = FetchOptions(cache_dir=tmp_path / "cache", checkout_dir=tmp_path / "ws" / ".build" / "src")
    repo = RepoSpec(name="felix", url=upstream.url, ref="v1.0")
    fetch([repo], options)
    mirror = options.cache_dir / mirror_name(upstream.url)
    age(mirror, 40)

    fetch([repo], options)  # answered from the mirror: no network, but a use all the same

    assert time.time() - (mirror / mirroruse.STAMP).lstat().st_mtime < 600
    assert housekeeping.remove([(mirror, housekeeping.MIRROR)], roots=[options.cache_dir], dry_run=True)[0].kept


def test_a_mirror_unused_for_longer_than_the_limit_is_removed_and_one_used_since_is_kept(tmp_path: Path) -> None:
    cache_home = tmp_path / "cache-home"
    cache = cache_home / "orchestrator" / "git"
    stale = fake_mirror(cache, "https://example.invalid/stale.git", days=45)
    (stale / mirroruse.STAMP).touch()
    age(stale, 45)
    recent = fake_mirror(cache, "https://example.invalid/recent.git", days=10)
    named = fake_mirror(cache, OTHER_URL, days=400)

    code, out = clean_elsewhere(tmp_path, cache_home)

    assert code == 0, out
    assert not stale.exists() and recent.is_dir() and named.is_dir(), out
    assert re.search(rf"removed \S*{stale.name}  \(mirror of a repository the manifest does not name; "
                     r"unused for 45 days, ", out), out
    assert re.search(rf"kept \S*{recent.name}  \(changed 10 days ago, no use recorded; not named by this manifest\)",
                     out), out
    assert "freed" in out and "in 1 place" in out

    code, out = clean_elsewhere(tmp_path, cache_home, "--unused-for", "5")
    assert code == 0 and not recent.exists(), out


def test_unused_for_is_read_as_days_and_a_bad_value_is_a_usage_error(tmp_path: Path) -> None:
    cache_home = tmp_path / "cache-home"
    mirror = fake_mirror(cache_home / "orchestrator" / "git", "https://example.invalid/old.git", days=45)

    code, out = clean_elsewhere(tmp_path, cache_home, "--unused-for=60", "--dry-run")
    assert code == 0 and "kept" in out and "would remove" not in out, out
    code, out = clean_elsewhere(tmp_path, cache_home, "--unused-for=0", "--dry-run")
    assert code == 0 and "would remove" in out and mirror.is_dir(), out
    for bad in ("-1", "abc", "1.5", "30d"):
        code, out = clean_elsewhere(tmp_path, cache_home, f"--unused-for={bad}")
        assert code == 2 and "--unused-for: " in out, (bad, out)
    code, out = orchestrator(tmp_path / "second", cache_home, "clean", "--unused-for", "3")
    assert code == 2 and "--unused-for" in out and "--cache" in out, out
    assert mirror.is_dir()


def test_the_help_shows_the_flag_with_its_unit() -> None:
    result = run_cli("--help", "clean", program="orchestrator")
    assert "--unused-for=DAYS" in result.stdout and "--cache-dir=DIR" in result.stdout, result.stdout


def test_a_mirror_without_a_stamp_is_judged_by_when_git_last_wrote_it(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    mirror = fake_mirror(cache, "https://example.invalid/old.git", days=90)
    (mirror / "FETCH_HEAD").write_text("0" * 40 + "\t\tbranch 'main'\n")  # a fetch 2 days ago
    age(mirror, 90)
    os.utime(mirror / "FETCH_HEAD", (time.time() - 2 * DAY,) * 2)

    [kept] = housekeeping.remove([(mirror, housekeeping.MIRROR)], roots=[cache])

    assert kept.kept and mirror.is_dir()
    assert kept.what == "changed 2 days ago, no use recorded; not named by this manifest"


def test_an_old_mirror_whose_lock_a_fetch_holds_is_kept(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    mirror = fake_mirror(cache, "https://example.invalid/busy.git", days=90)
    fd = os.open(cache / f"{mirror.name}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        [kept] = housekeeping.remove([(mirror, housekeeping.MIRROR)], roots=[cache])
    finally:
        os.close(fd)
    assert kept.kept and mirror.is_dir() and "in use by a running fetch" in kept.what


def test_an_old_mirror_whose_lock_record_names_a_live_run_is_kept(tmp_path: Path) -> None:
    """The lock file was deleted and made again under a running fetch (by hand, or by a
    tool sweeping the cache): the flock is free, but the record says who still works."""
    cache = tmp_path / "cache"
    mirror = fake_mirror(cache, "https://example.invalid/busy.git", days=90)
    parent = procs.Owner(pid=os.getppid(), started=procs.start_time(os.getppid()), token="0" * 32,
                         command="orchestrator fetch", since=time.time())
    procs.write_owner(cache / f"{mirror.name}.lock.owner", parent)

    [kept] = housekeeping.remove([(mirror, housekeeping.MIRROR)], roots=[cache], unused_days=0)

    assert kept.kept and mirror.is_dir(), kept
    assert f"in use by pid {parent.pid}" in kept.what


def test_a_leftover_of_a_fetch_that_is_running_is_kept(tmp_path: Path) -> None:
    """A fetch makes a new mirror in ``.tmp~<mirror>~*`` under the mirror's lock, then
    renames it into place: removing it meanwhile failed that fetch."""
    cache = tmp_path / "cache"
    name = mirror_name("https://example.invalid/new.git")
    temp = cache / f".tmp~{name}~x1y2"
    (temp / "objects").mkdir(parents=True)
    fd = os.open(cache / f"{name}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        [kept] = housekeeping.remove(housekeeping.cache_paths(cache, []), roots=[cache])
    finally:
        os.close(fd)
    assert kept.kept and temp.is_dir(), kept

    [removed] = housekeeping.remove(housekeeping.cache_paths(cache, []), roots=[cache])
    assert not removed.kept and not temp.exists()


def test_a_path_gone_by_the_time_clean_reaches_it_is_no_error(tmp_path: Path) -> None:
    """A fetch sweeps its mirror's leftovers, and another clean removes what it lists too:
    what vanished between the listing and the removal is simply gone (here the same path
    twice: the second time, it is gone)."""
    cache = tmp_path / "cache"
    temp = cache / ".tmp~gone.git~abc"
    (temp / "objects").mkdir(parents=True)
    found = housekeeping.cache_paths(cache, [])

    removed = housekeeping.remove(found + found, roots=[cache])

    assert [item.path for item in removed] == [temp] and not temp.exists()


# Attacks on the stamp itself: the cache is writable by others.

def plant(stamp: Path, kind: str, outside: Path) -> None:
    if kind == "symlink":  # to a file used a moment ago: must not count, nor be written through
        outside.write_text("precious\n")
        stamp.symlink_to(outside)
    elif kind == "directory":
        (stamp / "inner").mkdir(parents=True)
        (stamp / "inner" / "link").symlink_to(outside.parent)
    elif kind == "fifo":
        os.mkfifo(stamp)  # no writer: reading it would hang
    else:
        with stamp.open("wb") as file:
            file.truncate(8 << 30)  # sparse; reading it would take a while


@pytest.mark.parametrize("kind", ["symlink", "directory", "fifo", "huge"])
def test_clean_never_reads_or_follows_a_planted_stamp(kind: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    mirror = fake_mirror(cache, "https://example.invalid/planted.git")
    outside = tmp_path / "outside"
    outside.mkdir()
    plant(mirror / mirroruse.STAMP, kind, outside / "recent")
    age(mirror, 90)

    [removed] = housekeeping.remove(housekeeping.cache_paths(cache, []), roots=[cache])

    assert not removed.kept and not mirror.exists(), removed
    if kind != "symlink":  # a regular (huge) stamp is a stamp: its mtime counts, its bytes are never read
        assert removed.what.startswith(housekeeping.MIRROR)
    assert sorted(p.name for p in outside.iterdir()) == (["recent"] if kind == "symlink" else [])
    if kind == "symlink":
        assert (outside / "recent").read_text() == "precious\n"


@pytest.mark.parametrize("kind", ["symlink", "directory", "fifo", "huge"])
def test_a_fetch_replaces_a_planted_stamp_and_writes_through_nothing(
        kind: str, upstream: Upstream, tmp_path: Path) -> None:
    options = FetchOptions(cache_dir=tmp_path / "cache", checkout_dir=tmp_path / "ws" / ".build" / "src")
    repo = RepoSpec(name="felix", url=upstream.url, ref="v1.0")
    fetch([repo], options)
    mirror = options.cache_dir / mirror_name(upstream.url)
    stamp = mirror / mirroruse.STAMP
    stamp.unlink()
    outside = tmp_path / "outside"
    outside.mkdir()
    plant(stamp, kind, outside / "recent")

    fetch([repo], options)

    info = stamp.lstat()
    assert stat.S_ISREG(info.st_mode) and info.st_size < 4096 and time.time() - info.st_mtime < 600
    assert (outside / "recent").read_text() == "precious\n" if kind == "symlink" else True
    assert not list(mirror.glob(f".{mirroruse.STAMP}.tmp-*"))


def test_a_warm_fetch_touches_only_a_stamp_of_its_own(upstream: Upstream, tmp_path: Path) -> None:
    """The warm path (no lock, no git) sets the stamp's mtime in place; a stamp hard-linked
    to a file elsewhere, even one of the stamp's very size, is replaced, not touched."""
    options = FetchOptions(cache_dir=tmp_path / "cache", checkout_dir=tmp_path / "ws" / ".build" / "src")
    repo = RepoSpec(name="felix", url=upstream.url, ref="v1.0")
    fetch([repo], options)
    mirror = options.cache_dir / mirror_name(upstream.url)
    stamp = mirror / mirroruse.STAMP
    outside = tmp_path / "outside"
    outside.write_bytes(stamp.read_bytes())
    os.utime(outside, (1_000_000, 1_000_000))
    stamp.unlink()
    os.link(outside, stamp)

    fetch([repo], options)

    assert outside.stat().st_mtime == 1_000_000 and outside.stat().st_nlink == 1
    assert time.time() - stamp.lstat().st_mtime < 600
    age(mirror, 40)  # the stamp now its own file: the next warm fetch touches it in place
    inode = stamp.lstat().st_ino

    fetch([repo], options)

    assert stamp.lstat().st_ino == inode and time.time() - stamp.lstat().st_mtime < 600


def test_a_last_use_dated_in_the_future_keeps_the_mirror_and_says_why(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    ahead = fake_mirror(cache, "https://example.invalid/ahead.git")
    (ahead / mirroruse.STAMP).touch()
    year = time.time() + 365 * DAY
    os.utime(ahead / mirroruse.STAMP, (year, year))
    skewed = fake_mirror(cache, "https://example.invalid/skewed.git", days=90)
    (skewed / mirroruse.STAMP).touch()
    os.utime(skewed / mirroruse.STAMP, (time.time() + 3600,) * 2)  # a clock an hour fast: "now"

    found = {item.path.name: item for item in housekeeping.remove(housekeeping.cache_paths(cache, []),
                                                                   roots=[cache], unused_days=0)}

    assert found[ahead.name].kept and ahead.is_dir()
    assert found[ahead.name].what.startswith("last use stamped 364 days in the future (a clock set wrong?)")
    assert not skewed.exists() and "unused for less than a day" in found[skewed.name].what
    kept = housekeeping.remove([(ahead, housekeeping.MIRROR)], roots=[cache], unused_days=30)
    assert kept[0].kept


def test_a_use_between_the_listing_and_the_removal_keeps_the_mirror(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    mirror = fake_mirror(cache, "https://example.invalid/raced.git", days=90)
    found = housekeeping.cache_paths(cache, [])
    mirroruse.mark(mirror)  # a fetch elsewhere took the lock, used the mirror, let go

    [kept] = housekeeping.remove(found, roots=[cache])

    assert kept.kept and mirror.is_dir() and kept.what == "used today; not named by this manifest"


def test_two_cleans_of_one_cache_at_once_remove_each_mirror_once(tmp_path: Path) -> None:
    cache_home = tmp_path / "cache-home"
    cache = cache_home / "orchestrator" / "git"
    mirrors = [fake_mirror(cache, f"https://example.invalid/m{i}.git") for i in range(30)]
    for mirror in mirrors:
        for name in range(40):
            (mirror / "objects" / f"f{name}").write_bytes(b"x" * 1000)
        age(mirror, 90)
    other = write_manifest(tmp_path / "other.yaml", {"typha": (OTHER_URL, "v1.0")})
    runs = []
    for workspace in ("a", "b"):
        (tmp_path / workspace).mkdir()
        runs.append(subprocess.Popen([str(BIN / "orchestrator"), "clean", "--cache", "--manifest", str(other),
                                      "--workspace", str(tmp_path / workspace)], cwd=tmp_path / workspace,
                                     env={**os.environ, "XDG_CACHE_HOME": str(cache_home)}, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outputs = [run.communicate(timeout=120) for run in runs]

    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0 and "Traceback" not in err, (out, err)
    text = "".join(out for out, _ in outputs)
    assert not any(mirror.exists() for mirror in mirrors), text
    assert not list(cache.glob(".tmp~*")), text
    for mirror in mirrors:
        assert len(re.findall(rf"removed \S*{mirror.name} ", text)) == 1, text
