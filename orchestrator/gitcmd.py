"""The one door to the git executable, and what its failures mean.

Every git process of the orchestrator runs here (the sources layer, library archives,
the demo's repositories): argv lists through GitPython, an environment scrubbed of
leaked ``GIT_*`` variables, and only the transports a manifest may use. GitPython is
imported lazily, so importing this module costs nothing on paths that never run git
(``invoke manifest`` must not load it).

Which git settings can run a program or send git elsewhere, and how each is
neutralised. The user's own global and system config is trusted (their credential
helper, ``core.sshCommand``, ``url.*.insteadOf`` keep working); a repository's config,
hooks and attributes are not, since the mirror cache and checkouts are writable by
others and their content comes from remote repositories.

- Hooks (``$GIT_DIR/hooks/*``, ``core.hooksPath``): ``core.hooksPath=/dev/null`` on
  every command, so no hook ever runs, whoever wrote it.
- ``core.fsmonitor`` (a command run by every index refresh: checkout, clean, status):
  an empty ``core.fsmonitor`` on every command.
- Replace refs and grafts (``refs/replace/*``, ``info/grafts``) make git substitute
  other objects for the pinned ones: ``core.useReplaceRefs=false``; grafts are refused
  by the repository check below.
- Submodules (``submodule.*.update=!cmd``, recursion into ``.gitmodules`` URLs):
  ``submodule.recurse=false`` and ``fetch.recurseSubmodules=false``.
- Transports that run commands (``ext::``, ``fd::``, any remote helper, including
  after a ``url.*.insteadOf`` rewrite): ``protocol.allow=never`` with only https, ssh,
  git and file allowed; ``-c`` beats every config file.
- Everything else that runs a program lives in config *files*, where ``-c`` cannot
  reach all of it (names are free-form: ``filter.<driver>.smudge``/``clean``/``process``,
  ``diff.<driver>.textconv``/``command``, ``merge.<driver>.driver``,
  ``remote.<name>.uploadpack``/``vcs``/``proxy``, ``credential.helper``,
  ``core.sshCommand``, ``core.gitProxy``, ``core.askPass``, ``core.alternateRefsCommand``,
  ``core.pager``/``core.editor``, ``gpg.program``, ``include.path``/``includeIf``
  pulling in any of those, and ``core.worktree``/``extensions.*`` redirecting git).
  So the repository config is pinned: ``orchestrator.repoconfig`` writes the
  ``config`` of every mirror and checkout itself, and before each use compares its
  bytes with what it wrote and checks that no ``commondir``, ``info/grafts``,
  ``info/attributes`` or ``objects/info/alternates`` appeared. Anything else means
  someone else wrote it: the repository is discarded and made again (a mirror is
  fetched again, a checkout re-made from the mirror). A filter or diff driver named
  by ``.gitattributes`` in the work tree therefore finds no command to run, unless
  the user's own config defines one.
- ``uploadpack.packObjectsHook`` and ``safe.directory`` are read only from the user's
  and the command line's config, never a repository's.
- Environment variables that retarget git or add config (``GIT_DIR``,
  ``GIT_CONFIG_*``, ``GIT_EXEC_PATH`` aside) are dropped; see ``KEPT_GIT_VARS``.

And a builder container never gets the host's ``.git``, only a copy that is never
brought back (``orchestrator.treecopy``).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from orchestrator.errors import SourceError, tail
from orchestrator.redact import redact as redact  # re-exported: the one redaction rule

# Remote helpers such as ext:: and fd:: run arbitrary commands: allow only the
# transports a manifest may name, whatever the user's or a repository's config says.
SAFE_CONFIG: tuple[str, ...] = (
    "-c", "protocol.allow=never",
    "-c", "protocol.https.allow=always",
    "-c", "protocol.ssh.allow=always",
    "-c", "protocol.git.allow=always",
    "-c", "protocol.file.allow=always",
    "-c", "protocol.version=2",
    # No hook runs, whoever wrote it: a user's global hooksPath, or one planted in a repository.
    "-c", "core.hooksPath=/dev/null",
    # A command of the repository's (or the user's) run at every index refresh. Empty
    # rather than "false": git before 2.36 takes the value as a program to run.
    "-c", "core.fsmonitor=",
    # refs/replace/<pinned commit> would make checkout and archive use another tree.
    "-c", "core.useReplaceRefs=false",
    "-c", "submodule.recurse=false",
    "-c", "fetch.recurseSubmodules=false",
    "-c", "advice.detachedHead=false",
    "-c", "init.defaultBranch=main",
    # git has no timeout of its own: an https transfer stalled below 1 KB/s for 60 s
    # is abandoned (and then retried like any network fault) instead of hanging.
    "-c", "http.lowSpeedLimit=1000",
    "-c", "http.lowSpeedTime=60",
)  # fmt: skip

# Hooks and CI leak GIT_DIR, GIT_INDEX_FILE, GIT_CONFIG_PARAMETERS, GIT_ALLOW_PROTOCOL...
# which silently retarget git or re-enable transports: they are all dropped. Kept are
# only settings a user needs to reach a server (pre-commit's no_git_env keeps the same
# kind of list): dropping GIT_SSH_COMMAND or GIT_SSL_CAINFO would break CI deploy keys
# and corporate CAs. GIT_SSL_NO_VERIFY is not kept: a leaked one must not silently
# turn off TLS checks for a release.
KEPT_GIT_VARS = frozenset(
    {
        "GIT_EXEC_PATH",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_SSH_VARIANT",
        "GIT_ASKPASS",
        "GIT_SSL_CAINFO",
        "GIT_SSL_CAPATH",
        "GIT_HTTP_PROXY_AUTHMETHOD",
    }
)
OWN_ENV = {"GIT_TERMINAL_PROMPT": "0"}


Failure = Literal["refused", "missing-ref", "no-repository", "auth", "network"]

# Matched against git's stderr; GitPython runs git with LC_ALL=C, so it is English.
_FAILURES: tuple[tuple[Failure, re.Pattern[str]], ...] = (
    (
        "refused",
        re.compile(
            r"does not allow request for unadvertised object|not our ref"
            r"|does not support shallow|no such remote ref [0-9a-f]{40}",
            re.I,
        ),
    ),
    ("missing-ref", re.compile(r"couldn't find remote ref", re.I)),
    (
        "no-repository",
        re.compile(
            r"does not appear to be a git repository|repository .*not found"
            r"|returned error: 404",
            re.I,
        ),
    ),
    (
        "auth",
        re.compile(
            r"authentication failed|could not read (username|password)"
            r"|terminal prompts disabled|permission denied \(publickey"
            r"|returned error: 40[13]",
            re.I,
        ),
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class GitResult:
    """What one git command did; ``args`` are the caller's arguments (for messages)."""

    args: tuple[str, ...]
    status: int
    stdout: str
    stderr: str
    tries: int = 1
    data: bytes = b""  # stdout as bytes, when run with binary=True (stdout is then "")

    @property
    def ok(self) -> bool:
        return self.status == 0


