"""Showing long work as it happens, and its summary.

Modes (``--progress``, like docker's): ``tty`` is a live table (rich) of every repository
being fetched and every artifact being built, redrawn in place and cleared at the end so
that the summary does not repeat it; ``plain`` is one line per state change, for CI logs
and pipes; ``auto`` picks ``tty`` on a terminal. ``--quiet`` shows no progress at all,
``--verbose`` adds each running step's log lines, prefixed with its name. Progress goes
to stderr; results (the summary, JSON) go to stdout.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from orchestrator.errors import reason, tail

if TYPE_CHECKING:  # a fetch shows progress too, and must not load the build machinery for it
    from orchestrator.execute import Event, Result
    from orchestrator.release import Outcome

# What the engine streams during a push: "<layer>: Pushing", "The push refers to ...",
# "<tag>: digest: sha256:... size: N".
_ENGINE_PUSH_LINE = re.compile(r"[0-9a-f]{12}: |The push refers to repository|\S+: digest: sha256:")
Mode = Literal["auto", "tty", "plain"]
MODES: tuple[Mode, ...] = ("auto", "tty", "plain")
_STYLE = {"queued": "dim", "running": "cyan", "ok": "green", "cached": "green", "restored": "green",
          "failed": "bold red", "skipped": "yellow", "not-started": "yellow", "fetching": "cyan", "retrying": "yellow",
          "ready": "green", "waiting": "yellow"}


class Progress:
    """Receives fetch messages and execute.Events from worker threads, and shows them."""

    def __init__(self, mode: Mode = "auto", *, quiet: bool = False, verbose: bool = False,
                 stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = not quiet and (mode == "tty" or (mode == "auto" and self.stream.isatty()))
        self.quiet, self.verbose = quiet, verbose
        self.repos: dict[str, str] = {}  # repo -> its latest fetch message
        self.states: dict[str, str] = {}  # artifact -> state
        self.started: dict[str, float] = {}
        self.said: set[tuple[str, str]] = set()  # (state, reason) already shown on a plain line
        self.lock = threading.Lock()
        self._live: Any = None

    # -- events ---------------------------------------------------------------------------

    def fetch_event(self, repo: str, message: str) -> None:
        """A fetch (or pin resolution) said something about ``repo``."""
        with self.lock:
            self.repos[repo] = message
            if self._live is not None:
                self._live.update(self._table())
                return
        if not self.quiet and not self.live:
            self._line(f"[fetch] {repo}: {message}")

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.states[event.artifact] = event.state
            if event.state == "running":
                self.started[event.artifact] = time.monotonic()
            if self._live is not None:
                self._live.update(self._table())
                return
        if self.quiet or self.live or event.state == "queued":
            return
        took = ""
        if event.state in ("ok", "failed") and event.artifact in self.started:
            took = f" ({time.monotonic() - self.started[event.artifact]:.1f}s)"
        detail = ""
        if event.detail and event.state != "failed":
            why = reason(event.artifact, event.detail)
            # Ten artifacts not started after one failure share one reason: say it once.
            if why and (event.state, why) not in self.said:
                detail = f": {why}"
                if event.state in ("skipped", "not-started"):
                    self.said.add((event.state, why))
        self._line(f"[{event.state}] {event.artifact}{took}{detail}")

    def log_line(self, artifact: str, line: str) -> None:
        """A line of a running step's log (shown with --verbose)."""
        if not self.verbose or self.quiet:
            return
        with self.lock:
            if self._live is not None:
                self._live.console.print(f"{artifact} | {line}", markup=False, highlight=False)
                return
        self._line(f"{artifact} | {line}")

    def push_line(self, text: str) -> None:
        """A line publish says; the engine's own push output (a line per layer) only with --verbose."""
        if self.verbose or not _ENGINE_PUSH_LINE.match(text):
            self.note(text)

    def push_bytes(self, ref: str, sent: int, total: int) -> None:
        """Bytes a push has sent so far: a row of the live table on a terminal."""
        with self.lock:
            self.repos[ref] = f"pushing {_mib(sent)} / {_mib(total)}" if sent < total else f"sent {_mib(total)}"
            if self._live is not None:
                self._live.update(self._table())

    def note(self, text: str) -> None:
        """A line of progress that is no state change (pin resolution, a push's progress)."""
        if self.quiet:
            return
        with self.lock:
            if self._live is not None:
                self._live.console.print(text, markup=False, highlight=False)
                return
        self._line(text)

    def debug(self, text: str) -> None:
        """A debug line (a command run): shown whenever the debug log is on, even with --quiet."""
        with self.lock:
            if self._live is not None:
                self._live.console.print(text, markup=False, highlight=False)
                return
        self._line(text)

    # -- rendering ------------------------------------------------------------------------

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def _table(self) -> Any:
        from rich.table import Table

        grid = Table(show_header=True, header_style="bold", box=None)
        grid.add_column("repository / artifact")
        grid.add_column("state")
        now = time.monotonic()
        for repo, message in self.repos.items():
            grid.add_row(repo, f"[{_STYLE.get(_fetch_state(message), '')}]{_escape(message)}[/]")
        for name, state in self.states.items():
            extra = f" {now - self.started[name]:.0f}s" if state == "running" else ""
            grid.add_row(name, f"[{_STYLE.get(state, '')}]{state}{extra}[/]")
        return grid

    @contextmanager
    def showing(self) -> Iterator[None]:
        """Show the live table while the block runs (on a terminal), then clear it."""
        if not self.live:
            yield
            return
        from rich.console import Console
        from rich.live import Live

        console = Console(file=self.stream, force_terminal=True)
        with Live(self._table(), console=console, refresh_per_second=4, transient=True) as live:
            self._live = live
            try:
                yield
            finally:
                self._live = None


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def _fetch_state(message: str) -> str:
    if message.startswith("retrying"):
        return "retrying"
    if message.startswith(("fetching", "shallow", "pushing")):
        return "fetching"
    if message.startswith("waiting"):
        return "waiting"
    return "ready"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def shown_path(path: Path) -> str:
    """``path`` as it works from the current directory: relative when below it."""
    relative = os.path.relpath(os.path.abspath(path))
    return relative if not relative.startswith("..") else os.path.abspath(path)


