"""What a command run on the host depends on that the manifest cannot say: the host.

A builder container's result depends on its image, whose id is in the cache key; a host
command's depends on the machine. Its fingerprint, part of the cache key, is:

- the operating system and machine architecture (``platform.system()``,
  ``platform.machine()``) and the C library (``platform.libc_ver()``);
- for every program the command names (the first word of each simple command of a shell
  string, or argv[0]), the sha256 of the file it resolves to on the command's PATH: the
  exact program that will run, whatever its ``--version`` says (not its path: two
  machines with the same ``make`` at different paths agree).

Not in it: programs those programs run (what a Makefile or a script calls), shared
libraries, the kernel version, the environment beyond the manifest's ``env`` (the build
environment is explicit anyway), and anything on the network. README says so.

Hashing a program costs a read of it, once per file and process (cached by path, size
and mtime).
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shlex
import shutil
import threading
from collections.abc import Sequence
from typing import Any

# Words that start a simple command in a shell string, after these separators.
_SEPARATORS = re.compile(r"&&|\|\||[;&|\n()]")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_PREFIXES = frozenset({"if", "then", "else", "elif", "while", "until", "do", "!", "time", "exec", "command", "{"})
_SHELL_WORDS = frozenset({"if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
                          "in", "function", "{", "}", "!", "time", "exec", "command", "builtin", "set", "export",
                          "cd", "echo", "printf", "test", "[", "true", "false", ":", ".", "source", "exit", "trap",
                          "wait", "read", "shift", "unset", "local", "return", "eval"})
_CACHE: dict[tuple[str, int, int], str] = {}
_LOCK = threading.Lock()


def programs(command: str | Sequence[str]) -> list[str]:
    """The programs ``command`` names: argv[0], or the first word of each simple command
    of a ``sh -c`` string (variable assignments and shell keywords and builtins skipped)."""
    if not isinstance(command, str):
        return [command[0]] if command else []
    found: list[str] = ["sh"]  # a string runs under sh -c
    for part in _SEPARATORS.split(command):
        try:
            words = shlex.split(part, comments=True)
        except ValueError:  # an unbalanced quote across separators: take the plain words
            words = part.split()
        while words and (words[0] in _PREFIXES or _ASSIGNMENT.match(words[0])):
            words.pop(0)  # `if make`, `then gcc`, `time go build`, `CC=gcc make`: the program follows
        if words and words[0] not in _SHELL_WORDS and "$" not in words[0]:
            found.append(words[0])
    return list(dict.fromkeys(found))


def fingerprint(command: str | Sequence[str], path: str | None) -> dict[str, Any]:
    """The host's part of a host command's cache key (see the module docstring); ``path``
    is the PATH the command will see."""
    tools: dict[str, str | None] = {}
    for program in programs(command):
        found = shutil.which(program, path=path)
        tools[program] = f"sha256:{_digest(found)}" if found else None
    return {
        "os": platform.system(),
        "machine": platform.machine(),
        "libc": "-".join(platform.libc_ver()),
        "programs": tools,
    }


def _digest(path: str) -> str:
    real = os.path.realpath(path)
    info = os.stat(real)
    key = (real, info.st_size, info.st_mtime_ns)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    digest = hashlib.sha256()
    with open(real, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    with _LOCK:
        _CACHE[key] = digest.hexdigest()
    return _CACHE[key]
