"""How a task ends: every library error, Ctrl-C and bug becomes one line and an exit code.

Every ``OrchestratorError`` becomes ``invoke.Exit`` with its exit code (2 bad input,
1 failed, 130 interrupted), so users see one message and never a traceback; a bug
gets one line and a crash log (orchestrator_cli.crash).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from invoke.exceptions import Exit

from orchestrator.errors import EXIT_FAILED, EXIT_INTERRUPTED, OrchestratorError
from orchestrator_cli import crash, debugging
from orchestrator_cli.printing import emit_json, emitted
from orchestrator_cli.stopping import stopping


@contextmanager
def user_errors(*, json_output: bool = False) -> Iterator[None]:
    """Turn library errors and Ctrl-C (SIGTERM, SIGHUP) into invoke exits with documented codes.

    ``json_output`` (the task's ``--json``): a task that ends in an error before printing
    its JSON document prints one that says so on stdout (``{"error": {...}}``), so that a
    script reading stdout always gets JSON; the message goes to stderr as always."""
    emitted.json = False
    with stopping.installed():
        try:
            debugging.from_environment()
            yield
        except OrchestratorError as e:
            text = str(e).removesuffix(f"\n  hint: {e.hint}") if e.hint else str(e)
            _error_json(json_output, text, e.exit_code, hint=e.hint, problems=getattr(e, "problems", None))
            raise Exit(f"error: {e}", e.exit_code) from None
        except KeyboardInterrupt:
            _error_json(json_output, "interrupted", EXIT_INTERRUPTED)
            raise Exit("interrupted", EXIT_INTERRUPTED) from None
        except Exit as e:
            if e.code:
                _error_json(json_output, str(e.message or "").removeprefix("error: "), e.code)
            raise
        except Exception as e:  # a bug: one line, and a crash log with the traceback
            line = crash.report(e)
            _error_json(json_output, line, EXIT_FAILED)
            raise Exit(line, EXIT_FAILED) from None


def _error_json(wanted: bool, message: str, code: int, *, hint: str | None = None,
                problems: Sequence[tuple[str, str]] | None = None) -> None:
    if not wanted or emitted.json:
        return
    error: dict[str, Any] = {"message": message, "exit_code": code}  # the message as stderr shows it
    if hint:
        error["hint"] = hint
    if problems:
        error["problems"] = [{"what": what, "why": why} for what, why in problems]
    with contextlib.suppress(OSError):  # stdout closed: stderr still has the message
        emit_json({"error": error})
