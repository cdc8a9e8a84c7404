"""A token in an https URL reaches the server, and nothing else: no process's argv
(which every user can read with ps), no message, no log, no file, no other host.

Against a real smart-HTTP server (tests/helpers/http_git.py) that requires basic auth
and, while it serves a request (the fetching git is alive and waiting), looks through
every process's /proc/<pid>/cmdline for the token.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import gitcreds, procs
from orchestrator.errors import EXIT_FAILED, InputError
from orchestrator.sources import FetchFailed, FetchOptions, RemoteAccessError, fetch, pin_all
from tests.helpers.gitrepos import RepoSpec, Upstream, build_upstream
from tests.helpers.http_git import GitHttpServer, Request, Tls, make_certificate, processes_showing
from tests.sources.conftest import Events

TOKEN = "ghp_Zx81s3cretT0ken"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    return build_upstream(tmp_path_factory.mktemp("served"))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def options(tmp_path: Path, tls: Tls, monkeypatch: pytest.MonkeyPatch) -> FetchOptions:
    monkeypatch.setenv("GIT_SSL_CAINFO", str(tls.cert))  # kept for git: how CI trusts a private CA
    return FetchOptions(cache_dir=tmp_path / "cache", checkout_dir=tmp_path / "src", retries=2, backoff=0.0)


class Watch:
    """Runs inside the server's request handler, while the fetching git waits for the answer."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.seen: list[tuple[int, str]] = []
        self.git_alive: list[bool] = []

    def __call__(self, request: Request) -> None:
        self.git_alive.append(bool(procs.find(procs.RUN_VARIABLE, procs.run_token())))
        self.seen += processes_showing(self.secret)


@pytest.fixture
def served(upstream: Upstream, tls: Tls) -> Iterator[tuple[GitHttpServer, Watch]]:
    watch = Watch(TOKEN)
    with GitHttpServer(upstream.path.parent, tls=tls, credentials=("felix-bot", TOKEN), on_request=watch) as server:
        yield server, watch


def test_a_token_in_an_https_url_authenticates_and_never_reaches_any_argv_log_or_file(
    served: tuple[GitHttpServer, Watch], upstream: Upstream, options: FetchOptions, tmp_path: Path,
    caplog: pytest.LogCaptureFixture
) -> None:
    server, watch = served
    events = Events()
    url = server.url("upstream.git", user="felix-bot", password=TOKEN)

    with caplog.at_level(logging.DEBUG):
        checkout = fetch([RepoSpec(name="felix", url=url, ref="v1.0")], options, on_event=events)["felix"]

    assert checkout.commit == upstream.commits["c2"]
    assert checkout.url == server.url("upstream.git")
    assert any(request.authorized for request in server.requests)
    assert watch.git_alive and all(watch.git_alive), "the check must run while git is running"
    assert watch.seen == []
    assert TOKEN not in events.text()
    assert TOKEN not in caplog.text
    assert [p for p in tmp_path.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()] == []


def test_a_wrong_token_is_refused_with_the_access_denied_message(
    served: tuple[GitHttpServer, Watch], options: FetchOptions
) -> None:
    server, _ = served
    events = Events()
    url = server.url("upstream.git", user="felix-bot", password="wrong-" + TOKEN)

    with pytest.raises(FetchFailed) as caught:
        fetch([RepoSpec(name="felix", url=url, ref="v1.0")], options, on_event=events)

    error = caught.value.failures["felix"]
    assert isinstance(error, RemoteAccessError)
    assert str(error).startswith(f"felix: access denied by {server.url('upstream.git')}\n")
    assert caught.value.exit_code == EXIT_FAILED
    assert TOKEN not in str(caught.value)
    assert not [m for m in events.messages() if m.startswith("retrying")]
    assert server.requests and not any(request.authorized for request in server.requests)


def test_a_user_only_url_sends_the_token_as_the_user_with_an_empty_password(
    upstream: Upstream, tls: Tls, options: FetchOptions
) -> None:
    watch = Watch(TOKEN)
    with GitHttpServer(upstream.path.parent, tls=tls, credentials=(TOKEN, ""), on_request=watch) as server:
        checkout = fetch([RepoSpec(name="felix", url=server.url("upstream.git", user=TOKEN), ref="v1.1")], options)

    assert checkout["felix"].commit == upstream.commits["r1"]
    assert watch.git_alive and watch.seen == []


