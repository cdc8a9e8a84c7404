"""The one door to the git executable, and what its failures mean.

Every git process of the orchestrator runs here (the sources layer, library archives,
the demo's repositories): argv lists through GitPython, an environment scrubbed of
leaked ``GIT_*`` variables, and only the transports a manifest may use. GitPython is
imported lazily, so importing this module costs nothing on paths that never run git
(``invoke manifest`` must not load it).

Every git process carries the run token (``orchestrator.procs``), so a later run can
find the ones a killed run left behind, and starts in its own session: a terminal's
Ctrl-C reaches the orchestrator alone, which then stops every git process group it
started (``cancel``), and no new one starts. What git's failures mean lives in
``orchestrator.gitfailure``.

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
  ``config`` of every mirror and checkout itself, and before each use reads it (a
  strict parser, no git: every setting must be one it writes, with its value) and
  checks that no ``commondir``, ``info/grafts``,
  ``info/attributes``, ``objects/info/alternates`` or legacy ``remotes/`` and
  ``branches/`` (remote definitions git reads for a URL without ``/``) appeared. Anything else means
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

import contextlib
import dataclasses
import functools
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestrator import commandlog, procs
from orchestrator.errors import SourceError
from orchestrator.gitfailure import (
    Cancelled,
    CorruptObjectsError,
    Failure,
    GitCommandError,
    GitKilledError,
    GitResult,
    NoSpaceError,
    RemoteAccessError,
    RemoteError,
    RepositoryNotFoundError,
    UnreachableRemoteError,
    classify,
    must,
    remote_error,
    trimmed,
)
from orchestrator.redact import redact as redact  # re-exported: the one redaction rule
from orchestrator.retrying import retried

__all__ = [
    "Cancelled", "CorruptObjectsError", "Failure", "GitCommandError", "GitKilledError", "GitResult", "NoSpaceError",
    "RemoteAccessError", "RemoteError", "RepositoryNotFoundError", "UnreachableRemoteError", "cancel", "cancelled",
    "classify", "git_executable", "must", "redact", "remote_error", "reset_cancellation", "run", "run_network",
    "scrubbed_git_vars", "trimmed",
]  # fmt: skip

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


def scrubbed_git_vars(environ: Mapping[str, str] | None = None) -> list[str]:
    """Names of inherited ``GIT_*`` variables that git must not see."""
    environ = os.environ if environ is None else environ
    return sorted(name for name in environ if name.startswith("GIT_") and name not in KEPT_GIT_VARS | OWN_ENV.keys())


# The git processes running now, and whether the run is being cancelled. A process is
# registered under the same lock that checks for cancellation, so `cancel` either sees
# it or it never starts.
_GUARD = threading.Condition(threading.RLock())
_LIVE: set[subprocess.Popen[bytes]] = set()
_CANCELLED = threading.Event()
GRACE = 2.0  # seconds between SIGTERM (git removes its lock files) and SIGKILL


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
    with ``binary`` stdout is kept as bytes in ``data`` (``git archive``). Raises
    ``Cancelled`` once ``cancel`` was called, instead of starting git or after it was
    stopped; SourceError when there is no git to run.
    """
    executable = git_executable()  # before GitPython's import, which fails without git
    import git  # noqa: PLC0415  (lazy: see the module docstring)

    command = git.cmd.Git(str(cwd) if cwd is not None else None)
    argv: list[str] = [*SAFE_CONFIG]
    if git_dir is not None:
        argv.append(f"--git-dir={git_dir}")
    if work_tree is not None:
        argv.append(f"--work-tree={work_tree}")
    extra = {**OWN_ENV, **procs.child_environment(), **(env or {})}
    # GitPython always starts from a copy of os.environ and can only add to it, so
    # leaked variables are removed by `env -u` (their names only reach argv); a name we
    # set ourselves (GIT_CONFIG_COUNT for credentials) is replaced, not removed.
    unset = [arg for name in scrubbed_git_vars() if name not in extra for arg in ("-u", name)]
    program = [*_death_signal(), *(["env", *unset] if unset else [])]
    program.append(executable)
    started = time.monotonic()
    with _GUARD:
        if _CANCELLED.is_set():
            raise Cancelled
        # A session of its own: a terminal's Ctrl-C is the orchestrator's to handle
        # (git would die of it and look like a network failure), and cancel() stops
        # git and its children (ssh, index-pack, a remote helper) as one group.
        try:
            process = command.execute([*program, *argv, *args], as_process=True, env=extra,
                                      start_new_session=True, istream=subprocess.PIPE if stdin is not None else None)
        except (OSError, git.exc.GitCommandNotFound) as e:
            raise SourceError(f"cannot run git: {e}", hint="install git (it must be on PATH)") from e
        proc = process.proc
        assert proc is not None  # as_process always starts one
        _LIVE.add(proc)
    try:
        stdout, stderr = proc.communicate(stdin)
    except BaseException:  # Ctrl-C in the thread that waits: git must not outlive it
        _signal_group(proc, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        with _GUARD:
            _LIVE.discard(proc)
            _GUARD.notify_all()
        if commandlog.enabled():
            commandlog.ran("git", _shown_command(args, git_dir or work_tree or cwd),
                           "interrupted" if proc.returncode is None else proc.returncode, time.monotonic() - started)
    if _CANCELLED.is_set():
        raise Cancelled
    return GitResult(
        args=tuple(args),
        status=proc.returncode,
        stdout="" if binary else _text(stdout),
        stderr=_text(stderr),
        where=git_dir or work_tree or cwd,
        data=(stdout or b"") if binary else b"",
    )


def git_executable() -> str:
    """The git program to run (GIT_PYTHON_GIT_EXECUTABLE, else `git` on PATH).

    Raises SourceError when there is none: said once, plainly, instead of as a failed
    fetch of every repository (and retried as if the network were down).
    """
    wanted = os.environ.get("GIT_PYTHON_GIT_EXECUTABLE") or "git"
    found = shutil.which(wanted)
    if found is None:
        raise GitMissingError(f"git is not installed: no {wanted!r} on PATH",
                              hint="install git (Debian and Ubuntu: apt-get install git), then run again")
    return found


class GitMissingError(SourceError):
    """There is no git program to run."""


def _shown_command(args: Sequence[str], where: Path | None) -> str:
    """``args`` for the debug log: the command and its arguments, and where it ran."""
    import shlex  # noqa: PLC0415  (only when the debug log is on)

    return shlex.join(args) + (f"  [{where}]" if where is not None else "")


@functools.cache
def _death_signal() -> tuple[str, ...]:
    """A prefix that makes the kernel SIGKILL git when the thread that started it dies.

    git runs in its own session, so a SIGKILL to the orchestrator's process group (a CI
    timeout) would no longer reach it; with a parent-death signal, git dies with us.
    What git itself started (ssh, a remote helper) is found later by its run token
    (see gitcache). Without util-linux's setpriv, only the token remains.
    """
    setpriv = shutil.which("setpriv")
    return (setpriv, "--pdeathsig", "KILL", "--") if setpriv else ()


def cancel(grace: float = GRACE) -> None:
    """Stop all git work of this process, from any thread: no new git process starts,
    and every running one is stopped with its process group (SIGTERM, then SIGKILL
    after ``grace`` seconds). Returns when they are gone or have been SIGKILLed."""
    _CANCELLED.set()
    with _GUARD:
        running = list(_LIVE)
    for proc in running:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    try:
        with _GUARD:
            while _LIVE and (left := deadline - time.monotonic()) > 0:
                _GUARD.wait(left)
    finally:  # also when a second Ctrl-C cuts the wait short
        with _GUARD:
            running = list(_LIVE)
        for proc in running:
            _signal_group(proc, signal.SIGKILL)


def cancelled() -> bool:
    """``cancel`` was called (and not reset since)."""
    return _CANCELLED.is_set()


def reset_cancellation() -> None:
    """Allow git to run again: a new batch of work begins in this process."""
    _CANCELLED.clear()


def _signal_group(proc: subprocess.Popen[Any], sig: int) -> None:
    if proc.returncode is None:  # a reaped leader's group id may already be reused
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)


