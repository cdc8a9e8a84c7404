"""verify reads SHA256SUMS as ``sha256sum -c`` does: lines end at a newline, nowhere else.

Python's ``str.splitlines`` also ends a line at a vertical tab, a form feed, the
separators \\x1c-\\x1e, NEL (\\x85) and U+2028/U+2029. Joining two good lines with one
of those makes a file that ``sha256sum -c SHA256SUMS`` (the check README tells users to
run) rejects: it reads one line naming a file that does not exist, and checks neither
file. verify, and publish with it, must not pass such a file.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator.engine.dockerpy import Engine
from orchestrator.manifest import Manifest
from orchestrator.publish import PublishRefused, publish_release
from orchestrator.verify import verify_release
from tests.helpers import releases
from tests.helpers.fake_docker import FakeDockerClient
from tests.helpers.registry import APP_COMMIT, LIB_COMMIT

fake, manifest, release_dir = releases.fake, releases.manifest, releases.release_dir

SEPARATORS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def join_lines_with(release_dir: Path, separator: str) -> None:
    sums = release_dir / "SHA256SUMS"
    lines = sums.read_text().split("\n")[:-1]
    assert len(lines) >= 2
    sums.write_text(separator.join(lines) + "\n")


@pytest.mark.parametrize("separator", SEPARATORS, ids=lambda s: f"U+{ord(s):04X}")
def test_a_sums_file_that_sha256sum_rejects_never_verifies(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient, separator: str
) -> None:
    join_lines_with(release_dir, separator)
    checked = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=release_dir, capture_output=True)
    assert checked.returncode != 0, "the oracle: sha256sum -c rejects the file"

    report = verify_release(release_dir, manifest, engine=Engine(fake), commits={"app": APP_COMMIT, "lib": LIB_COMMIT})

    assert not report.matches, "verify passed a SHA256SUMS that sha256sum -c rejects"
    assert any(check.what == "SHA256SUMS" or "SHA256SUMS" in check.detail for check in report.failures)


def test_publish_refuses_a_sums_file_that_sha256sum_rejects(
    release_dir: Path, manifest: Manifest, fake: FakeDockerClient
) -> None:
    join_lines_with(release_dir, "\u2028")

    with pytest.raises(PublishRefused):
        publish_release(release_dir, manifest, Engine(fake), log=lambda line: None)
    assert not fake.calls_to("api.push")
