"""The `orchestrator` console script: the same tasks as `invoke` in a checkout."""

from __future__ import annotations

from orchestrator_cli.program import main

__all__ = ["main"]
