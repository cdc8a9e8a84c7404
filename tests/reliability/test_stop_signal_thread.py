"""A second stop signal works whatever thread the kernel gives it to.

Python runs signal handlers in the main thread, between bytecodes: a signal delivered to
another thread while the main thread waits in an untimed join or lock is handled only
when that wait ends (a build's graceful stop can wait minutes). The wakeup-fd watcher in
orchestrator_cli.stopping hears it at once.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import signal, sys, threading, time
    from orchestrator_cli.stopping import stopping

    ready = threading.Event()
    def other():
        ready.set()
        time.sleep(60)
    worker = threading.Thread(target=other, daemon=True)
    with stopping.installed():
        worker.start()
        ready.wait()
        def send():
            for _ in range(int(sys.argv[1])):
                time.sleep(0.3)
                signal.pthread_kill(worker.ident, signal.SIG{name})
        threading.Thread(target=send, daemon=True).start()
        threading.Event().wait()  # untimed: the main thread runs no handler meanwhile
""")


@pytest.mark.parametrize(("name", "count", "said"), [
    ("INT", 2, "interrupted again"), ("TERM", 2, "interrupted again"), ("QUIT", 1, "quit: killing"),
])
def test_a_second_signal_to_another_thread_kills_at_once(name: str, count: int, said: str) -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT.replace("{name}", name), str(count)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 130, result.stderr
    assert said in result.stderr


def test_one_signal_to_another_thread_does_not_kill() -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", SCRIPT.replace("{name}", "INT"), "1"], capture_output=True,
                       timeout=3)
