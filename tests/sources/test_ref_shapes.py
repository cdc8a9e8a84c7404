"""Every ref shape of the Calico v3.2 pins, fetched and checked out."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator.errors import EXIT_BAD_INPUT
from orchestrator.sources import (
    AbbreviatedCommitError,
    CommitNotFoundError,
    FetchFailed,
    FetchOptions,
    PinConflictError,
    RefNotFoundError,
    fetch,
    mirror_name,
)
from tests.helpers.gitrepos import RepoSpec, Upstream, git
from tests.sources.conftest import Events

# (ref, label of the commit it must resolve to); "c3" stands for c3's full id.
SHAPES = [
    pytest.param("v1.0", "c2", id="annotated-tag"),
    pytest.param("v0.9", "c1", id="lightweight-tag"),
    pytest.param("v2.0-nobranch", "n1", id="tag-on-no-branch"),
    pytest.param("v1.1", "r1", id="tag-only-on-release-branch"),
    pytest.param("release-1", "r2", id="non-default-branch"),
    pytest.param("main", "c4", id="default-branch"),
    pytest.param("c3", "c3", id="full-commit-without-tag"),
    pytest.param("deadbeef", "r2", id="tag-named-like-a-short-sha"),
    pytest.param("both", "c1", id="tag-wins-over-branch-of-same-name"),
]


def _ref(upstream: Upstream, ref: str) -> str:
    return upstream.commits.get(ref, ref)


def _fail(repos: list[RepoSpec], options: FetchOptions) -> FetchFailed:
    with pytest.raises(FetchFailed) as caught:
        fetch(repos, options)
    return caught.value


@pytest.mark.parametrize("pinned", [True, False], ids=["pinned", "unpinned"])
@pytest.mark.parametrize(("ref", "label"), SHAPES)
def test_every_ref_shape_is_checked_out_detached_at_its_commit(
    upstream_template: Upstream, options: FetchOptions, ref: str, label: str, pinned: bool
) -> None:
    expected = upstream_template.commits[label]
    repo = RepoSpec(
        name="felix", url=upstream_template.url, ref=_ref(upstream_template, ref), commit=expected if pinned else None
    )

    checkout = fetch([repo], options)["felix"]

    assert checkout.commit == expected
    assert checkout.commit_time == upstream_template.times[label]
    assert checkout.fetched is True
    assert checkout.path == options.checkout_dir.absolute() / "felix"
    assert (checkout.path / "VERSION").read_text() == f"{label}\n"
    assert git("rev-parse", "HEAD", cwd=checkout.path) == expected
    detached = subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=checkout.path, capture_output=True)
    assert detached.returncode == 1
    assert git("status", "--porcelain", "--ignored", cwd=checkout.path) == ""


def test_annotated_tag_is_peeled_and_kept_in_the_checkout_for_git_describe(
    upstream_template: Upstream, options: FetchOptions
) -> None:
    repo = RepoSpec(name="felix", url=upstream_template.url, ref="v1.1", commit=upstream_template.commits["r1"])

    checkout = fetch([repo], options)["felix"]

    assert git("rev-parse", "refs/tags/v1.1", cwd=checkout.path) == upstream_template.tag_objects["v1.1"]
    assert git("describe", cwd=checkout.path) == "v1.1"


def test_mirror_holds_only_the_pinned_commit_not_the_history(
    upstream_template: Upstream, options: FetchOptions
) -> None:
    repo = RepoSpec(name="felix", url=upstream_template.url, ref="main", commit=upstream_template.commits["c4"])

    fetch([repo], options)

    mirror = options.cache_dir / mirror_name(upstream_template.url)
    assert (mirror / "shallow").read_text().split() == [upstream_template.commits["c4"]]
    assert git("rev-list", "--count", "refs/heads/main", git_dir=mirror) == "1"


def test_full_commit_over_protocol_v2_needs_no_fallback(
    upstream_template: Upstream, options: FetchOptions, events: Events
) -> None:
    # git 2.39's upload-pack hands out any object under v2, advertised or not.
    repo = RepoSpec(name="libcalico-go", url=upstream_template.url, ref=upstream_template.commits["c3"])

    fetch([repo], options, on_event=events)

    assert not [m for m in events.messages() if "refused" in m]


def test_abbreviated_commit_is_refused_with_advice_to_pin_the_full_id(
    upstream_template: Upstream, options: FetchOptions
) -> None:
    short = upstream_template.commits["c3"][:10]

    failed = _fail([RepoSpec(name="felix", url=upstream_template.url, ref=short)], options)

    error = failed.failures["felix"]
    assert isinstance(error, AbbreviatedCommitError)
    assert "abbreviated commit" in str(error)
    assert "pin the full 40-hex commit" in str(error)
    assert failed.exit_code == EXIT_BAD_INPUT
    assert not (options.checkout_dir / "felix").exists()


def test_missing_ref_names_the_ref_and_url(upstream_template: Upstream, options: FetchOptions) -> None:
    failed = _fail([RepoSpec(name="felix", url=upstream_template.url, ref="v9.9")], options)

    error = failed.failures["felix"]
    assert isinstance(error, RefNotFoundError)
    assert f"felix: ref 'v9.9' not found in {upstream_template.url}; check the tag/branch name" in str(error)
    assert failed.exit_code == EXIT_BAD_INPUT


def test_commit_the_server_does_not_have_is_refused(upstream_template: Upstream, options: FetchOptions) -> None:
    missing = "0123456789abcdef" * 2 + "01234567"

    failed = _fail([RepoSpec(name="felix", url=upstream_template.url, ref=missing)], options)

    error = failed.failures["felix"]
    assert isinstance(error, CommitNotFoundError)
    assert f"commit {missing} not found in {upstream_template.url}" in str(error)


@pytest.mark.parametrize(
    ("ref", "commit", "fragment"),
    [
        ("a" * 40, "b" * 40, f"ref is commit {'a' * 40} but commit: is {'b' * 40}"),
        ("v1.0", "abc1234", "is not a 40-hex commit id"),
    ],
)
def test_contradictory_or_malformed_pin_is_refused_before_git_runs(
    upstream_template: Upstream, options: FetchOptions, ref: str, commit: str, fragment: str
) -> None:
    failed = _fail([RepoSpec(name="felix", url=upstream_template.url, ref=ref, commit=commit)], options)

    assert isinstance(failed.failures["felix"], PinConflictError)
    assert fragment in str(failed)
    assert not Path(options.cache_dir).exists()