def scrubbed_git_vars(environ: Mapping[str, str] | None = None) -> list[str]:
    """Names of inherited ``GIT_*`` variables that git must not see."""
    environ = os.environ if environ is None else environ
    return sorted(name for name in environ if name.startswith("GIT_") and name not in KEPT_GIT_VARS | OWN_ENV.keys())


def run(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    git_dir: Path | None = None,
    work_tree: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    binary: bool = False,
) -> GitResult:
    """Run one git command and return its result; a git failure is not raised.

    Pass ``git_dir``/``work_tree`` for our own repositories: were one damaged, git's
    discovery would walk up into an enclosing repository (the project itself) and
    check out or clean *that*. ``env`` adds variables for this command only (values
    reach the process environment, never its argv; a ``GIT_*`` name given here is
    kept even though an inherited one would be dropped). ``stdin`` is fed to git;
    with ``binary`` stdout is kept as bytes in ``data`` (``git archive``).
    """
    import git  # noqa: PLC0415  (lazy: see the module docstring)

    command = git.cmd.Git(str(cwd) if cwd is not None else None)
    argv: list[str] = [*SAFE_CONFIG]
    if git_dir is not None:
        argv.append(f"--git-dir={git_dir}")
    if work_tree is not None:
        argv.append(f"--work-tree={work_tree}")
    # GitPython always starts from a copy of os.environ and can only add to it, so
    # leaked variables are removed by `env -u` (their names only reach argv).
    extra = {**OWN_ENV, **(env or {})}
    unset = [arg for name in scrubbed_git_vars() if name not in extra for arg in ("-u", name)]
    program = ["env", *unset] if unset else []
    program.append(command.GIT_PYTHON_GIT_EXECUTABLE or "git")
    try:
        process = command.execute(
            [*program, *argv, *args],
            as_process=True,
            env=extra,
            istream=subprocess.PIPE if stdin is not None else None,
        )
    except (OSError, git.exc.GitCommandNotFound) as e:
        raise SourceError(f"cannot run git: {e}", hint="install git (it must be on PATH)") from e
    proc = process.proc
    assert proc is not None  # as_process always starts one
    stdout, stderr = proc.communicate(stdin)
    return GitResult(
        args=tuple(args),
        status=proc.returncode,
        stdout="" if binary else _text(stdout),
        stderr=_text(stderr),
        data=(stdout or b"") if binary else b"",
    )


