""".build/ is not trusted: a symlink planted where a step's log goes is never followed.

(Outside attack-x3's theme, found on the way; attack-x1 fixed it.) execute opened `.build/logs/<release>/<artifact>.log`
with a plain open("w"): a planted `a.log -> ~/.bashrc` truncates the user's file and
fills it with the build's log; a planted `.build/logs/<release> -> elsewhere` writes every
log there.
"""

from __future__ import annotations

from pathlib import Path

from tests.reliability.interrupt_helpers import make_workspace


def test_a_symlink_planted_at_a_steps_log_is_not_followed(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, {"a": "mkdir -p out && echo a > out/a"})
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's own file\n")
    logs = ws.path / ".build" / "logs" / "v1"
    logs.mkdir(parents=True)
    (logs / "a.log").symlink_to(victim)

    ws.run("build", *ws.args("--all"))

    assert victim.read_text() == "the user's own file\n"
