"""Credentials in URLs reach git and nothing else; mirror rewrites reach git only."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from orchestrator.sources import FetchFailed, FetchOptions, fetch, mirror_name, redact_url
from tests.helpers.gitrepos import RepoSpec, Upstream
from tests.sources.conftest import Events

SECRET = "s3cret-t0ken"


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("https://user:s3cret@github.com/projectcalico/felix.git", "https://github.com/projectcalico/felix.git"),
        ("https://ghp_token@github.com/x.git", "https://github.com/x.git"),
        ("https://user:p@ss@host.example/x.git", "https://host.example/x.git"),
        ("ssh://git@github.com:22/x.git", "ssh://github.com:22/x.git"),
        ("file://user:pw@/srv/x.git", "file:///srv/x.git"),
        ("https://github.com/x.git", "https://github.com/x.git"),
        ("git@github.com:projectcalico/felix.git", "git@github.com:projectcalico/felix.git"),
        ("/srv/git/felix.git", "/srv/git/felix.git"),
    ],
)
def test_redact_url_strips_userinfo_and_nothing_else(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def _files_containing(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_credentials_never_reach_checkouts_events_or_files(
    upstream_template: Upstream, options: FetchOptions, events: Events, tmp_path: Path
) -> None:
    # git accepts (and ignores) userinfo in file:// URLs, so the real path is exercised.
    url = upstream_template.url.replace("file://", f"file://felix-bot:{SECRET}@")
    repo = RepoSpec(name="felix", url=url, ref="v1.0")

    checkout = fetch([repo], options, on_event=events)["felix"]

    assert checkout.url == upstream_template.url
    assert SECRET not in repr(checkout)
    assert events.messages()
    assert SECRET not in events.text()
    assert SECRET not in mirror_name(url)
    assert _files_containing(tmp_path / "cache", SECRET) == []
    assert _files_containing(options.checkout_dir, SECRET) == []


def test_credentials_never_reach_error_messages(options: FetchOptions, events: Events, tmp_path: Path) -> None:
    url = f"file://felix-bot:{SECRET}@{tmp_path}/missing.git"

    with pytest.raises(FetchFailed) as caught:
        fetch([RepoSpec(name="felix", url=url, ref="v1.0")], options, on_event=events)

    assert f"file://{tmp_path}/missing.git" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value.failures)
    assert SECRET not in events.text()


def test_mirror_rewrite_is_used_by_git_while_records_show_the_manifest_url(
    upstream_template: Upstream, options: FetchOptions, events: Events, tmp_path: Path
) -> None:
    site = tmp_path / "airgap"
    upstream_template.copy(site / "calico" / "felix.git")
    manifest_url = f"https://felix-bot:{SECRET}@github.com/projectcalico/felix.git"
    options = dataclasses.replace(options, mirrors=(("https://github.com/projectcalico/", f"{site.as_uri()}/calico/"),))

    checkout = fetch([RepoSpec(name="felix", url=manifest_url, ref="v1.1")], options, on_event=events)["felix"]

    assert checkout.url == "https://github.com/projectcalico/felix.git"
    assert checkout.commit == upstream_template.commits["r1"]
    fetching = [m for m in events.messages() if m.startswith("fetching")]
    assert fetching == [
        f"fetching v1.1 from https://github.com/projectcalico/felix.git (via {site.as_uri()}/calico/felix.git)"
    ]
    assert SECRET not in events.text()
    # The cache is keyed by the manifest URL, so switching mirrors keeps the cache.
    assert (options.cache_dir / mirror_name("https://github.com/projectcalico/felix.git")).is_dir()


def test_longest_mirror_prefix_wins(upstream_template: Upstream, options: FetchOptions, tmp_path: Path) -> None:
    upstream_template.copy(tmp_path / "specific" / "felix.git")
    options = dataclasses.replace(
        options,
        mirrors=(
            ("https://github.com/", f"{(tmp_path / 'nowhere').as_uri()}/"),
            ("https://github.com/projectcalico/", f"{(tmp_path / 'specific').as_uri()}/"),
        ),
    )

    checkout = fetch([RepoSpec(name="felix", url="https://github.com/projectcalico/felix.git", ref="v0.9")], options)

    assert checkout["felix"].commit == upstream_template.commits["c1"]
