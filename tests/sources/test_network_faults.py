"""Network faults: retries with backoff for network steps only, then a clear error."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from orchestrator import gitcmd
from orchestrator.errors import EXIT_BAD_INPUT, EXIT_FAILED
from orchestrator.sources import (
    FetchFailed,
    FetchOptions,
    MovedRefError,
    RefNotFoundError,
    RepositoryNotFoundError,
    UnreachableRemoteError,
    fetch,
)
from tests.helpers.gitrepos import RepoSpec, Upstream
from tests.sources.conftest import Events

UNREACHABLE = "https://127.0.0.1:1/projectcalico/felix.git"  # nothing listens on port 1


def test_unreachable_remote_is_retried_then_reported_with_gits_words_and_advice(
    options: FetchOptions, events: Events
) -> None:
    with pytest.raises(FetchFailed) as caught:
        fetch([RepoSpec(name="felix", url=UNREACHABLE, ref="v1.0")], options, on_event=events)

    error = caught.value.failures["felix"]
    assert isinstance(error, UnreachableRemoteError)
    message = str(error)
    assert message.startswith(f"felix: cannot reach {UNREACHABLE} (after 3 tries)")
    assert "Failed to connect to 127.0.0.1 port 1" in message
    assert "hint: check the URL, your network and proxy settings" in message
    retries = [m for m in events.messages("felix") if m.startswith("retrying")]
    assert [m.split(":")[0] for m in retries] == ["retrying in 0s (try 2 of 3)", "retrying in 0s (try 3 of 3)"]
    assert caught.value.exit_code == EXIT_FAILED


def test_retries_back_off_doubling_each_time(
    options: FetchOptions, events: Events, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr("orchestrator.gitcmd._pause", slept.append)

    with pytest.raises(FetchFailed):
        fetch(
            [RepoSpec(name="felix", url=UNREACHABLE, ref="v1.0")], dataclasses.replace(options, retries=3, backoff=1.5)
        )

    # doubling from 1.5s, each wait jittered down to no less than half its length
    assert len(slept) == 3
    for wait, full in zip(slept, [1.5, 3.0, 6.0], strict=True):
        assert full / 2 <= wait <= full


def test_nonexistent_repository_is_reported_at_once_without_retries(
    options: FetchOptions, events: Events, tmp_path: Path
) -> None:
    url = (tmp_path / "no-such-repo.git").as_uri()

    with pytest.raises(FetchFailed) as caught:
        fetch([RepoSpec(name="felix", url=url, ref="v1.0")], options, on_event=events)

    error = caught.value.failures["felix"]
    assert isinstance(error, RepositoryNotFoundError)
    message = str(error)
    assert message.startswith(f"felix: no git repository at {url}\n")
    assert "does not appear to be a git repository" in message
    assert "hint: check the URL for typos" in message
    assert not [m for m in events.messages() if m.startswith("retrying")]


def test_every_failure_is_collected_and_any_remote_failure_makes_exit_code_1(
    upstream: Upstream, options: FetchOptions
) -> None:
    upstream.move_tag("v1.0", "c3")
    repos = [
        RepoSpec(name="felix", url=upstream.url, ref="v1.0", commit=upstream.commits["c2"]),
        RepoSpec(name="node", url=upstream.url, ref="v7"),
        RepoSpec(name="calicoctl", url=UNREACHABLE, ref="v1.0"),
        RepoSpec(name="cni-plugin", url=upstream.url, ref="v2.0-nobranch"),
    ]

    with pytest.raises(FetchFailed) as caught:
        fetch(repos, dataclasses.replace(options, jobs=4, retries=0))

    failures = caught.value.failures
    assert list(failures) == ["felix", "node", "calicoctl"]
    assert isinstance(failures["felix"], MovedRefError)
    assert isinstance(failures["node"], RefNotFoundError)
    assert isinstance(failures["calicoctl"], UnreachableRemoteError)
    assert caught.value.exit_code == EXIT_FAILED
    message = str(caught.value)
    assert message.startswith("3 of 4 repositories could not be fetched:\n  felix: tag 'v1.0'")
    assert "\n  node: ref 'v7' not found" in message
    assert "\n  calicoctl: cannot reach" in message
    assert (options.checkout_dir / "cni-plugin").is_dir()


def test_exit_code_is_2_when_every_failure_is_a_pin_or_ref_problem(upstream: Upstream, options: FetchOptions) -> None:
    upstream.move_tag("v1.0", "c3")
    repos = [
        RepoSpec(name="felix", url=upstream.url, ref="v1.0", commit=upstream.commits["c2"]),
        RepoSpec(name="node", url=upstream.url, ref="v7"),
    ]

    with pytest.raises(FetchFailed) as caught:
        fetch(repos, options)

    assert caught.value.exit_code == EXIT_BAD_INPUT


def test_classify_reads_gits_usual_messages() -> None:
    cases = {
        "fatal: repository 'https://github.com/x/y.git/' not found": "no-repository",
        "remote: Repository not found.": "no-repository",
        "fatal: could not read Username for 'https://github.com': terminal prompts disabled": "auth",
        "git@github.com: Permission denied (publickey).": "auth",
        "fatal: couldn't find remote ref refs/tags/v9": "missing-ref",
        "error: Server does not allow request for unadvertised object 0123": "refused",
        "fatal: dumb http transport does not support shallow capabilities": "refused",
        "fatal: unable to access 'https://x/': Could not resolve host: x": "network",
        "fatal: the remote end hung up unexpectedly": "network",
    }
    assert {text: gitcmd.classify(text) for text in cases} == cases
