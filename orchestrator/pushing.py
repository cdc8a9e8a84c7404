"""One push that an interrupt cannot cut short: push, then record, in a thread of its own.

The Docker engine goes on pushing whatever its client does, so a push abandoned at
Ctrl-C may land and never be recorded. ``guarded`` runs the push and the recording in a
worker thread; an interrupt (KeyboardInterrupt: Ctrl-C, and SIGTERM/SIGHUP where the CLI
maps them to it) makes the caller wait up to ``GRACE_SECONDS`` for that work to end, then
raise ``PushInterrupted`` saying whether the reference landed; a second interrupt stops
waiting (the reference's state is then unknown).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

# A push of a built image is mostly layer uploads the engine already started; 30 s covers
# a small image on a slow link without leaving a user's second Ctrl-C unheard for long.
GRACE_SECONDS = 30.0


class PushInterrupted(Exception):
    """The run was interrupted during a push: ``digest`` when it landed (and was recorded),
    ``unknown`` when waiting stopped first, ``failed`` when it ended without landing."""

    def __init__(self, *, digest: str | None, unknown: bool, failed: BaseException | None) -> None:
        super().__init__("interrupted during a push")
        self.digest, self.unknown, self.failed = digest, unknown, failed


class Unrecorded(Exception):
    """The reference landed (``digest``), and recording it failed with ``error`` (a full disk)."""

    def __init__(self, error: BaseException, digest: str) -> None:
        super().__init__(str(error))
        self.error, self.digest = error, digest


def guarded(push: Callable[[], str], record: Callable[[str], None], *, ref: str,
            log: Callable[[str], None], grace: float = GRACE_SECONDS) -> str:
    """``push()`` then ``record(digest)`` in a daemon thread (after a second interrupt the
    process exits without it); returns the digest, or raises what they raised."""
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            outcome["landed"] = push()
            record(outcome["landed"])
            outcome["recorded"] = True
        except BaseException as e:  # handed to the waiting thread, which raises it
            outcome["error"] = e
        finally:
            done.set()

    worker = threading.Thread(target=work, name=f"push {ref}", daemon=True)
    try:
        worker.start()  # inside the try: an interrupt right after the push began is still waited for
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        if worker.ident is None:  # interrupted before the push began
            raise PushInterrupted(digest=None, unknown=False, failed=None) from None
        try:  # from here on, any interrupt is the second one, even during the log line
            log(f"interrupted: waiting up to {grace:g}s for the push of {ref} to finish "
                "(interrupt again to stop waiting)")
            finished = done.wait(grace)
        except KeyboardInterrupt:
            finished = False
        recorded = finished and "recorded" in outcome
        raise PushInterrupted(digest=outcome["landed"] if recorded else None, unknown=not finished,
                              failed=outcome.get("error") if finished else None) from None
    if "error" in outcome and "landed" in outcome:
        raise Unrecorded(outcome["error"], outcome["landed"])
    if "error" in outcome:
        raise outcome["error"]
    return str(outcome["landed"])
