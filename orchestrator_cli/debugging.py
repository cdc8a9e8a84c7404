"""The debug log switch: ``--verbose`` or ``ORCHESTRATOR_LOG=debug`` shows every git and
docker command the run makes (orchestrator.commandlog), one ``debug:`` line each on stderr
(through the live display when there is one, so the table is not torn)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping

from orchestrator.commandlog import LOGGER
from orchestrator.errors import InputError

LEVELS = ("debug", "info")  # info: the default, no command lines


def _stderr(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class _Handler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.sink: Callable[[str], None] = _stderr

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink(f"debug: {record.getMessage()}")
        except Exception:  # a log line must never fail the run (a closed pipe, say)
            self.handleError(record)


_handler = _Handler()


def from_environment(env: Mapping[str, str] | None = None) -> None:
    """Turn the debug log on when ORCHESTRATOR_LOG says so (refusing a value it cannot mean)."""
    value = (os.environ if env is None else env).get("ORCHESTRATOR_LOG", "").strip().lower()
    if value and value not in LEVELS:
        raise InputError(f"ORCHESTRATOR_LOG={value!r} is not a log level", hint="use debug, or info (the default)")
    if value == "debug":
        switch_on()
    else:
        switch_off()


def switch_on(sink: Callable[[str], None] | None = None) -> None:
    """Show command lines, through ``sink`` (default: stderr)."""
    _handler.sink = sink or _stderr
    if _handler not in LOGGER.handlers:
        LOGGER.addHandler(_handler)
    LOGGER.setLevel(logging.DEBUG)
    LOGGER.propagate = False


def switch_off() -> None:
    LOGGER.removeHandler(_handler)
    LOGGER.setLevel(logging.NOTSET)
    LOGGER.propagate = True


def is_on() -> bool:
    return _handler in LOGGER.handlers
