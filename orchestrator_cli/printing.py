"""What the tasks print: results on stdout, notes on stderr, paths as short as they can be."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any


def note(line: str) -> None:
    """A progress line on stderr (stdout stays for results)."""
    sys.stderr.write(line.rstrip("\n") + "\n")


def emit(text: str) -> None:
    """A result on stdout, flushed (a pipe reader sees it before the exit)."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


class _Emitted:
    json = False  # this task printed its JSON document: an error after it must not print another


emitted = _Emitted()


def emit_json(data: Any) -> None:
    emit(json.dumps(data, indent=2))
    emitted.json = True


def shown_path(path: Path) -> str:
    """``path`` as short as it can be from the current directory."""
    relative = os.path.relpath(path.absolute())
    return relative if not relative.startswith("..") else str(path.absolute())


def size(count: int) -> str:
    """A byte count for people: 512 bytes, 1.5 KiB, 3.0 GiB."""
    value = float(count)
    for unit in ("bytes", "KiB", "MiB"):
        if value < 1024:
            return f"{count} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def program() -> str:
    """How the user ran us: `invoke` (in a checkout) or the `orchestrator` script."""
    return "invoke" if Path(sys.argv[0]).name in ("invoke", "inv") else "orchestrator"


def runnable() -> str:
    """How to run this program again from the current directory: its name when that is
    what PATH finds (an activated .venv), otherwise its path (`scripts/demo` runs
    .venv/bin/invoke, and no `invoke` may be on PATH, or another one)."""
    name, ours = program(), Path(sys.argv[0])
    found = shutil.which(name)
    if not ours.is_file() or (found is not None and Path(found).resolve() == ours.resolve()):
        return name
    return shlex.quote(shown_path(ours))
