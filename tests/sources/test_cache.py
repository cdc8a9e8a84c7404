"""No network when nothing changed; offline runs; reuse of mirrors and checkouts."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from orchestrator.sources import FetchFailed, FetchOptions, NotCachedError, fetch, mirror_name
from tests.helpers.gitrepos import RepoSpec, Upstream, git
from tests.sources.conftest import Events


def _pinned(upstream: Upstream) -> list[RepoSpec]:
    return [
        RepoSpec(name="felix", url=upstream.url, ref="v1.0", commit=upstream.commits["c2"]),
        RepoSpec(name="cni-plugin", url=upstream.url, ref="v2.0-nobranch", commit=upstream.commits["n1"]),
        RepoSpec(name="libcalico-go", url=upstream.url, ref=upstream.commits["c3"]),
        RepoSpec(name="libcalico", url=upstream.url, ref="v0.9"),
        RepoSpec(name="node", url=upstream.url, ref="release-1", commit=upstream.commits["r2"]),
    ]


def test_second_fetch_of_cached_repos_makes_no_network_call(
    upstream: Upstream, options: FetchOptions, events: Events, network_calls: list[tuple[str, ...]]
) -> None:
    repos = _pinned(upstream)
    first = fetch(repos, dataclasses.replace(options, jobs=3))
    assert network_calls
    network_calls.clear()
    # Any attempt to reach the remote would now fail loudly.
    shutil.move(upstream.path, upstream.path.with_name("gone.git"))

    second = fetch(repos, dataclasses.replace(options, jobs=3), on_event=events)

    assert network_calls == []
    assert {name: c.commit for name, c in second.items()} == {name: c.commit for name, c in first.items()}
    assert not any(c.fetched for c in second.values())
    cached = [name for name, message in events.calls if message == "cached, no network"]
    assert sorted(cached) == sorted(repo.name for repo in repos)
    assert not [message for message in events.messages() if "fetching" in message]


def test_unpinned_branch_is_asked_for_again_and_follows_the_remote(upstream: Upstream, options: FetchOptions) -> None:
    repo = RepoSpec(name="felix", url=upstream.url, ref="main")
    assert fetch([repo], options)["felix"].commit == upstream.commits["c4"]
    new = upstream.advance("main")

    checkout = fetch([repo], options)["felix"]

    assert checkout.commit == new
    assert checkout.fetched is True


def test_unchanged_unpinned_branch_costs_one_ls_remote_and_no_fetch(
    upstream: Upstream, options: FetchOptions, network_calls: list[tuple[str, ...]]
) -> None:
    repo = RepoSpec(name="felix", url=upstream.url, ref="main")
    fetch([repo], options)
    network_calls.clear()

    fetch([repo], options)

    assert [call[0] for call in network_calls] == ["ls-remote"]


def test_offline_succeeds_when_everything_is_cached(upstream: Upstream, options: FetchOptions) -> None:
    repos = _pinned(upstream)
    fetch(repos, options)
    shutil.rmtree(upstream.path)

    checkouts = fetch(repos, dataclasses.replace(options, offline=True))

    assert checkouts["felix"].commit == upstream.commits["c2"]
    assert not any(c.fetched for c in checkouts.values())


def test_offline_lists_exactly_the_repos_missing_from_the_cache(
    upstream: Upstream, options: FetchOptions, network_calls: list[tuple[str, ...]]
) -> None:
    cached = RepoSpec(name="felix", url=upstream.url, ref="v1.0", commit=upstream.commits["c2"])
    fetch([cached], options)
    network_calls.clear()
    missing_tag = RepoSpec(name="node", url=upstream.url, ref="v1.1")
    missing_commit = RepoSpec(name="libcalico-go", url=upstream.url, ref=upstream.commits["c3"])
    other_pin = RepoSpec(name="calicoctl", url=upstream.url, ref="v1.0", commit=upstream.commits["c3"])

    with pytest.raises(FetchFailed) as caught:
        fetch([cached, missing_tag, missing_commit, other_pin], dataclasses.replace(options, offline=True))

    assert caught.value.missing == ["node", "libcalico-go", "calicoctl"]
    assert all(isinstance(e, NotCachedError) for e in caught.value.failures.values())
    message = str(caught.value)
    assert "not in the cache (offline): node, libcalico-go, calicoctl" in message
    assert f"the cached tag v1.0 is at {upstream.commits['c2']}, not the pinned {upstream.commits['c3']}" in message
    assert network_calls == []
    assert (options.checkout_dir / "felix").is_dir()


def test_offline_takes_a_cached_branch_and_says_it_may_be_stale(
    upstream: Upstream, options: FetchOptions, events: Events
) -> None:
    repo = RepoSpec(name="felix", url=upstream.url, ref="main")
    fetch([repo], options)
    upstream.advance("main")

    checkout = fetch([repo], dataclasses.replace(options, offline=True), on_event=events)

    assert checkout["felix"].commit == upstream.commits["c4"]
    assert any("may be behind the remote" in m for m in events.messages("felix"))


def test_repos_sharing_a_url_share_one_mirror(upstream_template: Upstream, options: FetchOptions) -> None:
    url = upstream_template.url
    repos = [RepoSpec(name=f"r{i}", url=url, ref=ref) for i, ref in enumerate(["v1.0", "v1.1", "main", "v0.9"])]

    fetch(repos, dataclasses.replace(options, jobs=4))

    assert sorted(p.name for p in options.cache_dir.iterdir() if p.is_dir()) == [mirror_name(url)]


def test_reused_checkout_loses_every_stray_file_and_change(
    upstream_template: Upstream, options: FetchOptions, events: Events
) -> None:
    repo = RepoSpec(name="felix", url=upstream_template.url, ref="v1.0")
    path = fetch([repo], options)["felix"].path
    (path / "VERSION").write_text("edited\n")
    (path / "c1").unlink()
    (path / "stray.txt").write_text("left by a build\n")
    (path / "main.o").write_text("ignored build output\n")
    (path / "bin" / "nested").mkdir(parents=True)
    (path / "bin" / "nested" / "felix").write_text("binary\n")
    git("init", "--quiet", cwd=path / "bin" / "nested")

    fetch([repo], options, on_event=events)

    assert events.messages() == ["cached, no network"]  # reused, not rebuilt
    assert sorted(p.name for p in path.iterdir()) == [".git", ".gitignore", "VERSION", "c1", "c2"]
    assert (path / "VERSION").read_text() == "c2\n"
    assert git("status", "--porcelain", "--ignored", cwd=path) == ""


def test_checkout_follows_a_changed_pin(upstream_template: Upstream, options: FetchOptions) -> None:
    fetch([RepoSpec(name="felix", url=upstream_template.url, ref="v1.1")], options)

    checkout = fetch([RepoSpec(name="felix", url=upstream_template.url, ref="v0.9")], options)["felix"]

    assert git("rev-parse", "HEAD", cwd=checkout.path) == upstream_template.commits["c1"]
    assert sorted(p.name for p in checkout.path.iterdir()) == [".git", ".gitignore", "VERSION", "c1"]
