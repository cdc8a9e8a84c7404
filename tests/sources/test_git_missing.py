"""No git on the machine: one plain error before any work, and no mirror touched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from orchestrator import gitcmd
from orchestrator.sources import FetchOptions, fetch, mirror_name
from tests.helpers.cli import run_cli
from tests.helpers.gitrepos import RepoSpec, Upstream


def _path_without_git(tmp_path: Path) -> str:
    """A PATH with the tools the orchestrator runs besides git (env, setpriv), not git."""
    tools = tmp_path / "bin-without-git"
    tools.mkdir()
    for name in ("env", "setpriv", "sh"):
        if found := shutil.which(name):
            (tools / name).symlink_to(found)
    return str(tools)


def test_fetch_without_git_says_so_once_and_leaves_the_mirrors_alone(
    upstream: Upstream, options: FetchOptions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetch([RepoSpec(name="felix", url=upstream.url, ref="v1.0")], options)
    mirror = options.cache_dir / mirror_name(upstream.url)
    before = sorted(str(p.relative_to(mirror)) for p in mirror.rglob("*"))
    monkeypatch.setenv("PATH", _path_without_git(tmp_path))
    monkeypatch.delenv("GIT_PYTHON_GIT_EXECUTABLE", raising=False)

    with pytest.raises(gitcmd.GitMissingError) as caught:
        fetch([RepoSpec(name="felix", url=upstream.url, ref="v1.0"),
               RepoSpec(name="typha", url=upstream.url, ref="v1.0")], options)

    assert str(caught.value) == ("git is not installed: no 'git' on PATH\n"
                                 "  hint: install git (Debian and Ubuntu: apt-get install git), then run again")
    assert sorted(str(p.relative_to(mirror)) for p in mirror.rglob("*")) == before


def test_the_cli_without_git_prints_one_error_and_no_traceback(tmp_path: Path, project_root: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    env = {"PATH": _path_without_git(tmp_path), "HOME": str(tmp_path / "home"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}

    result = run_cli("fetch", "--all", "-m", str(project_root / "manifest.yaml"), "-w", str(workspace), env=env)

    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: git is not installed: no 'git' on PATH",
        "  hint: install git (Debian and Ubuntu: apt-get install git), then run again",
    ]
    assert "Traceback" not in result.stderr and not (workspace / ".build" / "logs").exists()