def _reason(result: Result) -> str:
    """The first line of a result's error, without the artifact's own name in front."""
    return reason(result.artifact, result.error)


def _own_output(log_text: str) -> str:
    """What the failing command printed: the step's log from its last command line (``$ ...``;
    what comes before, the cache key and why it builds, is the orchestrator's own) up to
    the failure message that ends it (which repeats the command's last lines)."""
    head, marker, _ = log_text.rpartition("\nFAILED")
    text = head if marker else log_text
    start = text.rfind("\n$ ")
    return text[start + 1:] if start != -1 else text


def summary(outcome: Outcome, *, table_too: bool = True) -> str:
    """The end of a build: one line per artifact (those not started grouped by why), each
    failure with the last lines of its log once and a log path that works from here, and
    the release line."""
    from orchestrator.describe import count, table

    rows: list[tuple[str, ...]] = [("ARTIFACT", "STATUS", "TIME", "OUTPUT")]
    groups: dict[tuple[str, str], list[str]] = {}
    for name, result in outcome.results.items():
        if result.status in ("skipped", "not-started"):
            groups.setdefault((result.status, _reason(result)), []).append(name)
            continue
        what = ", ".join(f.path for f in result.output.files) or ", ".join(
            ref for image in result.output.images for ref in image.refs)
        if result.status == "failed":
            what = _reason(result)
        rows.append((name, "timed out" if result.timed_out else result.status, f"{result.duration:.1f}s", what))
    lines = table(rows) if table_too and len(rows) > 1 else []
    for (status, why), names in groups.items():
        verb = "skipped" if status == "skipped" else "not started"
        lines.append(f"{count(len(names), 'artifact')} {verb}, {why}: {', '.join(names)}")
    for result in outcome.failed:
        lines += ["", f"FAILED {result.artifact}: {_reason(result)}"]
        if result.log and result.log.is_file():
            output = _own_output(result.log.read_text(encoding="utf-8", errors="replace"))
            if output.strip():
                lines.append(tail(output, 15))
            lines.append(f"  full log: {shown_path(result.log)}")
        lines += [line for line in (result.error or "").splitlines()[1:] if line.lstrip().startswith("hint:")]
    lines += ["", f"release {outcome.record.release}: {outcome.record.status} -> "
                  f"{outcome.release_dir.resolve()}/ (release.json, SHA256SUMS, provenance.json)"]
    return "\n".join(line for i, line in enumerate(lines) if line or i)
