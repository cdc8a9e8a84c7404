"""The `orchestrator` console script: the same tasks as `invoke` in a checkout."""

from __future__ import annotations

from typing import Any

from invoke.exceptions import Exit, ParseError
from invoke.program import Program

from orchestrator import __version__
from orchestrator.errors import EXIT_BAD_INPUT
from orchestrator_cli.tasks import namespace


class OrchestratorProgram(Program):
    """Like invoke's Program, but a malformed command line exits 2 (bad input), not 1."""

    def parse_core(self, argv: Any) -> None:
        try:
            super().parse_core(argv)
        except ParseError as e:
            raise Exit(str(e), EXIT_BAD_INPUT) from None

    def parse_tasks(self) -> None:
        try:
            super().parse_tasks()
        except ParseError as e:
            raise Exit(str(e), EXIT_BAD_INPUT) from None


program = OrchestratorProgram(name="orchestrator", binary="orchestrator", namespace=namespace, version=__version__)


def main() -> None:
    program.run()
