"""Fixtures the benchmarks generate for themselves: git repositories and manifests.

Everything is deterministic (fixed identities, dates and seeds) and local: repositories
are written with ``git fast-import`` and served over ``file://`` URLs.
"""

from __future__ import annotations

import hashlib
import random
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

IDENTITY = b"Bench Robot <bench@example.invalid>"
EPOCH = 1_600_000_000  # 2020-09-13, any fixed time will do

# A small vocabulary keeps generated files compressible roughly like source code
# (zlib ~3-4x), so pack sizes are neither inflated by noise nor collapsed by repetition.
_VOCABULARY = (
    "func return if else for range err nil struct interface package import const var type map chan go defer "
    "select case switch break continue string int64 uint32 byte error context client server request response "
    "config policy route endpoint address network felix calico node ipam bgp peer pool block handle update"
)
_WORDS = tuple(_VOCABULARY.split())


def git(*args: str, env: Mapping[str, str], stdin: bytes | None = None, cwd: Path | None = None) -> str:
    """Run git; raise RuntimeError with its stderr when it fails."""
    result = subprocess.run(["git", *args], input=stdin, capture_output=True, env=dict(env), cwd=cwd, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args[:3])} failed ({result.returncode}): {result.stderr.decode()[-800:]}")
    return result.stdout.decode()


def _commit(out: bytearray, ref: str, mark: int, parent: int | None, when: int, message: str,
            files: Iterable[tuple[str, bytes]], *, deleteall: bool = False) -> None:
    msg = message.encode() + b"\n"
    out += b"commit %s\nmark :%d\n" % (ref.encode(), mark)
    out += b"author %s %d +0000\ncommitter %s %d +0000\n" % (IDENTITY, when, IDENTITY, when)
    out += b"data %d\n%s" % (len(msg), msg)
    if parent is not None:
        out += b"from :%d\n" % parent
    if deleteall:
        out += b"deleteall\n"
    for path, data in files:
        out += b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data)
    out += b"\n"


def _tag(out: bytearray, name: str, mark: int, when: int) -> None:
    message = f"Release {name}\n".encode()
    out += b"tag %s\nfrom :%d\ntagger %s %d +0000\n" % (name.encode(), mark, IDENTITY, when)
    out += b"data %d\n%s\n" % (len(message), message)


def import_repo(path: Path, stream: bytes, env: Mapping[str, str]) -> None:
    """A bare repository at ``path`` holding the history of a fast-import ``stream``."""
    git("init", "--quiet", "--bare", "--initial-branch=main", str(path), env=env)
    git("--git-dir", str(path), "fast-import", "--quiet", "--done", stdin=stream + b"done\n", env=env)


def cpu_repo(path: Path, env: Mapping[str, str]) -> str:
    """One commit holding burn.sh, which spins awk for the iteration count it is given."""
    script = (b"#!/bin/sh\n# CPU-bound stand-in for a compiler: spin, then write the output.\nset -eu\n"
              b"mkdir -p out\nawk -v n=\"$1\" 'BEGIN { s = 0; for (i = 0; i < n; i++) s += i % 7; print s }' "
              b">\"out/$2.tmp\"\nmv \"out/$2.tmp\" \"out/$2\"\n")
    out = bytearray()
    _commit(out, "refs/heads/main", 1, None, EPOCH, "Add the burner", [("burn.sh", script)])
    out += b"reset refs/tags/v1.0.0\nfrom :1\n\n"
    import_repo(path, bytes(out), env)
    return git("--git-dir", str(path), "rev-parse", "v1.0.0^{commit}", env=env).strip()


def cpu_manifest(repos: Mapping[str, tuple[Path, str]], iterations: int) -> dict[str, Any]:
    """One binary per repo; each burns ``iterations`` awk loop turns (~1 s of CPU)."""
    return {
        "schema": 1,
        "release": "bench-cpu",
        "defaults": {"network": "none"},
        "repos": {
            name: {
                "url": path.as_uri(),
                "ref": "v1.0.0",
                "commit": commit,
                "artifacts": {name: {"type": "binary", "command": f"sh burn.sh {iterations} {name}",
                                     "outputs": [f"out/{name}"]}},
            }
            for name, (path, commit) in repos.items()
        },
    }


