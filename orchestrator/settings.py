"""Run settings: command-line flags over environment over a project config file.

Both entry points (``invoke`` in a checkout, and the installed ``orchestrator``
console script) read the same sources, in this order of precedence:

1. flags (``--manifest``, ``--jobs``, ...);
2. environment variables ``ORCHESTRATOR_<KEY>`` (``ORCHESTRATOR_MANIFEST``...);
3. ``orchestrator.yaml`` in the working directory (or ``$ORCHESTRATOR_CONFIG``);
4. built-in defaults.

Our own file rather than invoke's config system, because invoke names its files and
variables after the program (``invoke.yaml``/``INVOKE_*`` vs the console script's),
and one project must not need two spellings of the same setting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from orchestrator.document import parse
from orchestrator.errors import InputError, ManifestError

CONFIG_FILE = "orchestrator.yaml"
ENV_PREFIX = "ORCHESTRATOR_"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    manifest: Path = Path("manifest.yaml")
    workspace: Path = Path(".")  # .build/ and dist/ live here
    cache_dir: Path | None = None  # None: $XDG_CACHE_HOME/orchestrator/git
    jobs: int | None = None  # None: the command's own default
    retries: int = 2
    offline: bool = False
    mirrors: tuple[tuple[str, str], ...] = ()
    wait: bool = False  # another writer holds the workspace: wait for it instead of failing

    @property
    def build_dir(self) -> Path:
        return self.workspace / ".build"

    @property
    def dist_dir(self) -> Path:
        return self.workspace / "dist"


_KEYS = ("manifest", "workspace", "cache_dir", "jobs", "retries", "offline", "mirrors", "wait")


def _bool(value: str, where: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise InputError(f"{where}: expected true or false, got {value!r}")


def parse_int(value: Any, where: str, *, minimum: int = 0) -> int:
    """An integer setting from a flag, variable or file value."""
    if isinstance(value, bool):
        raise InputError(f"{where}: expected a whole number, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: expected a whole number, got {value!r}") from None
    if number < minimum:
        raise InputError(f"{where}: must be at least {minimum}, got {number}")
    return number


def parse_mirror(text: str, where: str) -> tuple[str, str]:
    """``FROM=TO`` -> ``(FROM, TO)``."""
    source, sep, target = text.partition("=")
    if not sep or not source or not target:
        raise InputError(
            f"{where}: expected FROM=TO, got {text!r}",
            hint="e.g. --mirror https://github.com/=file:///srv/mirrors/github/",
        )
    return source, target


def _from_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the config file: {e}") from e
    doc = parse(text, str(path))
    if doc.root is None:
        return {}
    if not isinstance(doc.root, dict):
        raise doc.error((), "the config file must be a mapping of settings")
    values: dict[str, Any] = {}
    for key, value in doc.root.items():
        if key not in _KEYS:
            raise doc.error((key,), f"unknown setting {key!r}", hint="settings: " + ", ".join(_KEYS), at_key=True)
        where = f"{path}:{doc.pos((key,)).line}: {key}"  # type: ignore[union-attr]
        if key == "mirrors":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise doc.error((key,), "expected a mapping of FROM: TO URL prefixes")
            values[key] = tuple(value.items())
        elif key in ("offline", "wait"):
            if not isinstance(value, bool):
                raise doc.error((key,), "expected true or false")
            values[key] = value
        elif key in ("jobs", "retries"):
            values[key] = parse_int(value, where, minimum=1 if key == "jobs" else 0)
        elif value is not None:
            if not isinstance(value, str):
                raise doc.error((key,), "expected a path string")
            values[key] = Path(value).expanduser()
    return values


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in _KEYS:
        name = ENV_PREFIX + key.upper()
        raw = env.get(name)
        if raw is None or raw == "":
            continue
        if key == "mirrors":
            values[key] = tuple(parse_mirror(part, name) for part in raw.split())
        elif key in ("offline", "wait"):
            values[key] = _bool(raw, name)
        elif key in ("jobs", "retries"):
            values[key] = parse_int(raw, name, minimum=1 if key == "jobs" else 0)
        else:
            values[key] = Path(raw).expanduser()
    return values


def load_settings(overrides: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None,
                  cwd: Path | None = None) -> Settings:
    """Settings from defaults, the config file, the environment, then ``overrides``
    (the flags that were given; ``None`` values mean "not given")."""
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    config = Path(env[ENV_PREFIX + "CONFIG"]) if env.get(ENV_PREFIX + "CONFIG") else cwd / CONFIG_FILE
    settings = Settings()
    try:
        settings = replace(settings, **_from_file(config))
    except ManifestError as e:
        raise InputError(str(e)) from e
    settings = replace(settings, **_from_env(env))
    given = {k: v for k, v in (overrides or {}).items() if v is not None and v != () and v != []}
    return replace(settings, **given)