def _text(data: bytes | None) -> str:
    """git's output as text, without the final newline (as GitPython returns it)."""
    return (data or b"").decode("utf-8", "replace").removesuffix("\n")


def rev_parse(git_dir: Path, rev: str) -> str | None:
    """The object id ``rev`` names in ``git_dir``, or None if it names nothing there."""
    result = run(["rev-parse", "--verify", "--quiet", rev], git_dir=git_dir)
    return result.stdout.strip() if result.ok else None


def has_commit(git_dir: Path, commit: str) -> bool:
    """``commit`` is in ``git_dir`` *and* its history is walkable.

    A fetch killed after writing objects but before updating ``.git/shallow`` leaves
    a commit whose parents are neither present nor grafted away: it resolves, but
    ``git log`` (and a build's ``git describe``) fail on it. ``rev-list -1`` parses
    the parents, so it tells the two apart; such a commit must be fetched again.
    """
    return rev_parse(git_dir, f"{commit}^{{commit}}") == commit and walkable(git_dir, commit)


def walkable(git_dir: Path, commit: str) -> bool:
    """The history of an existing ``commit`` can be walked (see has_commit)."""
    return commit_timestamp(git_dir, commit) is not None


# Successes only: a commit's time never changes, and a history that could be
# walked stays walkable; a failure may be repaired by the next fetch.
_TIMESTAMPS: dict[tuple[Path, str], int] = {}


def commit_timestamp(git_dir: Path, commit: str) -> int | None:
    """The committer time of ``commit``, or None when its history cannot be walked.

    ``rev-list -1 --timestamp`` parses the commit's parents, so one git process
    answers both "is it walkable" and "when was it committed".
    """
    key = (git_dir, commit)
    if key in _TIMESTAMPS:
        return _TIMESTAMPS[key]
    result = run(["rev-list", "--max-count=1", "--timestamp", commit], git_dir=git_dir)
    stamp = result.stdout.split()[0] if result.ok and result.stdout.strip() else ""
    if not stamp.isdigit():
        return None
    _TIMESTAMPS[key] = int(stamp)
    return int(stamp)


def classify(stderr: str) -> Failure:
    """What kind of remote failure git's message describes; unknown ones are network."""
    for failure, pattern in _FAILURES:
        if pattern.search(stderr):
            return failure
    return "network"


