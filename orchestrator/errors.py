"""The one error tree of the orchestrator.

Every error says what is wrong, where, and what to do next. ``orchestrator_cli.exits`` turns an
``OrchestratorError`` into ``invoke.Exit(str(error), error.exit_code)``; nothing in
``orchestrator/`` prints or exits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def unicode_safe(text: str) -> str:
    """``text`` with lone surrogates written as ``\\udcff`` escapes: Python names a file whose
    name is not UTF-8 with them, and no UTF-8 encoder (a log file, stdout, a record) takes one."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class OrchestratorError(Exception):
    """Base class: ``str(error)`` is the whole user-facing message."""

    exit_code: int = EXIT_FAILED

    def __init__(self, message: str = "", *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class InputError(OrchestratorError):
    """Bad input from the user: manifest, names, flags. Exit code 2."""

    exit_code = EXIT_BAD_INPUT


class ManifestError(InputError):
    """One problem in a manifest file, located at ``file:line:column`` and a key path."""

    def __init__(
        self,
        problem: str,
        *,
        file: str,
        line: int | None = None,
        column: int | None = None,
        path: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(problem, hint=hint)
        self.problem = problem
        self.file = file
        self.line = line
        self.column = column
        self.path = path

    @property
    def location(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where

    def __str__(self) -> str:
        text = f"{self.location}: "
        if self.path:
            text += f"{self.path}: "
        text += self.problem
        if self.hint:
            text += f"; {self.hint}"
        return text


class ManifestErrors(InputError):
    """Several manifest problems, reported together (sorted by position)."""

    def __init__(self, errors: Sequence[ManifestError]) -> None:
        super().__init__("")
        self.errors = tuple(errors)

    def __str__(self) -> str:
        if len(self.errors) == 1:
            return str(self.errors[0])
        lines = [f"{len(self.errors)} problems in {self.errors[0].file}:"]
        lines += [f"  {error}" for error in self.errors]
        return "\n".join(lines)


class UnknownNameError(InputError):
    """A name on the command line that is neither a repo nor an artifact."""

    def __init__(self, name: str, valid: Sequence[str], suggestion: str | None) -> None:
        hint = f"did you mean {suggestion!r}?" if suggestion else None
        super().__init__(f"unknown repo or artifact {name!r}", hint=hint)
        self.name = name
        self.valid = tuple(valid)
        self.suggestion = suggestion

    def __str__(self) -> str:
        text = f"unknown repo or artifact {self.name!r}"
        if self.suggestion:
            text += f"; did you mean {self.suggestion!r}?"
        text += "\n  valid names: " + ", ".join(self.valid)
        return text


class SourceError(OrchestratorError):
    """Fetching or checking out a repository failed (network, git). Exit code 1."""


class PinError(InputError):
    """A ref does not exist or does not resolve to the pinned commit. Exit code 2."""


class DockerUnavailableError(OrchestratorError):
    """The Docker engine cannot be reached."""


class BuildError(OrchestratorError):
    """One or more artifacts failed to build. Exit code 1."""


class TimedOut(BuildError):
    """A step ran past its ``timeout:`` and was stopped (as Ctrl-C would stop it)."""


class Interrupted(OrchestratorError):
    """The user pressed Ctrl-C. Exit code 130."""

    exit_code = EXIT_INTERRUPTED


def tail(text: str, lines: int = 20, indent: str = "    ") -> str:
    """The last ``lines`` lines of ``text``, indented and ``visible``, for error messages."""
    kept = visible(text).rstrip("\n").splitlines()[-lines:]
    return "\n".join(indent + line for line in kept)


def reason(artifact: str, error: str | None) -> str:
    """The first line of an artifact's recorded error, without what the line showing it
    already says: the artifact's own name (``felix: ``) and its state (``skipped: ``,
    ``not started: ``). ``felix: failed: felix: command ...`` reads as ``felix: failed:
    command ...``. Made ``visible``: a record is untrusted, and its error reaches terminals."""
    lines = (error or "").strip().split("\n")
    text = lines[0] if lines else ""
    for prefix in (f"{artifact}: ", "skipped: ", "not started: "):
        text = text.removeprefix(prefix)
    return visible(text)


_CSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")  # colours, cursor moves: dropped
_LINE_END = re.compile(r"\r+(?=\n|$)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` (a build's output, a remote's message) made safe to show on a terminal:
    CSI sequences dropped, every other control character but tab and newline written as
    ``\\xNN``. An OSC 52 sequence would put the build's text on the clipboard, and a DCS
    query makes some terminals type their answer into their own input."""
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", _LINE_END.sub("", _CSI.sub("", text)))
