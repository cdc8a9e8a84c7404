"""`manifest --lock` writes where the manifest really is, and reads it like the loader.

A manifest kept elsewhere and linked into the checkout (or a link chain) stays a
link: the locked text lands in the link's target, atomically, through a temporary
file in the target's directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.errors import InputError, ManifestError
from orchestrator.lock import lock_file, lock_text

A = "30458090588d14445f4b16b5b80e6db80dbffc33"
MANIFEST = """schema: 1
release: v1
repos:
  felix:
    url: https://example.invalid/felix.git
    ref: v1
    artifacts: {}
"""


def test_locking_a_symlinked_manifest_writes_through_to_its_target_and_keeps_the_link(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    target = shared / "release.yaml"
    target.write_text(MANIFEST)
    target.chmod(0o640)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    link = checkout / "manifest.yaml"
    link.symlink_to(os.path.relpath(target, checkout))

    assert lock_file(link, {"felix": A}) is True

    assert link.is_symlink() and os.readlink(link) == os.path.relpath(target, checkout)
    assert target.read_text() == lock_text(MANIFEST, {"felix": A})
    assert (target.stat().st_mode & 0o777) == 0o640
    # The temporary file lived next to the target, and is gone.
    assert sorted(p.name for p in shared.iterdir()) == ["release.yaml"]
    assert sorted(p.name for p in checkout.iterdir()) == ["manifest.yaml"]


def test_a_chain_of_links_is_followed_to_the_last_target(tmp_path: Path) -> None:
    target = tmp_path / "real.yaml"
    target.write_text(MANIFEST)
    middle = tmp_path / "middle.yaml"
    middle.symlink_to(target.name)
    link = tmp_path / "manifest.yaml"
    link.symlink_to(middle.name)

    lock_file(link, {"felix": A})

    assert link.is_symlink() and middle.is_symlink()
    assert f"commit: {A}" in target.read_text()


def test_a_dangling_link_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    link = tmp_path / "manifest.yaml"
    link.symlink_to("missing.yaml")

    with pytest.raises(InputError, match="manifest.yaml"):
        lock_file(link, {"felix": A})

    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.yaml"]
    assert link.is_symlink()


def test_lock_refuses_a_manifest_that_is_no_regular_file_before_reading_it(tmp_path: Path) -> None:
    fifo = tmp_path / "manifest.yaml"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        lock_file(fifo, {"felix": A})


def test_lock_text_refuses_deep_nesting_with_a_location_not_a_recursion_error() -> None:
    deep = MANIFEST.replace("artifacts: {}", "artifacts: {}\n    description: " + "[" * 5000 + "]" * 5000)
    with pytest.raises(ManifestError, match=r"manifest.yaml:\d+:\d+: .*nested"):
        lock_text(deep, {"felix": A})


_LOCK_UNDER_A_FILE_SIZE_LIMIT = """
import resource, signal, sys
from pathlib import Path
from orchestrator.errors import OrchestratorError
from orchestrator.lock import lock_file
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
try:
    lock_file(Path(sys.argv[1]), {"felix": sys.argv[2]})
except OrchestratorError as error:
    print(f"{type(error).__name__} {error.exit_code}: {error}")
"""


def test_a_write_that_fails_midway_leaves_the_manifest_and_no_temporary_file(tmp_path: Path) -> None:
    """The disk refuses the new text (a file size limit stands in for a full disk):
    one error naming the file, and the old manifest exactly as it was."""
    path = tmp_path / "manifest.yaml"
    path.write_text(MANIFEST)

    result = subprocess.run([sys.executable, "-c", _LOCK_UNDER_A_FILE_SIZE_LIMIT, str(path), A],
                            capture_output=True, text=True, timeout=60)

    assert result.stdout.startswith(f"OrchestratorError 1: {path}: cannot write the locked manifest: "), result
    assert "Traceback" not in result.stderr
    assert path.read_text() == MANIFEST
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.yaml"]
