"""A server that refuses to hand out commits it does not advertise.

Over file:// git speaks protocol v2, whose upload-pack serves any object it has, so
the refusing server is reached the way real refusals happen: ssh to an sshd that
does not pass GIT_PROTOCOL on, so the server speaks v0 and applies
uploadpack.allow*SHA1InWant=false (see tests/helpers/gitrepos.py).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from orchestrator.sources import FetchFailed, FetchOptions, fetch, mirror_name
from tests.helpers.gitrepos import RepoSpec, Upstream, git, make_refusing
from tests.sources.conftest import Events

FALLBACK = "shallow fetch refused, falling back to full fetch"


@pytest.fixture
def refusing_url(upstream_template: Upstream, tmp_path: Path) -> str:
    return make_refusing(upstream_template, tmp_path / "server" / "refusing.git", Path(os.environ["HOME"]))


def test_fixture_server_really_refuses_an_unadvertised_commit(
    upstream_template: Upstream, refusing_url: str, tmp_path: Path
) -> None:
    probe = tmp_path / "probe.git"
    git("init", "--quiet", "--bare", str(probe))
    refused = _git_with_home(
        os.environ["HOME"], probe, "fetch", "--depth", "1", refusing_url, upstream_template.commits["c3"]
    )

    assert refused.returncode != 0
    assert "not allow request for unadvertised object" in refused.stderr


def test_refused_shallow_fetch_by_commit_falls_back_to_full_fetch_and_says_so(
    upstream_template: Upstream, refusing_url: str, options: FetchOptions, events: Events
) -> None:
    repo = RepoSpec(name="libcalico-go", url=refusing_url, ref=upstream_template.commits["c3"])

    checkout = fetch([repo], options, on_event=events)["libcalico-go"]

    assert checkout.commit == upstream_template.commits["c3"]
    assert (checkout.path / "VERSION").read_text() == "c3\n"
    assert ("libcalico-go", FALLBACK) in events.calls


def test_tags_and_branches_are_still_fetched_shallowly_from_a_refusing_server(
    upstream_template: Upstream, refusing_url: str, options: FetchOptions, events: Events
) -> None:
    repo = RepoSpec(name="felix", url=refusing_url, ref="v1.1", commit=upstream_template.commits["r1"])

    fetch([repo], options, on_event=events)

    assert FALLBACK not in events.messages()
    mirror = options.cache_dir / mirror_name(refusing_url)
    assert git("rev-list", "--count", "refs/tags/v1.1", git_dir=mirror) == "1"


def test_commit_on_no_advertised_ref_is_not_found_even_after_the_full_fetch(
    upstream_template: Upstream, tmp_path: Path, options: FetchOptions, events: Events
) -> None:
    server = upstream_template.copy(tmp_path / "upstream.git")
    server.git("tag", "--delete", "v2.0-nobranch")  # n1 is now on no ref at all
    url = make_refusing(server, tmp_path / "server" / "refusing.git", Path(os.environ["HOME"]))
    repo = RepoSpec(name="cni-plugin", url=url, ref=server.commits["n1"])

    with pytest.raises(FetchFailed) as caught:
        fetch([repo], options, on_event=events)

    assert f"commit {server.commits['n1']} not found" in str(caught.value)
    assert ("cni-plugin", FALLBACK) in events.calls


def _git_with_home(home: str, git_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": home, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", "-c", "protocol.version=2", *args], env=env, capture_output=True, text=True
    )
