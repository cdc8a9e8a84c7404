"""A mirror's git config is judged by what it means, not by its bytes.

The config of every mirror and checkout was compared byte for byte with what this
version writes, so a mirror that another version of the orchestrator wrote (the first
one ran `git config` after `git init`), or whose config git itself reformatted, was
discarded and fetched again from the network, or made an offline build fail. Now it
is trusted when every setting in it is one the orchestrator writes, with the value it
writes, and rewritten to this version's bytes; any other key (what could make host git
run a program or read another repository) is refused as before.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import repoconfig
from orchestrator.sources import FetchFailed, FetchOptions, NotCachedError, fetch, mirror_name
from tests.helpers.gitrepos import RepoSpec, Upstream, build_upstream, git

# What this version writes, said otherwise: layout, order, case, comments, quotes,
# boolean spellings, a key alone, CRLF, a section given twice, a setting left out.
SAME_MIRROR = {
    "reformatted": (b"# written by hand\n[core]\n    bare = yes ; a bare mirror\n  repositoryFormatVersion=0\n"
                    b"[uploadpack]\n\tallowanysha1inwant\n[Core]\n\tFileMode = \"true\"\n\tlogAllRefUpdates = off\n"
                    b"\n[gc]\r\n\tautodetach = 0\r\n"),
    "reordered": b"[gc]\n\tautoDetach = false\n[uploadpack]\n\tallowAnySHA1InWant = true\n[core]\n\tbare = true\n",
    "first version": (b"[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n"
                      b"\tlogAllRefUpdates = false\n[gc]\n\tautoDetach = false\n[uploadpack]\n"
                      b"\tallowAnySHA1InWant = true\n"),
}
# Anything else is refused: each of these is what could make git run a program, read
# another repository's objects or config, or fetch from elsewhere; or a line outside the
# subset the orchestrator writes, which the parser must not guess at.
REFUSED_MIRROR = {
    "fsmonitor": (b"[core]\n\tfsmonitor = touch /tmp/x5-pwned\n", "it sets core.fsmonitor"),
    "hooksPath": (b"[core]\n\thooksPath = /tmp\n", "it sets core.hookspath"),
    "include": (b"[include]\n\tpath = /tmp/evil.cfg\n", "it sets include.path"),
    "includeIf": (b'[includeIf "gitdir:/"]\n\tpath = /tmp/evil.cfg\n', "it sets includeif.gitdir:/.path"),
    "filter": (b'[filter "lfs"]\n\tsmudge = touch /tmp/x5-pwned\n', "it sets filter.lfs.smudge"),
    "insteadOf": (b'[url "file:///tmp/evil"]\n\tinsteadOf = https://example.invalid/\n',
                  "it sets url.file:///tmp/evil.insteadof"),
    "remote": (b'[remote "origin"]\n\turl = file:///tmp/evil\n', "it sets remote.origin.url"),
    "old-style remote": (b"[remote.origin]\n\turl = file:///tmp/evil\n", "it sets remote.origin.url"),
    "worktree": (b"[core]\n\tworktree = /tmp\n", "it sets core.worktree"),
    "extension": (b"[core]\n\trepositoryformatversion = 1\n[extensions]\n\tobjectformat = sha256\n",
                  "it sets core.repositoryformatversion to 1"),
    "not bare": (b"[core]\n\tbare = false\n", "it sets core.bare to false"),
    "a checkout's setting": (b"[core]\n\tsshCommand = touch /tmp/x5-pwned\n", "it sets core.sshcommand"),
    "same line": (b"[core] fsmonitor = touch /tmp/x5-pwned\n", "line 1 is not one the orchestrator writes"),
    "continuation": (b"[core]\n\tbare = true\\\n\tfsmonitor\n", "line 2 (core.bare) is not one"),
    "escape": (b'[core]\n\tbare = "tr\\ue"\n', "line 2 (core.bare) is not one"),
    "number suffix": (b"[core]\n\trepositoryformatversion = 0k\n", "core.repositoryformatversion to '0k'"),
    "no section": (b"bare = true\n", "line 1 is not one the orchestrator writes"),
    "not ascii": ("[core]\n\tbare = true # caf\u00e9\n".encode(), "it holds bytes that are not ASCII"),
    "control": (b"[core]\n\tbare = true\x1b[2J\n", "line 2 (core.bare) is not one"),
}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    return build_upstream(tmp_path_factory.mktemp("upstream"))


class Events(list[str]):
    def __call__(self, name: str, message: str) -> None:
        self.append(message)


def fetched_mirror(upstream: Upstream, tmp_path: Path) -> tuple[FetchOptions, Path]:
    options = FetchOptions(cache_dir=tmp_path / "cache", checkout_dir=tmp_path / "ws" / ".build" / "src",
                           backoff=0.0)
    fetch([RepoSpec(name="felix", url=upstream.url, ref="v1.0")], options)
    return options, options.cache_dir / mirror_name(upstream.url)


def offline_fetch(upstream: Upstream, options: FetchOptions) -> Events:
    events = Events()
    offline = FetchOptions(cache_dir=options.cache_dir, checkout_dir=options.checkout_dir, offline=True)
    fetch([RepoSpec(name="felix", url=upstream.url, ref="v1.0")], offline, on_event=events)
    return events


@pytest.mark.parametrize("form", list(SAME_MIRROR))
def test_a_mirror_config_that_means_what_ours_means_is_kept_and_made_ours(
        form: str, upstream: Upstream, tmp_path: Path) -> None:
    options, mirror = fetched_mirror(upstream, tmp_path)
    (mirror / "config").write_bytes(SAME_MIRROR[form])

    events = offline_fetch(upstream, options)  # fails if the mirror is discarded: nothing to fetch it from

    assert not [event for event in events if "not trusting" in event or "discarding" in event], events
    assert (mirror / "config").read_bytes() == repoconfig.MIRROR


def test_a_mirror_made_by_the_first_version_with_git_config_is_kept(upstream: Upstream, tmp_path: Path) -> None:
    """The first version ran `git init --bare` (with git's template) and `git config`."""
    options, mirror = fetched_mirror(upstream, tmp_path)
    fresh = tmp_path / "fresh.git"
    git("init", "--quiet", "--bare", str(fresh))
    for key, value in (("gc.autoDetach", "false"), ("uploadpack.allowAnySHA1InWant", "true"),
                       ("core.logAllRefUpdates", "false")):
        git("config", key, value, git_dir=fresh)
    (mirror / "config").write_bytes((fresh / "config").read_bytes())

    events = offline_fetch(upstream, options)

    assert not [event for event in events if "not trusting" in event], events
    assert (mirror / "config").read_bytes() == repoconfig.MIRROR


@pytest.mark.parametrize("attack", list(REFUSED_MIRROR))
def test_a_mirror_config_with_anything_else_is_refused(attack: str, tmp_path: Path) -> None:
    text, why = REFUSED_MIRROR[attack]
    mirror = tmp_path / "mirror.git"
    mirror.mkdir()
    (mirror / "config").write_bytes(text + repoconfig.MIRROR)  # one bad line before all of ours

    problem = repoconfig.trust(mirror, repoconfig.MIRROR)

    assert problem is not None and problem.startswith("its git config is not the one the orchestrator wrote: ")
    assert why in problem, problem
    assert (mirror / "config").read_bytes() == text + repoconfig.MIRROR, "a refused config is left as it was"


def test_a_refused_mirror_config_is_never_used_offline(upstream: Upstream, tmp_path: Path) -> None:
    options, mirror = fetched_mirror(upstream, tmp_path)
    with (mirror / "config").open("ab") as config:
        config.write(b"[core]\n\tfsmonitor = touch /tmp/x5-pwned\n")

    with pytest.raises(FetchFailed) as failure:
        offline_fetch(upstream, options)

    assert isinstance(failure.value.failures["felix"], NotCachedError)
    assert not Path("/tmp/x5-pwned").exists()


@pytest.mark.parametrize("kind", ["MIRROR", "CHECKOUT"])
def test_every_setting_the_orchestrator_writes_is_one_the_parser_knows(kind: str, tmp_path: Path) -> None:
    ours: bytes = getattr(repoconfig, kind)
    git_dir = tmp_path / "repo.git"
    git_dir.mkdir()
    (git_dir / "config").write_bytes(ours.replace(b"\t", b"    ").replace(b" = ", b"="))

    assert repoconfig.trust(git_dir, ours) is None
    assert (git_dir / "config").read_bytes() == ours


def test_a_checkout_config_may_not_hold_the_mirrors_settings(tmp_path: Path) -> None:
    checkout = tmp_path / ".git"
    checkout.mkdir()
    (checkout / "config").write_bytes(repoconfig.CHECKOUT + b"[uploadpack]\n\tallowAnySHA1InWant = true\n")
    assert repoconfig.trust(checkout, repoconfig.CHECKOUT) == \
        "its git config is not the one the orchestrator wrote: it sets uploadpack.allowanysha1inwant"


@pytest.mark.parametrize("kind", ["symlink", "fifo", "huge"])
def test_a_config_that_is_no_small_regular_file_is_refused_unread(kind: str, tmp_path: Path) -> None:
    import os

    mirror = tmp_path / "mirror.git"
    mirror.mkdir()
    config = mirror / "config"
    if kind == "symlink":
        (tmp_path / "elsewhere").write_bytes(repoconfig.MIRROR)
        config.symlink_to(tmp_path / "elsewhere")
    elif kind == "fifo":
        os.mkfifo(config)  # no writer: reading would hang
    else:
        config.write_bytes(repoconfig.MIRROR + b"# " + b"x" * 70000 + b"\n")

    problem = repoconfig.trust(mirror, repoconfig.MIRROR)

    assert problem is not None and ("not a regular file" in problem or "larger than" in problem), problem
