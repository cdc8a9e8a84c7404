"""Commands in hints, spelled the way the user runs us.

A hint names a command to run next ("build the release first: ..."). It must work when
pasted: the program the user ran (``invoke`` in a checkout, the ``orchestrator`` script
elsewhere, or its path when PATH finds another) and the workspace they gave. The CLI
says both once (``invocation``); the library builds every hint's command with ``command``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Invocation:
    program: str = "invoke"
    workspace: Path | None = None  # None or ".": the hint needs no --workspace


invocation = Invocation()


def command(task: str, *args: str) -> str:
    """``<program> <task> ARGS [--workspace W]``, each argument quoted for a shell."""
    words = [task, *args]
    if invocation.workspace is not None and invocation.workspace != Path("."):
        words += ["--workspace", str(invocation.workspace)]
    return " ".join([invocation.program, *(shlex.quote(word) for word in words)])
