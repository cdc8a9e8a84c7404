from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InputError
from orchestrator.settings import load_settings


def test_flags_beat_environment_beat_config_file_beat_defaults(tmp_path: Path) -> None:
    (tmp_path / "orchestrator.yaml").write_text("manifest: from-file.yaml\njobs: 3\nretries: 5\n")
    env = {"ORCHESTRATOR_JOBS": "4"}
    settings = load_settings({"manifest": Path("from-flag.yaml")}, env=env, cwd=tmp_path)
    assert settings.manifest == Path("from-flag.yaml")
    assert settings.jobs == 4
    assert settings.retries == 5
    assert settings.offline is False


def test_mirrors_come_from_file_and_environment(tmp_path: Path) -> None:
    (tmp_path / "orchestrator.yaml").write_text("mirrors:\n  https://github.com/: file:///srv/github/\n")
    assert load_settings(env={}, cwd=tmp_path).mirrors == (("https://github.com/", "file:///srv/github/"),)
    env = {"ORCHESTRATOR_MIRRORS": "https://a/=file:///a/ https://b/=file:///b/"}
    assert len(load_settings(env=env, cwd=tmp_path).mirrors) == 2


def test_unknown_config_setting_is_refused_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "orchestrator.yaml").write_text("jobs: 2\nmanfest: x.yaml\n")
    with pytest.raises(InputError, match=r"orchestrator.yaml:2:1: manfest: unknown setting"):
        load_settings(env={}, cwd=tmp_path)


@pytest.mark.parametrize("env", [{"ORCHESTRATOR_JOBS": "many"}, {"ORCHESTRATOR_JOBS": "0"},
                                 {"ORCHESTRATOR_OFFLINE": "maybe"}, {"ORCHESTRATOR_MIRRORS": "nothing"}])
def test_bad_environment_values_are_refused_by_name(env: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(InputError, match=next(iter(env))):
        load_settings(env=env, cwd=tmp_path)
