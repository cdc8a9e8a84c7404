"""The README's scripts: a second run needs no network once .venv is installed."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def project(tmp_path: Path) -> Path:
    """A copy of the install script and pyproject.toml, with a .venv that has no pip:
    any attempt to install fails, so only a skipped install succeeds."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts/ensure-venv", tmp_path / "scripts/ensure-venv")
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / ".venv")], check=True)
    python = tmp_path / ".venv/bin/python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "orchestrator_cli").mkdir(parents=True)
    (Path(site) / "orchestrator_cli/__init__.py").write_text("")
    version = subprocess.run([str(python), "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    sha = hashlib.sha256((tmp_path / "pyproject.toml").read_bytes()).hexdigest()
    (tmp_path / ".venv/.orchestrator-installed").write_text(f"{sha} {version} test\n")
    return tmp_path


def ensure(where: Path, extras: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(where / "scripts/ensure-venv"), extras], capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "PIP_NO_INDEX": "1"})


def test_an_installed_venv_is_not_installed_again(tmp_path: Path) -> None:
    where = project(tmp_path)
    assert ensure(where, "test").returncode == 0
    assert ensure(where, "").returncode == 0, "a test install also serves the demo"


def test_a_changed_pyproject_or_a_broken_venv_is_installed_again(tmp_path: Path) -> None:
    where = project(tmp_path)
    with (where / "pyproject.toml").open("a") as f:
        f.write("\n# a new dependency would go here\n")
    changed = ensure(where, "test")
    assert changed.returncode != 0 and "No module named pip" in changed.stderr, "it tried to install"


def test_a_venv_that_lost_the_project_is_installed_again(tmp_path: Path) -> None:
    where = project(tmp_path)
    for package in where.glob(".venv/lib/python*/site-packages/orchestrator_cli"):
        shutil.rmtree(package)
    broken = ensure(where, "test")
    assert broken.returncode != 0 and "No module named pip" in broken.stderr, "it tried to install"


def test_a_plain_install_does_not_satisfy_the_test_extras(tmp_path: Path) -> None:
    where = project(tmp_path)
    stamp = where / ".venv/.orchestrator-installed"
    stamp.write_text(stamp.read_text().replace(" test\n", " \n"))
    assert ensure(where, "").returncode == 0
    assert ensure(where, "test").returncode != 0, "the test extras were never installed: it must try"
