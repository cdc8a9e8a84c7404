"""The one retry policy for talking to a remote (git fetches, registry pushes).

A try that failed in a way another try might fix (the caller says which) is repeated
up to ``retries`` times. The waits double from ``backoff`` seconds, each cut to a
random 50-100% of its length, so that parallel workers that failed together (one
registry hiccup, eight pushes) do not all come back in the same instant.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

_random = random.SystemRandom()


def delay(backoff: float, failures: int, *, draw: Callable[[], float] = _random.random) -> float:
    """Seconds to wait after the ``failures``-th failed try: backoff * 2**(failures-1), jittered."""
    full = backoff * 2.0 ** (failures - 1)
    return round(full * (0.5 + draw() / 2), 3)


@dataclass(frozen=True, slots=True)
class Tried(Generic[T]):
    """What the last try returned, and how many tries it took."""

    value: T
    tries: int


def retried(
    once: Callable[[], T],
    *,
    retries: int,
    backoff: float,
    transient: Callable[[T], bool] = lambda value: False,
    transient_error: Callable[[Exception], bool] = lambda error: False,
    on_retry: Callable[[int, float, T | Exception], None] | None = None,
    pause: Callable[[float], None] | None = None,
) -> Tried[T]:
    """Call ``once`` until it succeeds, fails for good, or ``retries`` extra tries are spent.

    A returned value is tried again when ``transient(value)``; a raised exception when
    ``transient_error(error)`` (anything else propagates at once, as does the last
    one). ``on_retry(next_try, seconds, what_failed)`` is told before each wait;
    ``pause`` waits (default time.sleep; it may raise to cancel: a run being stopped must
    not sleep on).
    """
    if retries < 0:
        raise ValueError("retries must be 0 or more")
    tries = 1
    while True:
        failed: T | Exception
        try:
            value = once()
        except Exception as error:
            if tries > retries or not transient_error(error):
                raise
            failed = error
        else:
            if tries > retries or not transient(value):
                return Tried(value, tries)
            failed = value
        seconds = delay(backoff, tries)
        if on_retry is not None:
            on_retry(tries + 1, seconds, failed)
        (pause or time.sleep)(seconds)
        tries += 1
