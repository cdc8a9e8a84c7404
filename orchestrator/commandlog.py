"""One debug line for every git and docker command run: what, how it ended, how long.

The doors (gitcmd.run for git, the engine for the Docker API) report here; nothing is
shown unless the CLI turns it on (``--verbose`` or ``ORCHESTRATOR_LOG=debug``), and
then each line reads ``git fetch --depth 1 origin tag v3.2.0 -> exit 0 in 1.84s``.
URLs lose their credentials on the way (redact).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

from orchestrator.redact import redact

LOGGER = logging.getLogger("orchestrator.commands")


def enabled() -> bool:
    return LOGGER.isEnabledFor(logging.DEBUG)


def ran(tool: str, what: str, outcome: int | str, seconds: float) -> None:
    """Log one finished command: an int outcome is an exit code, a str says how it ended."""
    if enabled():
        ended = f"exit {outcome}" if isinstance(outcome, int) else outcome
        LOGGER.debug("%s %s -> %s in %.2fs", tool, redact(what), ended, seconds)


@contextlib.contextmanager
def timed(tool: str, what: str) -> Iterator[None]:
    """Log the block as one command: ``ok`` when it returns, else the exception's name."""
    start = time.monotonic()
    outcome = "interrupted"
    try:
        yield
        outcome = "ok"
    except Exception as error:
        outcome = f"failed ({type(error).__name__})"
        raise
    finally:
        ran(tool, what, outcome, time.monotonic() - start)
