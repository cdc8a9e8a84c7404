"""Crashing politely: an unexpected exception (a bug) becomes one line on stderr and a
crash log with the traceback and the versions involved, never a wall of traceback.

The log goes to ``<workspace>/.build/logs/crash-<time>-<pid>.log`` (the workspace the
task was given, else the current directory), or to the temporary directory when that
cannot be written.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import tempfile
import time
import traceback
from importlib import metadata
from pathlib import Path

from orchestrator import __version__

# Set by the tasks once they know their workspace (orchestrator_cli.flags.settings_from).
workspace: Path | None = None
_LIBRARIES = ("invoke", "docker", "GitPython", "PyYAML", "rich", "filelock")


def report(error: BaseException) -> str:
    """Write the crash log for ``error`` (being handled); the one line to show."""
    text = _log_text(error)
    for directory in _places():
        with contextlib.suppress(OSError):
            directory.mkdir(parents=True, exist_ok=True)
            path = directory.absolute() / f"crash-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
            path.write_text(text, encoding="utf-8")
            return (f"error: unexpected {type(error).__name__}: {_first_line(error)}\n"
                    f"  this is a bug in the orchestrator; the traceback and versions are in {path}\n"
                    "  please attach that file when you report it")
    return f"error: unexpected {type(error).__name__}: {_first_line(error)}\n" + text


def _places() -> list[Path]:
    base = workspace if workspace is not None else Path.cwd()
    return [base / ".build" / "logs", Path(tempfile.gettempdir())]


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else "(no message)"


def _log_text(error: BaseException) -> str:
    versions = [f"orchestrator {__version__}", f"python {sys.version.split()[0]} ({sys.executable})",
                f"platform {platform.platform()}"]
    for library in _LIBRARIES:
        try:
            versions.append(f"{library} {metadata.version(library)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{library} (not installed)")
    return "\n".join([
        f"orchestrator crash at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}",
        "command: " + " ".join(sys.argv),
        *versions,
        "",
        "".join(traceback.format_exception(error)),
    ])
