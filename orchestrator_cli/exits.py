"""How a task ends: every library error, Ctrl-C and bug becomes one line and an exit code.

Every ``OrchestratorError`` becomes ``invoke.Exit`` with its exit code (2 bad input,
1 failed, 130 interrupted), so users see one message and never a traceback; a bug
gets one line and a crash log (orchestrator_cli.crash).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from invoke.exceptions import Exit

from orchestrator.errors import EXIT_FAILED, EXIT_INTERRUPTED, OrchestratorError
from orchestrator_cli import crash, debugging
from orchestrator_cli.stopping import stopping


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn library errors and Ctrl-C (SIGTERM, SIGHUP) into invoke exits with documented codes."""
    with stopping.installed():
        try:
            debugging.from_environment()
            yield
        except OrchestratorError as e:
            raise Exit(f"error: {e}", e.exit_code) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", EXIT_INTERRUPTED) from None
        except Exit:
            raise
        except Exception as e:  # a bug: one line, and a crash log with the traceback
            raise Exit(crash.report(e), EXIT_FAILED) from None
