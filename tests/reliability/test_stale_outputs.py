"""An artifact rebuilt with fewer outputs takes its old files out of dist/: a file no
record accounts for would make verify fail right after a build that said ok."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.reliability.interrupt_helpers import make_workspace


def test_a_rebuild_removes_the_files_it_no_longer_makes(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, {"a": "mkdir -p out && echo a > out/a && echo x > out/x"})
    both = ws.manifest.read_text().replace("outputs: [out/a]", "outputs: [out/a, out/x]")
    ws.manifest.write_text(both)
    assert ws.run("build", *ws.args("--all"))[0] == 0
    release = ws.path / "dist" / "v1"
    assert (release / "bin" / "x").is_file()

    ws.manifest.write_text(both.replace("outputs: [out/a, out/x]", "outputs: [out/a]"))
    code, _, err = ws.run("build", *ws.args("--all"))

    assert code == 0, err
    assert not (release / "bin" / "x").exists()
    assert (release / "bin" / "a").read_text() == "a\n"
    verify = ws.run("verify", "--offline", "--skip", "signature", *ws.args())  # unsigned: said, skipped
    assert verify[0] == 0, verify[1] + verify[2]
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=release, capture_output=True).returncode == 0


def test_a_file_changed_by_hand_is_left_for_verify_to_name(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, {"a": "mkdir -p out && echo a > out/a && echo x > out/x"})
    both = ws.manifest.read_text().replace("outputs: [out/a]", "outputs: [out/a, out/x]")
    ws.manifest.write_text(both)
    assert ws.run("build", *ws.args("--all"))[0] == 0
    stale = ws.path / "dist" / "v1" / "bin" / "x"
    stale.write_text("someone's own bytes\n")

    ws.manifest.write_text(both.replace("outputs: [out/a, out/x]", "outputs: [out/a]"))
    assert ws.run("build", *ws.args("--all"))[0] == 0

    assert stale.read_text() == "someone's own bytes\n", "not ours any more: never deleted"
    code, out, _ = ws.run("verify", "--offline", *ws.args())
    assert code == 1 and "bin/x" in out
