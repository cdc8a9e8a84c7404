"""The one retry policy: which failures are tried again, how often, and how long between."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.retrying import delay, retried


class Flaky(Exception):
    pass


class Broken(Exception):
    pass


@given(backoff=st.floats(min_value=0, max_value=60), failures=st.integers(min_value=1, max_value=10),
       draw=st.floats(min_value=0, max_value=1, exclude_max=True))
def test_a_wait_is_between_half_and_all_of_the_doubled_backoff(backoff: float, failures: int, draw: float) -> None:
    full = backoff * 2 ** (failures - 1)
    assert full / 2 - 0.001 <= delay(backoff, failures, draw=lambda: draw) <= full + 0.001


def test_parallel_retries_do_not_all_wait_the_same() -> None:
    assert len({delay(10.0, 1) for _ in range(50)}) > 1


def test_a_transient_result_is_tried_again_until_it_passes() -> None:
    results = iter(["busy", "busy", "done"])
    told: list[tuple[int, float, object]] = []
    slept: list[float] = []

    tried = retried(lambda: next(results), retries=3, backoff=1.0, transient=lambda r: r == "busy",
                    on_retry=lambda n, s, what: told.append((n, s, what)), pause=slept.append)

    assert (tried.value, tried.tries) == ("done", 3)
    assert [(n, what) for n, _, what in told] == [(2, "busy"), (3, "busy")]
    assert [s for _, s, _ in told] == slept
    assert 0.5 <= slept[0] <= 1.0 and 1.0 <= slept[1] <= 2.0


def test_the_last_transient_result_is_returned_once_the_retries_are_spent() -> None:
    calls: list[int] = []

    def once() -> str:
        calls.append(1)
        return "busy"

    tried = retried(once, retries=2, backoff=0.0, transient=lambda r: True,
                    pause=lambda s: None)

    assert (tried.value, tried.tries, len(calls)) == ("busy", 3, 3)


def test_a_transient_error_is_retried_and_the_last_one_raised() -> None:
    calls: list[int] = []

    def once() -> str:
        calls.append(1)
        raise Flaky(len(calls))

    with pytest.raises(Flaky) as caught:
        retried(once, retries=2, backoff=0.0, transient_error=lambda e: isinstance(e, Flaky), pause=lambda s: None)
    assert caught.value.args == (3,) and len(calls) == 3


def test_an_error_that_is_not_transient_is_raised_at_once() -> None:
    calls: list[int] = []
    slept: list[float] = []

    def once() -> str:
        calls.append(1)
        raise Broken

    with pytest.raises(Broken):
        retried(once, retries=5, backoff=1.0, transient_error=lambda e: isinstance(e, Flaky), pause=slept.append)
    assert (len(calls), slept) == (1, [])


def test_a_pause_that_raises_cancels_the_retries() -> None:
    calls: list[int] = []

    def cancelled(seconds: float) -> None:
        raise KeyboardInterrupt

    def once() -> str:
        calls.append(1)
        return "busy"

    with pytest.raises(KeyboardInterrupt):
        retried(once, retries=5, backoff=1.0, transient=lambda r: True, pause=cancelled)
    assert len(calls) == 1


def test_no_retries_means_one_try() -> None:
    tried = retried(lambda: "busy", retries=0, backoff=1.0, transient=lambda r: True, pause=lambda s: None)
    assert tried.tries == 1
    with pytest.raises(ValueError):
        retried(lambda: "x", retries=-1, backoff=1.0)
