"""The ``docker`` a host build command finds first on its PATH (see orchestrator/shim.py).

``python -I -m orchestrator_cli.docker_shim SHIM_DIR WORKSPACE ARGS...``: marks the step
as one that used docker, adds the orchestrator's labels to ``docker run``/``create``, and
replaces itself with the real docker. With no real docker on PATH it fails as a missing
command does in a shell: exit code 127.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from orchestrator import shim
from orchestrator.procs import STEP_VARIABLE

_NOT_FOUND = 127
_CANNOT_RUN = 126


def main(argv: list[str]) -> int:
    shim_dir, workspace, *args = argv
    docker = shim.find_docker(os.environ.get("PATH", os.defpath), Path(shim_dir))
    if docker is None:
        sys.stderr.write("docker: command not found\n")
        return _NOT_FOUND
    labels = shim.labels_for(os.environ, workspace)
    if labels:
        # The marker first: if docker starts a container, the orchestrator must look for it.
        marker = Path(shim_dir) / "used" / os.environ[STEP_VARIABLE]
        with contextlib.suppress(OSError):
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644))
        args = shim.add_labels(args, labels)
    try:
        os.execv(docker, ["docker", *args])
    except OSError as e:
        sys.stderr.write(f"docker: cannot run {docker}: {e.strerror}\n")
    return _CANNOT_RUN


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
