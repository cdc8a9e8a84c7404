"""The built-in demo: local repositories shaped like Calico v3.2's, and a manifest for them.

``invoke demo`` calls :func:`create_demo`, then builds the manifest it returns. The
repositories carry the same names, artifacts and *kinds* of refs as ``manifest.yaml``
(annotated and lightweight tags, tags only on a release branch, a tag on no branch, a
bare commit pin), so the demo exercises every path of the fetcher, while the recipes
are a few lines of POSIX sh and ``FROM scratch`` Dockerfiles that build offline.

Histories are written with ``git fast-import`` from a stream built here, with fixed
identities and dates, so every machine gets the same commit ids. Git runs through
``orchestrator.gitcmd`` like every other git process (no docker here).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator import gitcmd
from orchestrator.errors import SourceError, tail
from orchestrator.fileops import write_atomic
from orchestrator.kinds import binary, image, library, python_package
from orchestrator.workspace import refuse_links

# The demo lives in its own namespace: its own release name, and an image registry
# prefix in the reserved .invalid domain (RFC 2606), which no resolver will ever answer,
# so nothing the demo builds can replace a user's real calico/* images or reach a public
# registry. `publish --registry HOST:PORT/` puts its images where you choose.
DEMO_RELEASE = "v3.2.0-demo"
DEMO_REGISTRY = "orchestrator-demo.invalid/"
_HISTORY_RELEASE = "v3.2.0"  # named in commit messages: keeps the demo's commit ids stable

_NAME, _EMAIL = "Calico Demo", "demo@example.invalid"
_IDENTITY = f"{_NAME} <{_EMAIL}>"
# 2018-07-02, 2018-08-14 (the v3.2.0 release day), 2018-08-15, 2018-08-20; all UTC.
_BASE_TIME, _PIN_TIME, _FORK_TIME, _NEXT_TIME = 1530489600, 1534248000, 1534334400, 1534723200
# Recorded in each demo repository's config; a repository is reused only when it matches.
_STAMP_KEY = "demo.recipe"

_BUILD_SH = r"""#!/bin/sh
# Offline stand-in for the real recipe (Go in Docker, with network): writes small
# scripts that report what they were built from. RELEASE and GIT_COMMIT are set by
# the orchestrator; ARCH defaults like the real Makefiles' ARCH ?= amd64.
set -eu
: "${RELEASE:?set by the orchestrator}" "${GIT_COMMIT:?set by the orchestrator}"
ARCH="${ARCH:-amd64}"
emit() {
    mkdir -p "$(dirname "$1")"
    printf '#!/bin/sh\necho "%s %s (commit %s)"\n' "$2" "$RELEASE" "$GIT_COMMIT" >"$1.tmp"
    chmod 755 "$1.tmp"
    mv "$1.tmp" "$1"
}
"""


def _build_sh(*outputs: tuple[str, str]) -> str:
    """A build.sh writing each ``(path, program name)``; paths may use ``$ARCH``."""
    return _BUILD_SH + "".join(f'emit "{path}" {name}\n' for path, name in outputs)


def _binary(description: str, *outputs: str) -> dict[str, Any]:
    return {"type": binary.NAME, "description": description, "command": "sh build.sh", "outputs": list(outputs)}


def _image(description: str, dockerfile: str, **extra: Any) -> dict[str, Any]:
    return {"type": image.NAME, "description": description, "dockerfile": dockerfile, **extra}


@dataclass(frozen=True, slots=True, kw_only=True)
class _Repo:
    """One demo repository: its pinned tree, where the pin sits, and its manifest entries."""

    description: str
    tag: str | None  # None: pinned by bare commit, like libcalico-go
    annotated: bool = False
    branch: str = "main"  # the branch holding the pinned commit; "" for none
    fork: str | None = None  # a branch that forks at the pinned commit
    files: Mapping[str, str] = field(default_factory=dict)
    artifacts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def shape(self) -> str:
        if self.tag is None:
            return f"bare commit pin, the fork point of branch {self.fork}" if self.fork else "bare commit pin"
        kind = "annotated tag" if self.annotated else "lightweight tag"
        where = f"only on branch {self.branch}" if self.branch else "on no branch"
        if self.branch == "main":
            where = "on main"
        return f"{self.tag}: {kind} {where}"


# Descriptions are the documented ones, as in manifest.yaml (tests keep them equal).
_REPOS: dict[str, _Repo] = {
    "felix": _Repo(
        description="Felix, the per-host policy agent.",
        tag="v3.2.0", annotated=True,
        files={"build.sh": _build_sh(("bin/calico-felix", "calico-felix"))},
        artifacts={"felix": _binary(
            "Felix interfaces with the Linux kernel to configure routes and ACLs that control network policy "
            "and connectivity.", "bin/calico-felix")},
    ),
    "calicoctl": _Repo(
        description="The Calico command line tool.",
        tag="v3.2.0", annotated=True, branch="release-v3.2",
        files={"build.sh": _build_sh(("bin/calicoctl", "calicoctl"))},
        artifacts={"calicoctl": _binary(
            "The command line tool for interacting with the Calico API.  See calicoctl reference for more info.",
            "bin/calicoctl")},
    ),
    "node": _Repo(
        description="The calico/node container image.",
        tag="v3.2.0", annotated=True, branch="release-v3.2",
        # Every demo image is `COPY <tree>/ /`: the classic builder gives a directory a COPY
        # creates (/bin for `COPY f /bin/f`) the build's time, so its layer differs on every
        # build; a tree brings its own, with the context's times (builders/image.clamp_times).
        files={"Dockerfile.amd64": "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/bin/calico-felix\"]\n"},
        artifacts={"calico/node": _image(
            "The Docker image used to run Felix and the BIRD BGP agent (for distributing routes between hosts).  "
            "See calico/node reference for details.", "Dockerfile.amd64",
            stage={"rootfs/bin/calico-felix": "felix"})},
    ),
    "libcalico": _Repo(
        description="Python library for Calico (package pycalico).",
        tag="v0.19.0",
        files={
            "pyproject.toml": '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
                              '\n[project]\nname = "pycalico"\nversion = "0.19.0"\n'
                              'description = "Demo stand-in for libcalico"\n'
                              # calico_test/ beside it would make flat-layout discovery refuse to guess.
                              '\n[tool.setuptools]\npackages = ["pycalico"]\n',
            "pycalico/__init__.py": '"""Demo stand-in for libcalico."""\n\n__version__ = "0.19.0"\n',
            "calico_test/README.md": "Shared test framework code (demo stand-in).\n",
            "Dockerfile.calico_test": "FROM scratch\nCOPY rootfs-test/ /\n",
            "Dockerfile": "FROM scratch\nCOPY rootfs-build/ /\n",
        },
        artifacts={
            # command and outputs left unset: the python-package defaults apply.
            "libcalico": {"type": python_package.NAME, "description": (
                "Contains a variety of helper methods and classes for manipulating the Calico data in an etcd "
                "datastore, IP address management and useful namespace utilities to manipulating container "
                "interfaces.")},
            "calico/test": _image(
                "Contains useful shared testing framework code and dependencies for running unit and system tests "
                "of Calico in Docker.", "Dockerfile.calico_test",
                command="mkdir -p rootfs-test/calico_test && cp calico_test/README.md rootfs-test/calico_test/"),
            "calico/build": _image(
                "Build image which includes libcalico and the necessary python tooling to produce binaries from "
                "python source code.", "Dockerfile",
                command="mkdir -p rootfs-build/code/pycalico && cp pycalico/__init__.py rootfs-build/code/pycalico/"),
        },
    ),
    "libcalico-go": _Repo(
        description="The Go library behind the Calico API.",
        tag=None, fork="release-v3.2",
        files={
            "lib/apis/v3/doc.go": "// Package v3 holds the Calico API types (demo stand-in).\npackage v3\n",
            "lib/clientv3/client.go": "package clientv3\n\n// Version is the demo library version.\n"
                                      'const Version = "v3.2.0"\n',
        },
        artifacts={"libcalico-go": {"type": library.NAME, "description": (
            "Contains a variety of helper methods and classes for interacting with the Calico API.")}},
    ),
    "cni-plugin": _Repo(
        description="Calico's CNI plugins.",
        tag="v3.2.0", branch="",
        files={"build.sh": _build_sh(("bin/$ARCH/calico", "calico"), ("bin/$ARCH/calico-ipam", "calico-ipam"))},
        artifacts={
            "calico": _binary(
                "Calico networking plugin for any orchestrator that uses the Container Network Interface, e.g. rkt, "
                "Kubernetes, and Mesos.", "bin/amd64/calico"),
            "calico-ipam": _binary("Calico CNI IP address management plugin.", "bin/amd64/calico-ipam"),
        },
    ),
    "libnetwork-plugin": _Repo(
        description="Docker libnetwork plugin for Calico.",
        tag="v1.1.3", branch="release-v2.6",
        files={"build.sh": _build_sh(("dist/$ARCH/libnetwork-plugin", "libnetwork-plugin"))},
        artifacts={"libnetwork-plugin": _binary(
            "Docker networking plugin for use with Docker and Docker Swarm. It provides both network and IPAM "
            "drivers which may be used when creating networks through Docker.", "dist/amd64/libnetwork-plugin")},
    ),
    "kube-controllers": _Repo(
        description="Calico's Kubernetes controllers.",
        tag="v3.2.0", annotated=True,
        files={
            "build.sh": _build_sh(("bin/kube-controllers-linux-$ARCH", "kube-controllers"),
                                  ("bin/check-status-linux-$ARCH", "check-status"))
                        + "mkdir -p rootfs/usr/bin\n"
                          'cp bin/kube-controllers-linux-"$ARCH" rootfs/usr/bin/kube-controllers\n'
                          'cp bin/check-status-linux-"$ARCH" rootfs/usr/bin/check-status\n',
            "Dockerfile.amd64": "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/usr/bin/kube-controllers\"]\n",
        },
        artifacts={"calico/kube-controllers": _image(
            "Integrates with the Kubernetes API for additional features.", "Dockerfile.amd64",
            command="sh build.sh")},
    ),
}  # fmt: skip


def create_demo(root: Path, *, registry: str = DEMO_REGISTRY) -> Path:
    """Create (or reuse) the demo repositories under root/repos/<name>, write root/manifest.yaml, return its path.

    Repositories that already hold exactly the demo history are kept as they are;
    missing, partial or damaged ones are rebuilt in a temporary directory and renamed
    into place. Commit ids are the same on every machine. Raises SourceError when git
    fails.
    """
    root = Path(root).absolute()
    repos_dir = root / "repos"
    # Whatever is at repos/<name> and is not the demo's history is replaced: never elsewhere.
    refuse_links(root, repos_dir)
    repos_dir.mkdir(parents=True, exist_ok=True)
    pins = {name: _ensure_repo(repos_dir / name, name, spec) for name, spec in _REPOS.items()}
    manifest = root / "manifest.yaml"
    _write_atomic(manifest, _manifest_text(repos_dir, pins, registry))
    return manifest


def _ensure_repo(path: Path, name: str, spec: _Repo) -> str:
    """The pinned commit of the demo repository at ``path``, (re)building it if needed."""
    stream = _history(name, spec)
    stamp = hashlib.sha256(stream).hexdigest()
    pin = _current_pin(path, spec, stamp)
    if pin is not None:
        return pin
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=path.parent))
    try:
        _git("init", "--quiet", "--bare", "--template=", str(tmp))
        _git("--git-dir", str(tmp), "fast-import", "--quiet", "--done", stdin=stream)
        # The stamp goes in last: a directory carrying it holds a complete history.
        _git("--git-dir", str(tmp), "config", _STAMP_KEY, stamp)
        pin = _rev_parse(tmp, spec)
        if pin is None:  # unreachable unless git itself misbehaves
            raise SourceError(f"creating the demo repository {path}: its pinned ref did not resolve after import")
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the repository from other users
        _replace(path, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return pin


def _current_pin(path: Path, spec: _Repo, stamp: str) -> str | None:
    """The pinned commit when ``path`` is an intact repository of this very history, else None."""
    if not (path / "HEAD").is_file():
        return None
    git_dir = ("--git-dir", str(path))
    recorded = _git(*git_dir, "config", "--get", _STAMP_KEY, check=False)
    if not recorded.ok or recorded.stdout.strip() != stamp:
        return None
    if not _git(*git_dir, "fsck", "--no-progress", "--no-dangling", check=False).ok:
        return None
    return _rev_parse(path, spec)


def _rev_parse(git_dir: Path, spec: _Repo) -> str | None:
    # Without a tag the pin is on main, one commit below its head (see _history).
    ref = f"refs/tags/{spec.tag}" if spec.tag else "refs/heads/main~1"
    result = _git("--git-dir", str(git_dir), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    return result.stdout.strip() if result.ok else None


def _replace(path: Path, new: Path) -> None:
    """Move directory ``new`` to ``path``, setting aside whatever was there first."""
    if not os.path.lexists(path):
        new.rename(path)
        return
    # A directory cannot be os.replace()d over a non-empty one: move the old one aside.
    holder = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
    try:
        path.rename(holder / "old")
        new.rename(path)
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def _history(name: str, spec: _Repo) -> bytes:
    """The ``git fast-import`` stream of the repository: every byte is fixed, so is every id.

    main: base (1) -> pinned (2) -> next (3) when the pin is on main; otherwise the pin
    forks from base on its release branch (or on no branch at all) and main moves on
    from base, so the pin is never the head of main.
    """
    readme = f"# {name}\n\nDemo stand-in for https://github.com/projectcalico/{name}, created by `invoke demo`.\n"
    base = {"README.md": readme}
    pinned = {**base, **spec.files}
    out = bytearray()
    if spec.branch:
        pin_ref = f"refs/heads/{spec.branch}"
    else:
        # Committing straight onto the tag ref leaves the commit on no branch, like
        # upstream cni-plugin's v3.2.0 whose branch was deleted.
        assert spec.tag is not None and not spec.annotated, "only a lightweight tag can hold a branchless commit"
        pin_ref = f"refs/tags/{spec.tag}"
    release = spec.tag or _HISTORY_RELEASE
    _commit(out, "refs/heads/main", 1, None, _BASE_TIME, "Initial import", base)
    _commit(out, pin_ref, 2, 1, _PIN_TIME, f"Release {release}", pinned)
    if spec.tag and spec.annotated:
        message = f"Release {spec.tag}\n".encode()
        out += b"tag %s\nfrom :2\ntagger %s %d +0000\n" % (spec.tag.encode(), _IDENTITY.encode(), _PIN_TIME)
        out += b"data %d\n%s\n" % (len(message), message)
    elif spec.tag and spec.branch:
        out += b"reset refs/tags/%s\nfrom :2\n\n" % spec.tag.encode()
    if spec.fork:
        fork_files = {**pinned, "README.md": readme + f"\nBranch {spec.fork}.\n"}
        _commit(out, f"refs/heads/{spec.fork}", 4, 2, _FORK_TIME, f"Start branch {spec.fork}", fork_files)
    next_files = {**pinned, "README.md": readme + f"\nDevelopment after {release}.\n"}
    _commit(out, "refs/heads/main", 3, 2 if spec.branch == "main" else 1, _NEXT_TIME, "Start next development",
            next_files)
    out += b"done\n"
    return bytes(out)


def _commit(out: bytearray, ref: str, mark: int, parent: int | None, when: int, message: str,
            files: Mapping[str, str]) -> None:
    """Append one commit whose tree is exactly ``files`` (``deleteall`` drops the parent's)."""
    msg = (message + "\n").encode()
    out += b"commit %s\nmark :%d\n" % (ref.encode(), mark)
    for role in (b"author", b"committer"):
        out += b"%s %s %d +0000\n" % (role, _IDENTITY.encode(), when)
    out += b"data %d\n%s" % (len(msg), msg)
    if parent is not None:
        out += b"from :%d\n" % parent
    out += b"deleteall\n"
    for path in sorted(files):
        data = files[path].encode()
        mode = b"100755" if path.endswith(".sh") else b"100644"
        out += b"M %s inline %s\ndata %d\n%s\n" % (mode, path.encode(), len(data), data)
    out += b"\n"


def _git_env() -> dict[str, str]:
    """Fixed identity and dates, and no user or system config: the same ids everywhere."""
    date = f"{_PIN_TIME} +0000"
    return dict(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME=_NAME, GIT_AUTHOR_EMAIL=_EMAIL, GIT_AUTHOR_DATE=date,
        GIT_COMMITTER_NAME=_NAME, GIT_COMMITTER_EMAIL=_EMAIL, GIT_COMMITTER_DATE=date,
    )  # fmt: skip


def _git(*args: str, stdin: bytes | None = None, check: bool = True) -> gitcmd.GitResult:
    """One git command through the one door (gitcmd), with the demo's fixed identity."""
    argv = ["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", "-c", "init.defaultBranch=main", *args]
    result = gitcmd.run(argv, env=_git_env(), stdin=stdin)
    if check and not result.ok:
        output = result.stderr or result.stdout
        raise SourceError(f"creating the demo: `git {' '.join(argv)}` exited with {result.status}:\n{tail(output)}")
    return result


def _manifest_text(repos_dir: Path, pins: Mapping[str, str], registry: str) -> str:
    repos: dict[str, Any] = {}
    for name, spec in _REPOS.items():
        repos[name] = {
            "url": (repos_dir / name).as_uri(),
            "ref": spec.tag or pins[name],
            "commit": pins[name],
            "description": spec.description,
            "artifacts": {aname: dict(artifact) for aname, artifact in spec.artifacts.items()},
        }
    doc = {
        "schema": 1,
        "release": DEMO_RELEASE,
        "defaults": {"registry": registry, "env": {"ARCH": "amd64"}, "network": "none"},
        "repos": repos,
    }
    shapes = "".join(f"#   {name:<18} {spec.shape}\n" for name, spec in _REPOS.items())
    header = (
        "# Generated by `invoke demo` (orchestrator/sandbox.py); rewritten on every run.\n"
        "#\n"
        "# The offline demo release. It mirrors manifest.yaml's shapes: the same repository and\n"
        "# artifact names and types, and the same kinds of refs, served from local repositories\n"
        f"# under {repos_dir}. The recipes are POSIX sh scripts and FROM scratch\n"
        "# Dockerfiles, so everything builds without network (defaults.network: none).\n"
        f"# Its own namespace: release {DEMO_RELEASE}, images under {registry} (never a real\n"
        "# release's names; `publish --registry HOST:PORT/` pushes them where you choose).\n"
        "#\n"
        "# Ref shapes (as in manifest.yaml):\n" + shapes
    )
    return header + yaml.safe_dump(doc, sort_keys=False, width=1000, default_flow_style=False)


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (fileops.write_atomic), unless it holds it already."""
    data = text.encode()
    with contextlib.suppress(OSError):
        if path.read_bytes() == data:
            return  # unchanged: keep the file (and its mtime) as it is
    write_atomic(path, data)
