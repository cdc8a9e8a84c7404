"""Showing a build as it happens, and its summary.

On a terminal: a live table (rich) of queued, running, done, failed. Otherwise (CI,
pipes): one plain line per state change, so logs stay readable and greppable.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from orchestrator.describe import table
from orchestrator.errors import tail
from orchestrator.execute import Event
from orchestrator.release import Outcome

_STYLE = {"queued": "dim", "running": "cyan", "ok": "green", "cached": "green", "failed": "bold red",
          "skipped": "yellow", "not-started": "yellow"}


class Progress:
    """Receives execute.Event from worker threads; renders them."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.states: dict[str, str] = {}
        self.started: dict[str, float] = {}
        self.lock = threading.Lock()
        self._live: Any = None

    def fetch_event(self, repo: str, message: str) -> None:
        if not self.live:
            self._line(f"[fetch] {repo}: {message}")

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.states[event.artifact] = event.state
            if event.state == "running":
                self.started[event.artifact] = time.monotonic()
            if self._live is not None:
                self._live.update(self._table())
                return
        if event.state == "queued":
            return
        took = ""
        if event.state in ("ok", "failed") and event.artifact in self.started:
            took = f" ({time.monotonic() - self.started[event.artifact]:.1f}s)"
        detail = f": {event.detail.splitlines()[0]}" if event.detail and event.state != "failed" else ""
        self._line(f"[{event.state}] {event.artifact}{took}{detail}")

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(show_header=True, header_style="bold", box=None)
        table.add_column("artifact")
        table.add_column("state")
        for name, state in self.states.items():
            extra = f" {time.monotonic() - self.started[name]:.0f}s" if state == "running" else ""
            table.add_row(name, f"[{_STYLE.get(state, '')}]{state}{extra}[/]")
        return table

    @contextmanager
    def showing(self) -> Iterator[None]:
        if not self.live:
            yield
            return
        from rich.console import Console
        from rich.live import Live

        with Live(self._table(), console=Console(file=self.stream), refresh_per_second=4, transient=False) as live:
            self._live = live
            try:
                yield
            finally:
                live.update(self._table())
                self._live = None


def summary(outcome: Outcome, workspace: Path) -> str:
    """The end-of-build table, then each failure with its log's last lines and path."""
    rows = [("ARTIFACT", "STATUS", "TIME", "OUTPUT")]
    for name, result in outcome.results.items():
        what = ", ".join(f.path for f in result.output.files) or ", ".join(
            ref for image in result.output.images for ref in image.refs)
        if result.status in ("skipped", "not-started") and result.error:
            what = result.error
        rows.append((name, result.status,
                     f"{result.duration:.1f}s" if result.status in ("ok", "failed", "cached") else "-",
                     what))
    lines = table(rows)
    for result in outcome.failed:
        lines.append("")
        lines.append(f"FAILED {result.artifact}: {(result.error or '').splitlines()[0]}")
        if result.log and result.log.is_file():
            lines.append(tail(result.log.read_text(encoding="utf-8", errors="replace"), 15))
            shown = result.log.relative_to(workspace) if result.log.is_relative_to(workspace) else result.log
            lines.append(f"  full log: {shown}")
    lines.append("")
    lines.append(f"release {outcome.record.release}: {outcome.record.status} -> "
                 f"{outcome.release_dir.resolve()}/ (release.json, SHA256SUMS, provenance.json)")
    return "\n".join(lines)
