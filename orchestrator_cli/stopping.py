"""Signals and the workspace lock for the tasks that write to a workspace.

SIGINT, SIGTERM and SIGHUP are one thing here (CI systems send SIGTERM, a closed
terminal SIGHUP): the first stops the run gracefully, the way Ctrl-C always has; the
second kills everything of the run at once. The handlers live here, not in the library.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from orchestrator.errors import EXIT_INTERRUPTED, Interrupted
from orchestrator.settings import Settings

if TYPE_CHECKING:
    from orchestrator.children import Children


KILL_PATIENCE = 15.0  # seconds the watcher's kill may take before the process exits anyway
WATCHER_DEFERS = 1.0  # seconds the watcher leaves the main thread to handle a signal itself


class Stopping:
    """SIGINT, SIGTERM and SIGHUP alike (CI systems send SIGTERM, a closed terminal SIGHUP).

    The first one stops the run gracefully, the way Ctrl-C always has: KeyboardInterrupt in
    the main thread, which the library answers by stopping what runs (exit 130). The second
    one kills everything of the run at once and exits 130 without waiting for anything.

    SIGQUIT (Ctrl-\\, "quit now") does what a second one does, at once. Every command runs in
    a session of its own, so a terminal's signals reach the orchestrator alone: left to its
    default action, SIGQUIT ended the orchestrator and nothing it had started.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)

    def __init__(self) -> None:
        self.children: Children | None = None  # the writer task's, once it has one
        self.received = 0
        # publish answers a second interrupt itself (it stops waiting for the push in flight
        # and says that reference's state is unknown): there is nothing of ours to kill.
        self.second_is_graceful = False
        self._killing = threading.Lock()
        self._numbers: frozenset[int] = frozenset()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.received += 1
        quit_now = signum == signal.SIGQUIT
        if not quit_now and (self.received == 1 or self.second_is_graceful):
            raise KeyboardInterrupt
        self._kill_now(quit_now)

    def _kill_now(self, quit_now: bool) -> None:
        """Kill everything of the run and exit 130, here in the main thread's signal handler:
        the locks of what runs are re-entrant, so the kill never waits for the code it
        interrupted."""
        if not self._killing.acquire(blocking=False):
            return  # the watcher is at it, and exits the process
        try:
            self._say(quit_now)
            self._kill_everything()
        finally:
            os._exit(EXIT_INTERRUPTED)

    def _kill_from_watcher(self, quit_now: bool) -> None:
        """The watcher's kill, when the main thread cannot run the handler: it gets a moment
        to do so first, then the kill runs beside it, bounded, as it may wait for a lock the
        blocked main thread holds."""
        time.sleep(WATCHER_DEFERS)
        if not self._killing.acquire(blocking=False):
            return  # the main thread's handler is killing, and exits the process
        try:
            self._say(quit_now)
            done = threading.Event()

            def kill() -> None:
                try:
                    self._kill_everything()
                finally:
                    done.set()

            threading.Thread(target=kill, name="kill-now", daemon=True).start()
            done.wait(KILL_PATIENCE)
        finally:
            os._exit(EXIT_INTERRUPTED)

    @staticmethod
    def _say(quit_now: bool) -> None:
        # os.write, not sys.stderr: the main thread may be inside a write to stderr, holding its lock.
        with contextlib.suppress(OSError):
            os.write(2, b"quit: killing every command and container of this run at once\n" if quit_now else
                     b"interrupted again: killing every command and container of this run at once\n")

    def _kill_everything(self) -> None:
        if self.children is not None:
            self.children.kill_now()
        else:
            from orchestrator import procs

            procs.kill(procs.RUN_VARIABLE, procs.run_token(), wait=1.0)

    def _watch(self, wakeup: int) -> None:
        """Python runs signal handlers in the main thread only, and only between bytecodes: a
        signal the kernel gives another thread, while the main thread waits in an untimed
        join or lock, waits with it. The wakeup fd hears every signal at once, in any
        thread: here a second stop signal (or SIGQUIT) kills everything whatever the main
        thread is doing."""
        seen = 0
        try:
            while data := os.read(wakeup, 64):  # b"": installed() ended and closed the write end
                for number in data:
                    if number not in self._numbers:
                        continue
                    seen += 1
                    if number == signal.SIGQUIT or (seen >= 2 and not self.second_is_graceful):
                        self._kill_from_watcher(number == signal.SIGQUIT)
        except OSError:
            pass
        finally:
            os.close(wakeup)

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():  # signal.signal would refuse
            yield
            return
        self.received = 0
        self.second_is_graceful = False
        # A SIGHUP ignored when we start was ignored on purpose (`nohup orchestrator build
        # --all &`, to survive the terminal), and so is a SIGQUIT (a shell's background job):
        # they stay ignored.
        wanted = [number for number in self.SIGNALS
                  if not (number in (signal.SIGHUP, signal.SIGQUIT) and signal.getsignal(number) == signal.SIG_IGN)]
        self._numbers = frozenset(int(number) for number in wanted)
        previous = {number: signal.signal(number, self) for number in wanted}
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        old_wakeup = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        threading.Thread(target=self._watch, args=(read_end,), name="stop-signals", daemon=True).start()
        try:
            yield
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for number, handler in previous.items():
                signal.signal(number, handler)
            os.close(write_end)  # the watcher reads the end of the pipe, closes its end and stops


stopping = Stopping()


@contextmanager
def writing(settings: Settings, note: Callable[[str], None], *, commands: bool = False) -> Iterator[Children]:
    """Hold the workspace as its one writer, after stopping what a dead writer left running.

    ``commands``: the task runs host build commands (the docker shim is written for them).
    """
    from orchestrator.children import Children, stop_dead_run
    from orchestrator.workspace import hold

    with hold(settings.workspace, wait=settings.wait, on_wait=note) as holding:
        children = Children(workspace=settings.workspace, build_dir=settings.build_dir if commands else None,
                            grace=settings.stop_grace)
        stopping.children = children
        try:
            if holding.dead is not None:
                stopped = stop_dead_run(holding.dead, settings.workspace, children.engine)
                if stopped:
                    note(f"a run that died holding this workspace ({holding.dead.describe()}) left work "
                         "running; stopped:\n  " + "\n  ".join(stopped))
            yield children
        except (KeyboardInterrupt, Interrupted):
            stragglers = children.sweep()
            if stragglers:
                note("stopped what was still running:\n  " + "\n  ".join(stragglers))
            raise
        finally:
            stopping.children = None
