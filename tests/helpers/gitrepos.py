"""Fixture git repositories for the sources tests.

``build_upstream`` makes, once per session, a bare upstream holding every ref shape
the Calico v3.2 pins have (see /work/shared/calico-v3.2.md): annotated and
lightweight tags, a tag on no branch, a tag only on a non-default branch, a commit
with no tag. Identity and dates are fixed, so commit ids are the same on every run.
Tests that change an upstream (move a tag, advance a branch) work on ``copy()``.

Repositories are served over ``file://`` URLs: a plain path would silently ignore
``--depth``. The refusing server is reached over ``ssh://`` through ``FAKE_SSH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

EPOCH = 1514764800  # 2018-01-01T00:00:00Z; commit i is i days later
IDENTITY = {
    "GIT_AUTHOR_NAME": "Fixture Author",
    "GIT_AUTHOR_EMAIL": "author@example.invalid",
    "GIT_COMMITTER_NAME": "Fixture Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.invalid",
}

# Stands in for an ssh client talking to an sshd without `AcceptEnv GIT_PROTOCOL`
# (OpenSSH's default): the client asks for protocol v2 through the environment, the
# server never sees the request and speaks v0. Under v0, upload-pack enforces
# uploadpack.allow*SHA1InWant; under v2 it hands out any object it has, so a file://
# server can never refuse a fetch by commit id (checked with git 2.39).
FAKE_SSH = """#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in -o|-p|-l|-i) shift 2 ;; -*) shift ;; *) break ;; esac
done
shift  # the host name
unset GIT_PROTOCOL
exec sh -c "$*"
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class RepoSpec:
    """A manifest repo as the sources layer sees it (``sources.RepoSource``)."""

    name: str
    url: str
    ref: str
    commit: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Upstream:
    """A bare upstream repository and the ids of what is in it."""

    path: Path
    commits: Mapping[str, str]  # label -> commit id (labels: see build_upstream)
    times: Mapping[str, int]  # label -> committer time
    tag_objects: Mapping[str, str] = field(default_factory=dict)  # annotated tags

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def copy(self, dest: Path) -> Upstream:
        """An independent copy at ``dest``, for a test that changes the upstream."""
        shutil.copytree(self.path, dest, symlinks=True)
        return replace(self, path=dest)

    def git(self, *args: str, when: int | None = None) -> str:
        return git(*args, git_dir=self.path, when=when)

    def move_tag(self, tag: str, label: str) -> None:
        """Re-point annotated ``tag`` at commit ``label``: what must never happen."""
        self.git("tag", "--force", "--annotate", "--message", f"{tag} again", tag, self.commits[label], when=EPOCH)

    def advance(self, branch: str) -> str:
        """Add one commit on top of ``branch``; returns its id."""
        parent = self.git("rev-parse", f"refs/heads/{branch}")
        commit = self.git(
            "commit-tree", "-p", parent, "-m", f"advance {branch}", f"{parent}^{{tree}}", when=EPOCH + 99 * 86400
        )
        self.git("update-ref", f"refs/heads/{branch}", commit, parent)
        return commit


def git_env(home: Path | None = None, when: int | None = None) -> dict[str, str]:
    """A complete environment for fixture git commands: nothing inherited but PATH."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home or "/nonexistent"),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        **IDENTITY,
    }
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"{when} +0000"
    return env


def git(*args: str, cwd: Path | None = None, git_dir: Path | None = None, when: int | None = None) -> str:
    """Run a fixture git command with its own environment; returns stdout, stripped."""
    prefix = [f"--git-dir={git_dir}"] if git_dir is not None else []
    result = subprocess.run(
        ["git", "-c", "commit.gpgSign=false", "-c", "tag.gpgSign=false", *prefix, *args],
        cwd=cwd,
        env=git_env(when=when),
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def build_upstream(root: Path) -> Upstream:
    """Build the upstream at ``root/upstream.git``.

    Labels and refs (dates are EPOCH + i days in order of creation)::

        c1 --- c2 --- c3 --- c4          main, and branch both (c3: no ref points at it)
        v0.9   v1.0    \\
        both   (ann)    n1               tag v2.0-nobranch (lightweight, on no branch)
        (lw)    \\
                 r1 --- r2               release-1 (r1: tag v1.1, annotated; r2: tag
                                         deadbeef, a name that looks like a short id)
    """
    work = root / "work"
    work.mkdir(parents=True)
    git("init", "--quiet", "--initial-branch=main", cwd=work)
    commits: dict[str, str] = {}
    times: dict[str, int] = {}

    def commit(label: str) -> None:
        when = EPOCH + len(commits) * 86400
        (work / "VERSION").write_text(f"{label}\n")
        (work / label).write_text(f"{label}\n")
        git("add", "--all", cwd=work)
        git("commit", "--quiet", "--message", f"commit {label}", cwd=work, when=when)
        commits[label] = git("rev-parse", "HEAD", cwd=work)
        times[label] = when

    def tag(name: str, label: str, *, annotated: bool) -> None:
        options = ["--annotate", "--message", f"release {name}"] if annotated else []
        git("tag", *options, name, commits[label], cwd=work, when=times[label])

    (work / ".gitignore").write_text("*.o\n")
    commit("c1")
    tag("v0.9", "c1", annotated=False)
    tag("both", "c1", annotated=False)
    commit("c2")
    tag("v1.0", "c2", annotated=True)
    commit("c3")
    git("checkout", "--quiet", "-b", "release-1", commits["c2"], cwd=work)
    commit("r1")
    tag("v1.1", "r1", annotated=True)
    commit("r2")
    tag("deadbeef", "r2", annotated=False)
    git("checkout", "--quiet", "-b", "doomed", commits["c3"], cwd=work)
    commit("n1")
    tag("v2.0-nobranch", "n1", annotated=False)
    git("checkout", "--quiet", "main", cwd=work)
    git("branch", "--quiet", "-D", "doomed", cwd=work)
    commit("c4")
    git("branch", "both", commits["c4"], cwd=work)
    bare = root / "upstream.git"
    git("clone", "--quiet", "--bare", "--no-local", str(work), str(bare))
    tag_objects = {name: git("rev-parse", f"refs/tags/{name}", git_dir=bare) for name in ("v1.0", "v1.1")}
    return Upstream(path=bare, commits=commits, times=times, tag_objects=tag_objects)


def make_refusing(upstream: Upstream, dest: Path, home: Path) -> str:
    """Copy ``upstream`` to ``dest`` as a server that refuses commits it does not
    advertise, reachable at the returned ``ssh://`` URL once ``home``'s git config
    (written here) sends ssh through FAKE_SSH."""
    server = upstream.copy(dest)
    for option in ("allowTipSHA1InWant", "allowReachableSHA1InWant", "allowAnySHA1InWant"):
        git("config", f"uploadpack.{option}", "false", git_dir=server.path)
    fake_ssh = home / "fake-ssh"
    fake_ssh.write_text(FAKE_SSH)
    fake_ssh.chmod(0o755)
    with (home / ".gitconfig").open("a") as config:
        config.write(f'[core]\n\tsshCommand = "{fake_ssh}"\n[ssh]\n\tvariant = ssh\n')
    return f"ssh://fixture.invalid{server.path}"
