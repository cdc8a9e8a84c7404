"""Host git is safe even in a repository someone else wrote: one door for every git
process, hooks and fsmonitor off, replace refs ignored, and the config of every mirror
and checkout one that sets only what the orchestrator writes (the setting that is not is
named), or the repository is made again."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from orchestrator import gitcmd, repoconfig
from orchestrator.sources import FetchOptions, fetch, mirror_name
from tests.helpers.gitrepos import RepoSpec, Upstream, build_upstream, git
from tests.reliability.isolation_helpers import Workspace, make_repo

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    return build_upstream(tmp_path_factory.mktemp("upstream"))


@pytest.fixture
def options(tmp_path: Path) -> FetchOptions:
    return FetchOptions(cache_dir=tmp_path / "cache", checkout_dir=tmp_path / "ws" / ".build" / "src", backoff=0.0)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """Created by any planted command that runs."""
    return tmp_path / "ran-on-the-host"


class Events(list[str]):
    def __call__(self, name: str, message: str) -> None:
        self.append(message)


def run_fetch(upstream: Upstream, options: FetchOptions, ref: str = "v1.0") -> tuple[Path, Events]:
    events = Events()
    checkout = fetch([RepoSpec(name="felix", url=upstream.url, ref=ref)], options, on_event=events)["felix"]
    return checkout.path, events


def tampered_checkout(marker: Path) -> dict[str, tuple[str, dict[str, str]]]:
    """What someone (a container, before copies; anyone who can write .build/) adds:
    config text, and files to write into .git."""
    run = f"touch {marker}"
    return {
        "fsmonitor": (f"[core]\n\tfsmonitor = {run}\n", {}),
        "include": ("[include]\n\tpath = evil.cfg\n", {"evil.cfg": f"[core]\n\tfsmonitor = {run}\n"}),
        "filter": (f'[filter "x"]\n\tsmudge = {run}; cat\n', {"info/attributes": "* filter=x\n"}),
        "uploadpack": (f'[remote "{{mirror}}"]\n\tuploadpack = {run}; git-upload-pack\n', {}),
        "credential": (f"[credential]\n\thelper = !{run}\n", {}),
        "worktree": ("[core]\n\tworktree = /tmp\n", {}),
    }


@pytest.mark.parametrize("attack", ["fsmonitor", "include", "filter", "uploadpack", "credential", "worktree"])
def test_a_checkout_whose_git_config_was_changed_is_made_again_and_runs_nothing(
    attack: str, upstream: Upstream, options: FetchOptions, marker: Path
) -> None:
    path, _ = run_fetch(upstream, options)
    text, files = tampered_checkout(marker)[attack]
    mirror = (options.cache_dir / mirror_name(upstream.url)).as_uri()
    with (path / ".git" / "config").open("a") as config:
        config.write(text.replace("{mirror}", mirror))
    for name, content in files.items():
        (path / ".git" / name).parent.mkdir(parents=True, exist_ok=True)
        (path / ".git" / name).write_text(content)
    (path / "c2").unlink()  # so that the next fetch must check files out again

    path, events = run_fetch(upstream, options, ref="v1.1")

    key = {"fsmonitor": "core.fsmonitor", "include": "include.path", "filter": "filter.x.smudge",
           "uploadpack": f"remote.{mirror}.uploadpack", "credential": "credential.helper",
           "worktree": "core.worktree"}[attack]
    assert f"not trusting {path / '.git'}: its git config is not the one the orchestrator wrote: it sets {key}" \
        in events
    assert f"discarding damaged checkout {path}" in events
    assert (path / ".git" / "config").read_bytes() == repoconfig.CHECKOUT
    assert git("rev-parse", "HEAD", cwd=path) == upstream.commits["r1"]
    assert not marker.exists()


@pytest.mark.parametrize("name", ["commondir", "info/grafts", "info/attributes", "objects/info/alternates"])
def test_a_checkout_holding_files_that_redirect_git_is_made_again(
    name: str, upstream: Upstream, options: FetchOptions, tmp_path: Path
) -> None:
    path, _ = run_fetch(upstream, options)
    (path / ".git" / name).parent.mkdir(parents=True, exist_ok=True)
    (path / ".git" / name).write_text(f"{tmp_path}\n")

    path, events = run_fetch(upstream, options)

    assert f"not trusting {path / '.git'}: it holds {name}, which the orchestrator never writes" in events
    assert not (path / ".git" / name).exists()


def test_a_mirror_whose_config_was_changed_is_fetched_again_and_runs_nothing(
    upstream: Upstream, options: FetchOptions, marker: Path
) -> None:
    run_fetch(upstream, options)
    mirror = options.cache_dir / mirror_name(upstream.url)
    with (mirror / "config").open("a") as config:
        config.write(f'[remote "{upstream.url}"]\n\tuploadpack = touch {marker}; git-upload-pack\n')

    path, events = run_fetch(upstream, options, ref="v1.1")  # not cached yet: the mirror must fetch

    assert f"not trusting {mirror}: its git config is not the one the orchestrator wrote: " \
           f"it sets remote.{upstream.url}.uploadpack" in events
    assert f"discarding damaged mirror {mirror}" in events
    assert (mirror / "config").read_bytes() == repoconfig.MIRROR
    assert git("rev-parse", "HEAD", cwd=path) == upstream.commits["r1"]
    assert not marker.exists()


def test_hooks_planted_in_a_checkout_never_run(upstream: Upstream, options: FetchOptions, marker: Path) -> None:
    path, _ = run_fetch(upstream, options)
    hooks = path / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    for hook in ("post-checkout", "pre-auto-gc", "reference-transaction", "post-index-change"):
        (hooks / hook).write_text(f"#!/bin/sh\ntouch {marker}\n")
        (hooks / hook).chmod(0o755)

    run_fetch(upstream, options, ref="v1.1")

    assert not marker.exists()


def test_a_replace_ref_cannot_substitute_another_tree_for_the_pinned_commit(
    upstream: Upstream, options: FetchOptions
) -> None:
    path, _ = run_fetch(upstream, options, ref="v1.1")
    git("fetch", "--quiet", upstream.url, upstream.commits["c4"], cwd=path)
    git("replace", upstream.commits["r1"], upstream.commits["c4"], cwd=path)
    (path / "r1").unlink()

    path, _ = run_fetch(upstream, options, ref="v1.1")

    assert (path / "r1").read_text() == "r1\n"
    assert not (path / "c4").exists()


def test_every_git_process_goes_through_the_one_door() -> None:
    """No module but gitcmd starts a process whose argv begins with "git" (a message that
    joins "git" with its arguments is not a process)."""
    offenders = []
    for path in sorted((ROOT / "orchestrator").rglob("*.py")):
        if path.name == "gitcmd.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            joining = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join"
            if isinstance(node, ast.Call) and not joining and any(
                isinstance(arg, ast.List | ast.Tuple) and arg.elts
                and isinstance(arg.elts[0], ast.Constant) and arg.elts[0].value == "git"
                for arg in node.args
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_variables_given_to_the_door_reach_git_even_when_the_same_ones_leaked_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Leaked Name")

    child_env = gitcmd.run(["-c", "alias.showenv=!env", "showenv"], env={"GIT_AUTHOR_NAME": "Given"}).stdout

    assert "GIT_AUTHOR_NAME=Given" in child_env.splitlines()


def test_a_library_archive_depends_on_the_commit_alone_not_on_the_users_git_config(
    tmp_path: Path, marker: Path
) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    commit = make_repo(tmp_path / "repo", {".gitattributes": "* filter=x text eol=crlf\n", "a.txt": "line\n"})
    ws.manifest(tmp_path / "repo", commit, "lib:\n  type: library")
    code, output = ws.run("build", "lib")
    assert code == 0, output
    clean = (ws.release / "src" / "tool-v1.tar.gz").read_bytes()
    home = Path.home()
    (home / ".gitconfig").write_text(f'[filter "x"]\n\tsmudge = touch {marker}; tr a-z A-Z\n')

    code, output = ws.run("build", "lib", "--force")

    assert code == 0, output
    assert (ws.release / "src" / "tool-v1.tar.gz").read_bytes() == clean
    assert not marker.exists()


def test_git_through_the_door_never_runs_a_repositorys_fsmonitor_even_unchecked(tmp_path: Path, marker: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, {"a": "a\n"})
    git("config", "core.fsmonitor", f"touch {marker}", cwd=repo)

    for args in (["status", "--porcelain"], ["checkout", "--quiet", "--force", "--detach", "v1"], ["clean", "-fdxq"]):
        assert gitcmd.run(args, git_dir=repo / ".git", work_tree=repo, cwd=repo).ok

    assert not marker.exists()
