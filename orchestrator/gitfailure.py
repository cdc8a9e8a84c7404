"""What a failed git command means, and the errors that say so.

A failure is read from git's exit status and its stderr (GitPython runs git with
LC_ALL=C, so the words are English). Only a "network" failure is worth another try:
a git killed by a signal, a full disk or damaged objects come back the same way
every time, and retrying them only hides the real problem.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from orchestrator.errors import Interrupted, SourceError, tail, visible
from orchestrator.redact import redact

Failure = Literal["killed", "no-space", "corrupt", "refused", "missing-ref", "no-repository", "auth", "network"]

# Checked in this order: the first match wins. A damaged mirror also makes upload-pack
# say "not our ref", so corruption is looked for before a refusal.
_FAILURES: tuple[tuple[Failure, re.Pattern[str]], ...] = (
    # git names a child (index-pack, a remote helper) that a signal killed.
    ("killed", re.compile(r"died of signal \d+", re.I)),
    ("no-space", re.compile(r"no space left on device|disk quota exceeded|out of diskspace", re.I)),
    (
        "corrupt",
        re.compile(
            r"is corrupt|object file \S+ is empty|inflate: data stream error|unable to unpack \S+ header"
            r"|header for \S+ too long|does not match index|too short to be a packfile|index file \S+ is too small"
            r"|possible repository corruption|bad object|missing object|unable to read tree|unable to read sha1 file"
            r"|hash mismatch|sha1 mismatch|failed to read object|packfile \S+ cannot be accessed"
            r"|did not send all necessary objects|did not receive expected object|fatal: packed object",
            re.I,
        ),
    ),
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

# 128+n is how a shell reports a child killed by signal n. 129 is left out: git's own
# exit code for a usage error.
_SIGNALLED = frozenset(128 + s for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGABRT, signal.SIGKILL,
                                         signal.SIGSEGV, signal.SIGTERM))


@dataclass(frozen=True, slots=True, kw_only=True)
class GitResult:
    """What one git command did; ``args`` are the caller's arguments (for messages)."""

    args: tuple[str, ...]
    status: int
    stdout: str
    stderr: str
    tries: int = 1
    where: Path | None = None  # the repository (or directory) the command worked in
    data: bytes = b""  # stdout as bytes, when run with binary=True (stdout is then "")

    @property
    def ok(self) -> bool:
        return self.status == 0


def died_of_signal(status: int) -> bool:
    """git's exit status says a signal killed it (negative: seen directly by us)."""
    return status < 0 or status in _SIGNALLED


def classify(stderr: str, status: int | None = None) -> Failure:
    """What kind of failure git's status and message describe; unknown ones are network."""
    if status is not None and status != 0 and died_of_signal(status):
        return "killed"
    for failure, pattern in _FAILURES:
        if pattern.search(stderr):
            return failure
    return "network"


def trimmed(stderr: str, lines: int = 6) -> str:
    """git's own message, redacted, without blank lines or hints: the last few lines."""
    kept = [
        line.strip()
        for line in visible(redact(stderr).replace("\r", "\n")).splitlines()
        if line.strip() and not line.startswith("hint:")
    ]
    return "\n".join(kept[-lines:])


def _exit(status: int) -> str:
    if status < 0:
        try:
            return f"was killed by signal {signal.Signals(-status).name}"
        except ValueError:
            return f"was killed by signal {-status}"
    return f"failed with exit code {status}"


class Cancelled(Interrupted):
    """The run is being interrupted: git processes were stopped, no new one starts."""

    def __init__(self) -> None:
        super().__init__("interrupted: git processes were stopped")


class GitCommandError(SourceError):
    """A local git command failed (mirror or checkout upkeep)."""

    def __init__(self, name: str, result: GitResult) -> None:
        command = redact(" ".join(["git", *result.args]))
        super().__init__(f"{name}: `{command}` {_exit(result.status)}")
        self.name = name
        self.result = result

    def __str__(self) -> str:
        output = trimmed(self.result.stderr, lines=20) or trimmed(self.result.stdout)
        return f"{self.message}\n{tail(output)}" if output else self.message


class NoSpaceError(SourceError):
    """The disk (or quota) holding a mirror or a checkout is full. Never retried."""

    def __init__(self, name: str, where: Path | str) -> None:
        super().__init__(
            f"{name}: no space left on device in {where}",
            hint="free space (or quota) on that disk, or move the cache (--cache-dir) or the workspace "
            "to one with room; the next run repairs what this one left",
        )
        self.name = name
        self.where = where


class CorruptObjectsError(SourceError):
    """Objects that a repository of ours must hold cannot be read (truncated, missing).

    Raised once to have the repository discarded and fetched again; ``repaired`` marks
    the error that remained after that, which is final.
    """

    def __init__(self, name: str, where: Path, detail: str, *, repaired: bool = False) -> None:
        summary = detail.splitlines()[0] if detail else "objects cannot be read"
        if repaired:
            message = f"{name}: git objects in {where} are still damaged after discarding it and fetching again"
            hint = ("lines starting with 'remote:' mean the server's own repository is damaged; otherwise "
                    "check the disk that holds the cache")
        else:
            message = f"{name}: damaged git objects in {where}"
            hint = "delete that directory to have it fetched again"
        super().__init__(message, hint=hint)
        self.name, self.where, self.detail, self.summary = name, where, detail, summary

    def __str__(self) -> str:
        return f"{self.message}\n{tail(self.detail)}\n  hint: {self.hint}"

    def after_repair(self) -> CorruptObjectsError:
        return CorruptObjectsError(self.name, self.where, self.detail, repaired=True)


def must(result: GitResult, name: str) -> GitResult:
    """``result`` if git succeeded, else the error its failure calls for, naming repo ``name``."""
    if result.ok:
        return result
    kind = classify(result.stderr, result.status)
    if kind == "no-space":
        raise NoSpaceError(name, result.where or "the current directory")
    if kind == "corrupt" and result.where is not None:
        raise CorruptObjectsError(name, result.where, trimmed(result.stderr))
    raise GitCommandError(name, result)


class RemoteError(SourceError):
    """Talking to a remote failed; the message names the repo, the URL and git's words."""

    problem: ClassVar[str] = "cannot fetch from"
    advice: ClassVar[str] = "check the URL and that the server is up"

    def __init__(self, name: str, url: str, result: GitResult) -> None:
        tries = f" (after {result.tries} tries)" if result.tries > 1 else ""
        super().__init__(f"{name}: {self.problem} {url}{tries}", hint=self.advice)
        self.name = name
        self.url = url
        self.detail = trimmed(result.stderr) or f"git {_exit(result.status)}"

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


class GitKilledError(RemoteError):
    """git was killed by a signal that was not ours (OOM killer, another user): not retried."""

    problem = "git was killed while fetching from"
    advice = "something outside the orchestrator stopped git (out of memory?); run again"


def remote_error(name: str, url: str, result: GitResult) -> SourceError:
    """The error for a failed network command, chosen from git's status and message."""
    kind = classify(result.stderr, result.status)
    if kind == "no-space":
        return NoSpaceError(name, result.where or "the current directory")
    if kind == "corrupt" and result.where is not None:
        return CorruptObjectsError(name, result.where, trimmed(result.stderr))
    if kind == "killed":
        return GitKilledError(name, url, result)
    if kind == "no-repository":
        return RepositoryNotFoundError(name, url, result)
    if kind == "auth":
        return RemoteAccessError(name, url, result)
    if kind == "network":
        return UnreachableRemoteError(name, url, result)
    return RemoteError(name, url, result)
