"""Pin verification: a ref that no longer names the pinned commit is a hard error."""

from __future__ import annotations

import dataclasses

import pytest

from orchestrator.errors import EXIT_BAD_INPUT
from orchestrator.sources import FetchFailed, FetchOptions, MovedRefError, fetch, resolve
from tests.helpers.gitrepos import RepoSpec, Upstream


def test_moved_tag_is_refused_with_both_shas(upstream: Upstream, options: FetchOptions) -> None:
    upstream.move_tag("v1.0", "c3")
    repo = RepoSpec(name="felix", url=upstream.url, ref="v1.0", commit=upstream.commits["c2"])

    with pytest.raises(FetchFailed) as caught:
        fetch([repo], options)

    error = caught.value.failures["felix"]
    assert isinstance(error, MovedRefError)
    message = str(caught.value)
    assert upstream.commits["c2"] in message
    assert upstream.commits["c3"] in message
    assert "the tag moved" in message
    assert "felix: tag 'v1.0'" in message
    assert (error.expected, error.actual) == (upstream.commits["c2"], upstream.commits["c3"])
    assert caught.value.exit_code == EXIT_BAD_INPUT
    assert not (options.checkout_dir / "felix").exists()


def test_branch_that_moved_past_its_pin_is_refused(upstream: Upstream, options: FetchOptions) -> None:
    new = upstream.advance("main")
    repo = RepoSpec(name="libcalico-go", url=upstream.url, ref="main", commit=upstream.commits["c4"])

    with pytest.raises(FetchFailed) as caught:
        fetch([repo], options)

    assert isinstance(caught.value.failures["libcalico-go"], MovedRefError)
    assert f"branch 'main' in {upstream.url} is at {new}" in str(caught.value)


def test_only_the_failing_repo_is_left_unchecked_out(upstream: Upstream, options: FetchOptions) -> None:
    upstream.move_tag("v1.0", "c3")
    good = RepoSpec(name="node", url=upstream.url, ref="v1.1", commit=upstream.commits["r1"])
    moved = RepoSpec(name="felix", url=upstream.url, ref="v1.0", commit=upstream.commits["c2"])

    with pytest.raises(FetchFailed) as caught:
        fetch([good, moved], dataclasses.replace(options, jobs=2))

    assert list(caught.value.failures) == ["felix"]
    assert (options.checkout_dir / "node" / "VERSION").read_text() == "r1\n"
    assert not (options.checkout_dir / "felix").exists()


def test_tag_moved_after_caching_is_caught_when_asked_to_refresh(upstream: Upstream, options: FetchOptions) -> None:
    repo = RepoSpec(name="felix", url=upstream.url, ref="v1.0", commit=upstream.commits["c2"])
    fetch([repo], options)
    upstream.move_tag("v1.0", "c3")

    # The pinned commit is cached: the build stays reproducible without asking.
    assert fetch([repo], options)["felix"].commit == upstream.commits["c2"]
    with pytest.raises(FetchFailed) as caught:
        fetch([repo], dataclasses.replace(options, refresh=True))
    assert isinstance(caught.value.failures["felix"], MovedRefError)


def test_resolve_returns_commits_without_checking_anything_out(upstream: Upstream, options: FetchOptions) -> None:
    repos = [
        RepoSpec(name="felix", url=upstream.url, ref="v1.0"),
        RepoSpec(name="cni-plugin", url=upstream.url, ref="v2.0-nobranch"),
        RepoSpec(name="libcalico-go", url=upstream.url, ref="release-1"),
    ]

    commits = resolve(repos, dataclasses.replace(options, jobs=3))

    assert commits == {
        "felix": upstream.commits["c2"],
        "cni-plugin": upstream.commits["n1"],
        "libcalico-go": upstream.commits["r2"],
    }
    assert not options.checkout_dir.exists()


def test_resolve_with_refresh_sees_an_unpinned_tag_that_moved(upstream: Upstream, options: FetchOptions) -> None:
    repo = RepoSpec(name="felix", url=upstream.url, ref="v1.0")
    assert resolve([repo], options) == {"felix": upstream.commits["c2"]}
    upstream.move_tag("v1.0", "c3")

    assert resolve([repo], options) == {"felix": upstream.commits["c2"]}
    assert resolve([repo], dataclasses.replace(options, refresh=True)) == {"felix": upstream.commits["c3"]}