def run_network(
    args: Sequence[str],
    *,
    git_dir: Path,
    retries: int,
    backoff: float,
    on_retry: Callable[[int, float, GitResult], None] | None = None,
) -> GitResult:
    """Run a command that talks to a remote, retrying transient failures with backoff.

    Only failures another try might fix are retried: a refused request, a missing
    ref or repository, or rejected credentials come back at once.
    """
    tries = 1
    while True:
        result = run(args, git_dir=git_dir)
        if result.ok or tries > retries or classify(result.stderr) != "network":
            return GitResult(
                args=result.args,
                status=result.status,
                stdout=result.stdout,
                stderr=result.stderr,
                tries=tries,
            )
        delay = backoff * 2 ** (tries - 1)
        if on_retry is not None:
            on_retry(tries + 1, delay, result)
        time.sleep(delay)
        tries += 1


def trimmed(stderr: str, lines: int = 6) -> str:
    """git's own message, redacted, without blank lines or hints: the last few lines."""
    kept = [
        line.strip()
        for line in redact(stderr).replace("\r", "\n").splitlines()
        if line.strip() and not line.startswith("hint:")
    ]
    return "\n".join(kept[-lines:])


class GitCommandError(SourceError):
    """A local git command failed (mirror or checkout upkeep)."""

    def __init__(self, name: str, result: GitResult) -> None:
        command = redact(" ".join(["git", *result.args]))
        super().__init__(f"{name}: `{command}` failed with exit code {result.status}")
        self.name = name
        self.result = result

    def __str__(self) -> str:
        output = trimmed(self.result.stderr, lines=20) or trimmed(self.result.stdout)
        return f"{self.message}\n{tail(output)}" if output else self.message


def must(result: GitResult, name: str) -> GitResult:
    """``result`` if git succeeded, else a ``GitCommandError`` naming repo ``name``."""
    if not result.ok:
        raise GitCommandError(name, result)
    return result


class RemoteError(SourceError):
    """Talking to a remote failed; the message names the repo, the URL and git's words."""

    problem: ClassVar[str] = "cannot fetch from"
    advice: ClassVar[str] = "check the URL and that the server is up"

    def __init__(self, name: str, url: str, result: GitResult) -> None:
        tries = f" (after {result.tries} tries)" if result.tries > 1 else ""
        super().__init__(f"{name}: {self.problem} {url}{tries}", hint=self.advice)
        self.name = name
        self.url = url
        self.detail = trimmed(result.stderr) or f"git exited with code {result.status}"

    def __str__(self) -> str:
        return f"{self.message}\n{tail(self.detail)}\n  hint: {self.hint}"


class UnreachableRemoteError(RemoteError):
    """The server could not be reached (DNS, refused connection, timeout, TLS...)."""

    problem = "cannot reach"
    advice = (
        "check the URL, your network and proxy settings; --mirror can point at a "
        "reachable copy, and --offline works when everything is already cached"
    )


class RepositoryNotFoundError(RemoteError):
    """The server answered, but there is no repository at that URL."""

    problem = "no git repository at"
    advice = (
        "check the URL for typos; private repositories also answer 'not found' when git has no credentials for them"
    )


class RemoteAccessError(RemoteError):
    """The server refused our credentials (or git had none to offer)."""

    problem = "access denied by"
    advice = "give git credentials (a credential helper or an ssh key); never write tokens into the manifest"


def remote_error(name: str, url: str, result: GitResult) -> RemoteError:
    """The error for a failed network command, chosen from git's message."""
    kind = classify(result.stderr)
    if kind == "no-repository":
        return RepositoryNotFoundError(name, url, result)
    if kind == "auth":
        return RemoteAccessError(name, url, result)
    if kind == "network":
        return UnreachableRemoteError(name, url, result)
    return RemoteError(name, url, result)