def _text(rng: random.Random, lines: int) -> bytes:
    return "".join(" ".join(rng.choices(_WORDS, k=rng.randint(4, 12))) + "\n" for _ in range(lines)).encode()


def history_repo(path: Path, commits: int, env: Mapping[str, str], *, seed: int = 5) -> dict[str, Any]:
    """A repository with ``commits`` commits on main, and an annotated tag ``v1.0.0``
    ten commits below the tip (the usual shape: the release, then development).

    Each commit rewrites a few lines of 2-4 of ~200 files and sometimes adds a file, so
    the history weighs what an active project's does: many versions of each file.
    """
    rng = random.Random(seed)
    files: dict[str, list[bytes]] = {}
    for i in range(120):
        files[f"pkg{i % 12}/file{i}.go"] = _text(rng, rng.randint(30, 120)).splitlines(keepends=True)
    out = bytearray()
    tag_at = max(1, commits - 10)
    for mark in range(1, commits + 1):
        when = EPOCH + mark * 3600
        if mark == 1:
            changed = list(files)
        else:
            changed = rng.sample(sorted(files), rng.randint(2, 4))
            if rng.random() < 0.02:
                new = f"pkg{rng.randrange(12)}/new{mark}.go"
                files[new] = _text(rng, rng.randint(20, 80)).splitlines(keepends=True)
                changed.append(new)
        for name in changed:
            lines = files[name]
            for _ in range(rng.randint(1, 6)):
                lines[rng.randrange(len(lines))] = _text(rng, 1)
            if rng.random() < 0.3:
                lines.insert(rng.randrange(len(lines) + 1), _text(rng, 1))
        _commit(out, "refs/heads/main", mark, mark - 1 if mark > 1 else None, when, f"Change {mark}",
                [(name, b"".join(files[name])) for name in changed])
        if mark == tag_at:
            _tag(out, "v1.0.0", mark, when)
    import_repo(path, bytes(out), env)
    # fast-import's pack is poorly deltified: repack like a hosting server's gc would,
    # so the full clone is measured against a realistically packed history.
    git("--git-dir", str(path), "repack", "-a", "-d", "-f", "--window=50", "--depth=50", "--quiet", env=env)
    commit = git("--git-dir", str(path), "rev-parse", "v1.0.0^{commit}", env=env).strip()
    return {"path": path, "commit": commit, "commits": commits, "files_at_tip": len(files)}


def history_manifest(path: Path, commit: str) -> dict[str, Any]:
    return {
        "schema": 1,
        "release": "bench-fetch",
        "repos": {"history": {"url": path.as_uri(), "ref": "v1.0.0", "commit": commit,
                              "artifacts": {"history-src": {"type": "library"}}}},
    }


def scale_manifest(repos: int) -> dict[str, Any]:
    """A valid manifest of ``repos`` repositories with 4 artifacts each (one per type).

    Within a repo the image requires the binary and stages it; every tenth repo's binary
    requires the previous repo's library, so the graph has edges across repos too.
    """
    entries: dict[str, Any] = {}
    for i in range(repos):
        name = f"repo{i:05d}"
        binary: dict[str, Any] = {"type": "binary", "description": f"Tool {i}.", "command": "make build",
                                  "outputs": [f"bin/tool{i:05d}"], "env": {"CGO_ENABLED": "0"}}
        if i % 10 == 9:
            binary["requires"] = [f"repo{i - 1:05d}-src"]
        entries[name] = {
            "url": f"https://git.example.invalid/team{i % 37}/{name}.git",
            "ref": f"v1.{i}.0",
            "commit": hashlib.sha1(name.encode()).hexdigest(),
            "description": f"Repository {i}.",
            "artifacts": {
                f"{name}-bin": binary,
                f"team{i % 37}/{name}": {"type": "image", "dockerfile": "Dockerfile",
                                         "requires": [f"{name}-bin"],
                                         "stage": {f"bin/tool{i:05d}": f"{name}-bin"},
                                         "buildargs": {"VERSION": "1.0"}},
                f"{name}-py": {"type": "python-package"},
                f"{name}-src": {"type": "library"},
            },
        }
    return {"schema": 1, "release": "v9.9.9", "defaults": {"registry": "registry.example.invalid/",
                                                           "env": {"ARCH": "amd64"}}, "repos": entries}