def _text(data: bytes | None) -> str:
    """git's output as text, without the final newline (as GitPython returns it)."""
    return (data or b"").decode("utf-8", "replace").removesuffix("\n")


def run_network(
    args: Sequence[str],
    *,
    git_dir: Path,
    retries: int,
    backoff: float,
    on_retry: Callable[[int, float, GitResult], None] | None = None,
    env: Mapping[str, str] | None = None,
) -> GitResult:
    """Run a command that talks to a remote, retrying transient failures with backoff.

    Only failures another try might fix are retried: a refused request, a missing
    ref or repository, rejected credentials, a full disk, damaged objects or a git
    killed by a signal come back at once. A cancellation ends the wait at once.
    """
    def told(attempt: int, seconds: float, failed: GitResult | Exception) -> None:
        if on_retry is not None and isinstance(failed, GitResult):
            on_retry(attempt, seconds, failed)

    tried = retried(
        lambda: run(args, git_dir=git_dir, env=env),
        retries=retries,
        backoff=backoff,
        transient=lambda result: not result.ok and classify(result.stderr, result.status) == "network",
        on_retry=told,
        pause=_pause,
    )
    return dataclasses.replace(tried.value, tries=tried.tries)


def _pause(delay: float) -> None:
    """Sleep ``delay`` seconds before a retry, unless the run is cancelled meanwhile."""
    if _CANCELLED.wait(delay):
        raise Cancelled
