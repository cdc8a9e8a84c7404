"""A bug is one line and a crash log, never a traceback on the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import describe
from orchestrator_cli import crash
from orchestrator_cli.program import run


def test_an_unexpected_exception_in_a_task_is_one_line_and_a_crash_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        project_root: Path) -> None:
    def broken(manifest: object) -> str:
        raise RuntimeError("something impossible happened")

    monkeypatch.setattr(describe, "manifest_table", broken)
    monkeypatch.chdir(tmp_path)
    code = run(["manifest", "-m", str(project_root / "manifest.yaml")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: unexpected RuntimeError: something impossible happened\n")
    assert "Traceback" not in err
    [log] = (tmp_path / ".build" / "logs").glob("crash-*.log")
    assert str(log) in err
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "something impossible happened" in text
    assert "orchestrator 0.1.0" in text and "invoke " in text and "python " in text


def test_without_a_writable_workspace_the_crash_log_goes_to_the_temp_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setattr(crash, "workspace", blocked)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    try:
        raise ValueError("bad")
    except ValueError as e:
        line = crash.report(e)
    assert str(tmp_path / "tmp") in line and list((tmp_path / "tmp").glob("crash-*.log"))