def write_yaml(path: Path, document: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: 5,000 repos in a second, not ten
    path.write_text(yaml.dump(dict(document), Dumper=dumper, sort_keys=False, width=1000), encoding="utf-8")
    return path


# The release refs of the peer benchmark's eight repositories: the shapes a real
# multi-repo release pins (Calico v3.2 has each of them).
PEER_SHAPES = (
    ("felix", "annotated"),  # an annotated tag a few commits below main
    ("calicoctl", "lightweight"),  # a lightweight tag
    ("cni-plugin", "annotated-off-branch"),  # an annotated tag on a commit no branch holds
    ("kube-controllers", "lightweight"),
    ("libcalico-go", "commit"),  # a commit pinned by id, below main's tip
    ("node", "annotated"),
    ("libnetwork-plugin", "lightweight-off-branch"),  # a lightweight tag on no branch
    ("libcalico", "branch"),  # a release branch, its commit pinned
)


def peer_repo(path: Path, shape: str, env: Mapping[str, str], *, seed: int, commits: int,
              files: int) -> dict[str, Any]:
    """A repository with ``commits`` commits of history on main and a release ref of
    the given ``shape`` (see PEER_SHAPES): returns the ref to pin and its commit."""
    rng = random.Random(seed)
    tree: dict[str, list[bytes]] = {}
    for i in range(files):
        tree[f"pkg{i % 16}/file{i}.go"] = _text(rng, rng.randint(20, 100)).splitlines(keepends=True)
    out = bytearray()
    release_at = commits - rng.randint(5, 30)
    for mark in range(1, commits + 1):
        changed = list(tree) if mark == 1 else rng.sample(sorted(tree), rng.randint(1, 4))
        for name in changed[:4] if mark > 1 else []:
            lines = tree[name]
            for _ in range(rng.randint(1, 5)):
                lines[rng.randrange(len(lines))] = _text(rng, 1)
        _commit(out, "refs/heads/main", mark, mark - 1 if mark > 1 else None, EPOCH + mark * 3600,
                f"Change {mark}", [(name, b"".join(tree[name])) for name in changed])
    side = commits + 1  # the release commit of the off-branch shapes: main's commit plus a version bump
    if shape.endswith("off-branch"):
        _commit(out, "refs/heads/release-tmp", side, release_at, EPOCH + side * 3600, "Release v3.2.0",
                [("VERSION", b"v3.2.0\n")])
    target = side if shape.endswith("off-branch") else release_at
    ref = "v3.2.0"
    if shape.startswith("annotated"):
        _tag(out, ref, target, EPOCH + target * 3600)
    elif shape.startswith("lightweight"):
        out += b"reset refs/tags/%s\nfrom :%d\n\n" % (ref.encode(), target)
    elif shape == "branch":
        ref = "release-v3.2"
        out += b"reset refs/heads/%s\nfrom :%d\n\n" % (ref.encode(), target)
    import_repo(path, bytes(out), env)
    if shape.endswith("off-branch"):
        git("--git-dir", str(path), "update-ref", "-d", "refs/heads/release-tmp", env=env)
    git("--git-dir", str(path), "repack", "-a", "-d", "-f", "--window=20", "--quiet", env=env)
    if shape == "commit":
        ref = git("--git-dir", str(path), "rev-parse", f"main~{commits - release_at}", env=env).strip()
    commit = git("--git-dir", str(path), "rev-parse", f"{ref}^{{commit}}", env=env).strip()
    return {"path": path, "shape": shape, "ref": ref, "commit": commit, "commits": commits, "files": files}


def peer_manifests(repos: Mapping[str, Mapping[str, Any]], url_of: Mapping[str, str]) -> dict[str, Any]:
    """The same eight pins as our manifest, west's west.yml and vcstool's .repos file."""
    ours = {"schema": 1, "release": "bench-peers", "repos": {
        name: {"url": url_of[name], "ref": r["ref"], "commit": r["commit"], "artifacts": {}}
        for name, r in repos.items()}}
    west = {"manifest": {"projects": [{"name": name, "url": url_of[name], "revision": r["ref"], "path": name}
                                      for name, r in repos.items()], "self": {"path": "manifest"}}}
    vcs = {"repositories": {name: {"type": "git", "url": url_of[name], "version": r["ref"]}
                            for name, r in repos.items()}}
    return {"orchestrator": ours, "west": west, "vcstool": vcs}
