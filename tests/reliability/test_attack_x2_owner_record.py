"""Lock owner records are written next to locks in the shared mirror cache and in
.build/, where others can write: the temporary file is created, never opened through
a symlink someone planted at its (predictable) name.

Before: ``write_owner`` wrote ``.<record>.<pid>`` with ``Path.write_text``. Whoever can
write the cache can hold a mirror's lock (flock on the shared file), read the waiting
run's pid from /proc, plant ``.<mirror>.git.lock.owner.<pid> -> ~/.bashrc`` and let go:
the run then truncated that user's file and wrote its owner record into it.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator import procs


def test_an_owner_record_is_never_written_through_a_symlink_at_its_temporary_name(tmp_path: Path) -> None:
    record = tmp_path / "cache" / "mirror.git.lock.owner"
    record.parent.mkdir()
    bashrc = tmp_path / "bashrc"
    bashrc.write_text("precious\n")
    (record.parent / f".{record.name}.{os.getpid()}").symlink_to(bashrc)

    procs.write_owner(record, procs.me())

    assert bashrc.read_text() == "precious\n"
    assert not record.is_symlink()
    owner = procs.read_owner(record)
    assert owner is not None and owner.pid == os.getpid()
