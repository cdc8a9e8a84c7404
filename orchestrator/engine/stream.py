"""The engine's streamed answers made readable: build and push chunks, container logs.

``Output`` turns streamed text or bytes into complete, cleaned lines (no colour codes,
no credentials) for a step's log, and keeps the last ones for error messages.
"""

from __future__ import annotations

import codecs
import json
import re
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

from orchestrator.engine.protocol import Log
from orchestrator.redact import redact

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
RUNNING_IN = re.compile(r"Running in ([0-9a-f]{12,64})")
BUILT = re.compile(r"Successfully built ([0-9a-f]{12,64})")
DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


class Output:
    """Streamed text or bytes -> complete, cleaned lines for ``log``; keeps the last ones for errors."""

    def __init__(self, log: Log) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._partial = ""
        self._lines: deque[str] = deque(maxlen=200)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._offset = 0  # bytes of a container log fed so far, for reopened streams

    def feed(self, text: str) -> None:
        with self._lock:
            self._feed(text)

    def feed_at(self, position: int, data: bytes) -> None:
        """Feed bytes found at ``position`` of a container log, skipping those fed already."""
        with self._lock:
            new = data[max(0, self._offset - position) :]
            if new and position <= self._offset:
                self._offset += len(new)
                self._feed(self._decoder.decode(new))

    def flush(self) -> None:
        with self._lock:
            self._feed(self._decoder.decode(b"", final=True))
            if self._partial:
                self._emit(self._partial)
                self._partial = ""

    @property
    def text(self) -> str:
        with self._lock:
            return "\n".join([*self._lines, self._partial] if self._partial else self._lines)

    def _feed(self, text: str) -> None:
        *complete, self._partial = (self._partial + text).split("\n")
        for line in complete:
            self._emit(line)

    def _emit(self, line: str) -> None:
        line = redact_text(ANSI.sub("", line).rstrip("\r"))
        self._lines.append(line)
        self._log(line)


def chunk_error(chunk: Mapping[str, Any]) -> str | None:
    if "error" not in chunk and "errorDetail" not in chunk:
        return None
    detail = chunk.get("errorDetail") or {}
    return str(chunk.get("error") or detail.get("message") or json.dumps(dict(chunk)))


def redact_text(text: str) -> str:
    return redact(text, mask="***@")


def layer_progress(chunk: Mapping[str, Any], layers: dict[str, tuple[int, int]]) -> bool:
    """Fold a push chunk's byte counts into ``layers``; True when they changed."""
    detail, layer = chunk.get("progressDetail"), chunk.get("id")
    if not isinstance(layer, str):
        return False
    if chunk.get("status") in ("Pushed", "Layer already exists") and layer in layers:
        layers[layer] = (layers[layer][1], layers[layer][1])
        return True
    if isinstance(detail, Mapping) and isinstance(detail.get("current"), int) and isinstance(detail.get("total"), int):
        layers[layer] = (int(detail["current"]), int(detail["total"]))
        return True
    return False
