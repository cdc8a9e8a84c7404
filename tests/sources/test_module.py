"""Module-level promises: lean imports, cache location, mirror names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.sources import FetchFailed, FetchOptions, default_cache_dir, fetch, mirror_name
from tests.helpers.gitrepos import RepoSpec


def test_importing_sources_and_lock_does_not_load_gitpython(project_root: Path) -> None:
    code = "import sys, orchestrator.sources, orchestrator.lock; print('git' in sys.modules)"

    result = subprocess.run([sys.executable, "-c", code], cwd=project_root, capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "False"


def test_default_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    assert default_cache_dir() == tmp_path / "xdg" / "orchestrator" / "git"


def test_default_cache_dir_falls_back_to_home_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))

    assert default_cache_dir() == tmp_path / ".cache" / "orchestrator" / "git"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")
    assert default_cache_dir() == tmp_path / ".cache" / "orchestrator" / "git"


def test_orchestrator_cache_dir_overrides_the_mirror_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ORCHESTRATOR_CACHE_DIR", str(tmp_path / "mirrors"))

    assert default_cache_dir() == tmp_path / "mirrors"


def test_mirror_name_is_readable_unique_and_free_of_credentials() -> None:
    felix = mirror_name("https://github.com/projectcalico/felix.git")

    assert felix.startswith("github.com_projectcalico_felix-")
    assert felix.endswith(".git")
    assert mirror_name("https://github.com/projectcalico/felix") == felix
    assert mirror_name("https://bot:token@github.com/projectcalico/felix.git/") == felix
    assert mirror_name("https://gitlab.com/projectcalico/felix.git") != felix
    assert "token" not in mirror_name("https://bot:token@github.com/x.git")


def test_unwritable_cache_is_reported_as_an_error_not_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache directory should be")
    options = FetchOptions(cache_dir=blocker / "git", checkout_dir=tmp_path / "src", backoff=0.0)

    with pytest.raises(FetchFailed) as caught:
        fetch([RepoSpec(name="felix", url="https://example.invalid/felix.git", ref="v1.0")], options)

    assert "felix: " in str(caught.value)
    assert "check free space and permissions" in str(caught.value)
