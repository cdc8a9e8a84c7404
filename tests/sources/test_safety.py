"""Nothing from a manifest or the environment can make git run a command or act on
another repository."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from orchestrator import gitcmd
from orchestrator.errors import EXIT_BAD_INPUT, InputError
from orchestrator.sources import FetchFailed, FetchOptions, UnsafeSourceError, fetch
from tests.helpers.gitrepos import RepoSpec, Upstream


def _refused(repo: RepoSpec, options: FetchOptions) -> UnsafeSourceError:
    with pytest.raises(FetchFailed) as caught:
        fetch([repo], options)
    error = caught.value.failures[repo.name]
    assert isinstance(error, UnsafeSourceError)
    assert isinstance(error, InputError)
    assert caught.value.exit_code == EXIT_BAD_INPUT
    return error


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ext::sh -c touch% /tmp/pwned", "transport 'ext' is refused: it runs a program"),
        ("fd::17", "transport 'fd' is refused: it runs a program"),
        ("git@github.com::x", "transport 'git@github.com' is refused: it runs a program"),
        ("--upload-pack=touch /tmp/pwned", "begins with '-'"),
        ("-oProxyCommand=touch /tmp/pwned", "begins with '-'"),
        ("", "empty"),
        ("https://example.invalid/x\n--upload-pack=x", "control character"),
        ("/srv/git/felix.git", "plain path"),
    ],
)
def test_dangerous_url_is_refused_before_git_runs(
    url: str, fragment: str, options: FetchOptions, network_calls: list[tuple[str, ...]]
) -> None:
    error = _refused(RepoSpec(name="felix", url=url, ref="v1.0"), options)

    assert fragment in str(error)
    assert network_calls == []
    assert not options.cache_dir.exists()


@pytest.mark.parametrize("ref", ["-x", "--upload-pack=touch", "v1..v2", "a b", "v1^{tree}", "x:y", "", "refs/.hidden",
                                 "/x", ".x", "a/.b", "a.lock/b", "a//b", "x.", "v1\n", "@"])
def test_dangerous_or_malformed_ref_is_refused_before_git_runs(
    ref: str, upstream_template: Upstream, options: FetchOptions
) -> None:
    error = _refused(RepoSpec(name="felix", url=upstream_template.url, ref=ref), options)

    assert "refusing ref" in str(error)
    assert not options.cache_dir.exists()


@pytest.mark.parametrize("name", ["../evil", "a/b", ".hidden", "", "felix\n"])
def test_repo_name_that_is_not_one_path_component_is_refused(
    name: str, upstream_template: Upstream, options: FetchOptions
) -> None:
    error = _refused(RepoSpec(name=name, url=upstream_template.url, ref="v1.0"), options)

    assert "one path component" in str(error)


def test_mirror_rewrite_to_a_remote_helper_is_refused(upstream_template: Upstream, options: FetchOptions) -> None:
    options = dataclasses.replace(options, mirrors=(("https://github.com/", "ext::sh -c x% "),))

    error = _refused(RepoSpec(name="felix", url="https://github.com/projectcalico/felix.git", ref="v1.0"), options)

    assert "refusing mirror URL" in str(error)


def test_ext_transport_stays_blocked_when_git_config_rewrites_a_url_to_it(
    options: FetchOptions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "pwned"
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(f'[url "ext::sh -c touch% {marker}% >&2 "]\n\tinsteadOf = https://evil.invalid/\n')
    monkeypatch.setenv("HOME", str(home))

    with pytest.raises(FetchFailed) as caught:
        fetch([RepoSpec(name="felix", url="https://evil.invalid/x.git", ref="v1.0")], options)

    assert "transport 'ext' not allowed" in str(caught.value)
    assert not marker.exists()


def test_leaked_git_environment_does_not_reach_git(
    upstream_template: Upstream, options: FetchOptions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    leaked = {
        "GIT_DIR": str(decoy),
        "GIT_WORK_TREE": str(decoy),
        "GIT_INDEX_FILE": str(decoy / "index"),
        "GIT_OBJECT_DIRECTORY": str(decoy / "objects"),
        "GIT_NAMESPACE": "evil",
        "GIT_ALLOW_PROTOCOL": "ext",
        "GIT_CONFIG_PARAMETERS": "'protocol.ext.allow'='always'",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "core.hooksPath",
        "GIT_CONFIG_VALUE_0": str(decoy),
    }
    for name, value in leaked.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GIT_SSH_COMMAND", "ssh -i /deploy/key")

    assert set(leaked) <= set(gitcmd.scrubbed_git_vars())
    assert "GIT_SSH_COMMAND" not in gitcmd.scrubbed_git_vars()
    checkout = fetch([RepoSpec(name="felix", url=upstream_template.url, ref="v1.1")], options)["felix"]

    assert checkout.commit == upstream_template.commits["r1"]
    assert list(decoy.iterdir()) == []


def test_git_sees_prompts_off_no_leaked_variables_and_only_safe_protocols(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "1")
    monkeypatch.setenv("GIT_NAMESPACE", "evil")

    # A shell alias runs `env` as a child of git: it sees git's environment.
    child_env = gitcmd.run(["-c", "alias.showenv=!env", "showenv"]).stdout.splitlines()
    protocols = gitcmd.run(["config", "--get-regexp", "^protocol\\."]).stdout.splitlines()

    assert "GIT_TERMINAL_PROMPT=0" in child_env
    assert not [line for line in child_env if line.startswith("GIT_NAMESPACE=")]
    assert protocols == [
        "protocol.allow never",
        "protocol.https.allow always",
        "protocol.ssh.allow always",
        "protocol.git.allow always",
        "protocol.file.allow always",
        "protocol.version 2",
    ]
