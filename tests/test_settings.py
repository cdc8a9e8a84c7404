from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InputError
from orchestrator.settings import load_settings
from tests.helpers.cli import run_cli

DATA = Path(__file__).parent / "data" / "manifests"


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


@pytest.mark.parametrize(("text", "shown"), [("jobs: 3.5\n", "3.5"), ("retries: 2.5\n", "2.5"), ("jobs: '٣'\n", "'٣'"),
                                             ("jobs: true\n", "True"), ("retries: 1_0.0\n", "10.0")])
def test_a_config_number_that_is_not_whole_is_refused_with_its_location_not_truncated(
        text: str, shown: str, tmp_path: Path) -> None:
    (tmp_path / "orchestrator.yaml").write_text(text)
    key = text.split(":")[0]
    with pytest.raises(InputError) as caught:
        load_settings(env={}, cwd=tmp_path)
    assert f"orchestrator.yaml:1:{len(key) + 3}: {key}: expected a whole number, got {shown}" in str(caught.value)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("value", ["3.5", "1_0", "٣", "0x10", "4 4", "-1"])
def test_an_environment_number_that_is_not_plain_digits_is_refused_with_its_value(value: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="ORCHESTRATOR_RETRIES: (expected a whole number|must be at least)") as caught:
        load_settings(env={"ORCHESTRATOR_RETRIES": value}, cwd=tmp_path)
    assert repr(value) in str(caught.value) or value in str(caught.value)


def test_whole_numbers_are_read_from_every_source(tmp_path: Path) -> None:
    (tmp_path / "orchestrator.yaml").write_text("jobs: 3\nretries: '4'\n")
    assert (load_settings(env={}, cwd=tmp_path).jobs, load_settings(env={}, cwd=tmp_path).retries) == (3, 4)
    assert load_settings(env={"ORCHESTRATOR_JOBS": " 5 "}, cwd=tmp_path).jobs == 5


def test_a_config_file_named_by_orchestrator_config_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "settings.yaml"
    with pytest.raises(InputError) as caught:
        load_settings(env={"ORCHESTRATOR_CONFIG": str(missing)}, cwd=tmp_path)
    assert f"{missing}: the config file named by ORCHESTRATOR_CONFIG does not exist" in str(caught.value)
    assert caught.value.exit_code == 2


def test_a_missing_default_config_file_and_an_empty_one_mean_no_settings(tmp_path: Path) -> None:
    assert load_settings(env={}, cwd=tmp_path) == load_settings(env={}, cwd=tmp_path / "elsewhere")
    (tmp_path / "orchestrator.yaml").write_text("# nothing set yet\n")
    assert load_settings(env={}, cwd=tmp_path).jobs is None


def test_a_relative_orchestrator_config_is_found_from_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "ci.yaml").write_text("jobs: 7\n")
    assert load_settings(env={"ORCHESTRATOR_CONFIG": "conf/ci.yaml"}, cwd=tmp_path).jobs == 7


@pytest.mark.parametrize(("text", "fragment"), [
    ("manifest: ''\n", "1:11: manifest: expected a path, got ''"),
    ("mirrors:\n  '': file:///srv/\n", "2:3: mirrors['']: a mirror's FROM prefix must not be empty"),
    ("mirrors:\n  https://x/: ''\n", "2:3: mirrors: expected a mapping of FROM: TO URL prefixes"),
    ("offline: 'yes'\n", "1:10: offline: expected true or false, got 'yes'"),
])
def test_empty_or_mistyped_config_values_are_refused_where_they_are(text: str, fragment: str, tmp_path: Path) -> None:
    (tmp_path / "orchestrator.yaml").write_text(text)
    with pytest.raises(InputError) as caught:
        load_settings(env={}, cwd=tmp_path)
    assert f"orchestrator.yaml:{fragment}" in str(caught.value)


@pytest.mark.parametrize(("where", "args", "env", "config"), [
    ("--jobs", ["--jobs", "3.5"], {}, ""),
    ("ORCHESTRATOR_JOBS", [], {"ORCHESTRATOR_JOBS": "3.5"}, ""),
    ("orchestrator.yaml:1:7: jobs", [], {}, "jobs: 3.5\n"),
])
def test_jobs_3_5_is_refused_from_flag_environment_and_config_file_with_exit_2(
        where: str, args: list[str], env: dict[str, str], config: str, tmp_path: Path) -> None:
    (tmp_path / "manifest.yaml").write_text((DATA / "valid_minimal.yaml").read_text())
    if config:
        (tmp_path / "orchestrator.yaml").write_text(config)
    result = run_cli("build", "--all", "--dry-run", *args, program="orchestrator", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stdout
    assert f"{where}: expected a whole number, got" in result.stderr and "3.5" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_missing_orchestrator_config_file_fails_the_command_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "manifest.yaml").write_text((DATA / "valid_minimal.yaml").read_text())
    result = run_cli("manifest", program="orchestrator", cwd=tmp_path, env={"ORCHESTRATOR_CONFIG": "ci.yaml"})
    assert result.returncode == 2
    assert "ci.yaml: the config file named by ORCHESTRATOR_CONFIG does not exist" in result.stderr


@pytest.mark.parametrize(("source", "value", "limit"), [("jobs", 257, "at most 256"), ("retries", 11, "at most 10"),
                                                        ("jobs", 0, "at least 1"),
                                                        ("stop_grace", 3601, "at most 3600")])
def test_whole_numbers_out_of_bounds_are_refused_from_every_source(source: str, value: int, limit: str,
                                                                   tmp_path: Path) -> None:
    (tmp_path / "orchestrator.yaml").write_text(f"{source}: {value}\n")
    with pytest.raises(InputError, match=f"orchestrator.yaml:1:{len(source) + 3}: {source}: must be {limit}"):
        load_settings(env={}, cwd=tmp_path)
    with pytest.raises(InputError, match=f"ORCHESTRATOR_{source.upper()}: must be {limit}"):
        load_settings(env={f"ORCHESTRATOR_{source.upper()}": str(value)}, cwd=tmp_path / "none")
    with pytest.raises(InputError, match=f"--{source}: must be {limit}"):
        load_settings({source: value}, env={}, cwd=tmp_path / "none")
    assert load_settings({"jobs": 256, "retries": 10}, env={}, cwd=tmp_path / "none").jobs == 256
