"""Run one command and write its wall time and resource usage as JSON.

    python -I -S bench/measure.py STATS_FILE -- COMMAND [ARGS...]

harness.run_timed starts every measured command through this small interpreter: a
child's ru_maxrss counts the pages it shared with its parent between fork and exec, so
a command forked straight from the bench process (which holds fixtures of hundreds of
MB) would report the bench's size as its own peak. Forked from here, the floor is this
interpreter's few MB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    stats_file, separator, *command = argv
    if separator != "--" or not command:
        sys.stderr.write("usage: measure.py STATS_FILE -- COMMAND [ARGS...]\n")
        return 2
    started = time.perf_counter()
    proc = subprocess.Popen(command)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    with open(stats_file, "w", encoding="utf-8") as out:
        json.dump({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kib": usage.ru_maxrss,
                   "status": proc.returncode}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