def test_percent_encoded_credentials_are_decoded_as_git_would(
    upstream: Upstream, tls: Tls, options: FetchOptions
) -> None:
    user, password = "bot@corp.example", "p@ss:w/rd %41"
    with GitHttpServer(upstream.path.parent, tls=tls, credentials=(user, password)) as server:
        url = server.url("upstream.git", user=user, password=password)
        assert "%40" in url and "%3A" in url
        checkout = fetch([RepoSpec(name="felix", url=url, ref="v0.9")], options)

    assert checkout["felix"].commit == upstream.commits["c1"]


def test_a_redirect_to_another_host_never_receives_the_credentials(
    upstream: Upstream, tls: Tls, options: FetchOptions
) -> None:
    with GitHttpServer(upstream.path.parent, tls=tls, credentials=("felix-bot", TOKEN)) as elsewhere, \
            GitHttpServer(upstream.path.parent, tls=tls, redirect_to=elsewhere.base) as moved:
        url = moved.url("upstream.git", user="felix-bot", password=TOKEN)
        with pytest.raises(FetchFailed) as caught:
            fetch([RepoSpec(name="felix", url=url, ref="v1.0")], options)

    assert moved.requests, "the first server must have been asked"
    assert elsewhere.requests, "git must have followed the redirect"
    assert [r.authorization for r in elsewhere.requests if r.authorization] == []
    assert isinstance(caught.value.failures["felix"], RemoteAccessError)


def test_a_users_credential_store_never_receives_the_token(
    served: tuple[GitHttpServer, Watch], options: FetchOptions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _ = served
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[credential]\n\thelper = store\n")
    monkeypatch.setenv("HOME", str(home))

    fetch([RepoSpec(name="felix", url=server.url("upstream.git", user="felix-bot", password=TOKEN), ref="v1.0")],
          options)

    stored = home / ".git-credentials"
    assert not stored.exists() or TOKEN not in stored.read_text()


@pytest.mark.parametrize(
    ("url", "argv_url", "env"),
    [
        ("https://bot:tok@github.com/x.git", "https://github.com/x.git", ("bot", "tok")),
        ("https://tok@github.com/x.git", "https://github.com/x.git", ("tok", "")),
        ("https://a%40b:c%3Ad@host:8443/x.git", "https://host:8443/x.git", ("a@b", "c:d")),
        ("https://user:p@ss@host.example/x.git", "https://host.example/x.git", ("user", "p@ss")),
        ("HTTPS://bot:tok@GitHub.com/x.git", "https://GitHub.com/x.git", ("bot", "tok")),
        ("ssh://git@github.com/x.git", "ssh://git@github.com/x.git", None),
        ("ssh://git:pw@github.com:22/x.git", "ssh://git@github.com:22/x.git", None),
        ("git@github.com:projectcalico/felix.git", "git@github.com:projectcalico/felix.git", None),
        ("file://user:pw@/srv/x.git", "file:///srv/x.git", None),
        ("git://u:p@host/x.git", "git://host/x.git", None),
        ("https://github.com/x.git", "https://github.com/x.git", None),
    ],
)
def test_credentials_are_split_off_the_url_git_gets_on_its_command_line(
    url: str, argv_url: str, env: tuple[str, str] | None
) -> None:
    remote = gitcreds.remote(url, "felix")

    assert remote.url == argv_url
    if env is None:
        assert remote.env == {}
    else:
        assert (remote.env[gitcreds.USER_VARIABLE], remote.env[gitcreds.PASSWORD_VARIABLE]) == env
        host = argv_url.split("/")[2]
        assert remote.env["GIT_CONFIG_KEY_1"] == f"credential.https://{host}.helper"


def test_credentials_with_a_line_break_are_refused_as_bad_input() -> None:
    with pytest.raises(InputError) as caught:
        gitcreds.remote("https://bot:to%0Aken@host/x.git", "felix")

    assert "to\nken" not in str(caught.value) and "to%0Aken" not in str(caught.value)
    assert "felix" in str(caught.value)


def test_what_a_build_keeps_of_a_resolved_repo_never_shows_the_token(
    served: tuple[GitHttpServer, Watch], options: FetchOptions
) -> None:
    server, _ = served
    url = server.url("upstream.git", user="felix-bot", password=TOKEN)

    resolved = pin_all([RepoSpec(name="felix", url=url, ref="v1.0")], options)["felix"]

    assert TOKEN not in repr(resolved)
    assert TOKEN not in str(resolved)
