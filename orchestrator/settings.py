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
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from orchestrator.document import Document, parse_optional
from orchestrator.errors import InputError, ManifestError
from orchestrator.fileops import MAX_INPUT_BYTES, read_limited

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
    stop_grace: int = 3  # seconds between SIGTERM and SIGKILL when a build command is stopped
    # The private key that signs provenance.json (build, publish); its passphrase, if any,
    # comes only from the environment (signing.PASSPHRASE_ENV), never from here.
    sign_key: Path | None = None
    cache: str | None = None  # a registry repository: the shared build cache (orchestrator.remotecache)
    cache_mode: str = "readwrite"  # read: restore only (pull requests); readwrite: store builds too
    require_cache: bool = False  # a cache problem fails the run instead of a warning
    shard: tuple[int, int] | None = None  # (K, N): build the K-th of N shares of the plan
    shard_deps: str = "wait"  # another shard's dependency: wait for it in the cache, or build it here
    assemble: bool = False  # build nothing: restore every artifact from the cache, write the release

    @property
    def build_dir(self) -> Path:
        return self.workspace / ".build"

    @property
    def dist_dir(self) -> Path:
        return self.workspace / "dist"


_KEYS = ("manifest", "workspace", "cache_dir", "jobs", "retries", "offline", "mirrors", "wait", "stop_grace",
         "sign_key", "cache", "cache_mode", "require_cache", "shard", "shard_deps", "assemble")
_BOOLS = ("offline", "wait", "require_cache", "assemble")
# Settings with a fixed set of values, and what each one means.
CHOICES = {"cache_mode": ("read", "readwrite"), "shard_deps": ("wait", "build")}


def _bool(value: str, where: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise InputError(f"{where}: expected true or false, got {value!r}")


_WHOLE = re.compile(r"[0-9]+")


# Bounds of the whole-number settings. More workers than this only queue up; a
# retry count past 10 means waiting days (the backoff doubles each time), and past
# ~1000 the delay no longer fits a float.
# stop_grace: a command that needs more than an hour to clean up after SIGTERM is hung.
LIMITS = {"jobs": (1, 256), "retries": (0, 10), "stop_grace": (0, 3600)}


def parse_int(value: Any, where: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    """An integer setting from a flag, variable or file value: ASCII digits or a YAML
    integer, nothing that ``int()`` would round or reinterpret (3.5, "1_0", "٣")."""
    if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        number = int(value.strip())
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise InputError(f"{where}: expected a whole number, got {value!r}")
    if number < minimum:
        raise InputError(f"{where}: must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise InputError(f"{where}: must be at most {maximum}, got {number}")
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


def parse_shard(value: Any, where: str) -> tuple[int, int]:
    """``K/N`` (1 <= K <= N <= 256) -> ``(K, N)``."""
    text = value.strip() if isinstance(value, str) else ""
    k, sep, n = text.partition("/")
    if sep and _WHOLE.fullmatch(k) and _WHOLE.fullmatch(n) and 1 <= int(k) <= int(n) <= 256:
        return int(k), int(n)
    raise InputError(f"{where}: expected K/N with 1 <= K <= N <= 256, got {value!r}",
                     hint="e.g. --shard 1/2 for the first of two shards")


def parse_choice(value: Any, key: str, where: str) -> str:
    if isinstance(value, str) and value.strip() in CHOICES[key]:
        return value.strip()
    raise InputError(f"{where}: expected {' or '.join(CHOICES[key])}, got {value!r}")


def parse_cache(value: Any, where: str) -> str:
    """A cache repository reference, checked (``registry.example.com/team/release-cache``)."""
    from orchestrator.ociclient import repository_problem

    text = value.strip() if isinstance(value, str) else ""
    if problem := repository_problem(text):
        raise InputError(f"{where}: {value!r} cannot name the cache repository: {problem}",
                         hint="e.g. --cache 127.0.0.1:5000/release-cache or registry.example.com/team/release-cache")
    return text


def _special(key: str, value: Any, where: str) -> Any:
    """The settings parsed the same from a flag, a variable or the file (None: not one of them)."""
    if key == "shard":
        return parse_shard(value, where)
    if key in CHOICES:
        return parse_choice(value, key, where)
    if key == "cache":
        return parse_cache(value, where)
    return None


def _from_file(path: Path, *, named: bool) -> dict[str, Any]:
    """The settings in the config file ``path``; ``named``: the user named it (through
    ORCHESTRATOR_CONFIG), so it must exist. Read with the input limits (a regular file
    of at most MAX_INPUT_BYTES), so a FIFO or /dev/zero is refused, not waited on."""
    try:
        text = read_limited(path).decode("utf-8")
    except FileNotFoundError:
        if not named:
            return {}
        raise InputError(f"{path}: the config file named by {ENV_PREFIX}CONFIG does not exist",
                         hint=f"create it, or unset {ENV_PREFIX}CONFIG to read ./{CONFIG_FILE}") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read the config file: {e.strerror or e}",
                         hint=f"give a regular file of at most {MAX_INPUT_BYTES // (1 << 20)} MiB") from e
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: the config file is not UTF-8 text (byte {e.start})", hint="save it as UTF-8") from e
    doc = parse_optional(text, str(path))
    if doc is None or doc.root is None:
        return {}
    if not isinstance(doc.root, dict):
        raise doc.error((), "the config file must be a mapping of settings")
    return {key: _file_value(doc, key, value) for key, value in doc.root.items()}


def _file_value(doc: Document, key: str, value: Any) -> Any:
    """One setting of the config file, checked; errors are located in the file."""
    if key == "sign_passphrase":  # a secret never sits in a project file
        raise doc.error((key,), "a signing key's passphrase is never read from a file",
                        hint=f"set it in the environment: {ENV_PREFIX}SIGN_PASSPHRASE", at_key=True)
    if key not in _KEYS:
        raise doc.error((key,), f"unknown setting {key!r}", hint="settings: " + ", ".join(_KEYS), at_key=True)
    if key == "mirrors":
        if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
            raise doc.error((key,), "expected a mapping of FROM: TO URL prefixes",
                            hint="e.g. https://github.com/: file:///srv/mirrors/github/")
        if "" in value:
            raise doc.error((key, ""), "a mirror's FROM prefix must not be empty", at_key=True)
        return tuple(value.items())
    if key in _BOOLS:
        if not isinstance(value, bool):
            raise doc.error((key,), f"expected true or false, got {value!r}")
        return value
    if key in ("shard", "cache", *CHOICES):
        try:
            return _special(key, value, key)
        except InputError as e:
            raise doc.error((key,), e.message.removeprefix(f"{key}: "), hint=e.hint) from None
    if key in LIMITS:
        minimum, maximum = LIMITS[key]
        try:
            return parse_int(value, key, minimum=minimum, maximum=maximum)
        except InputError as e:
            raise doc.error((key,), e.message.removeprefix(f"{key}: "),
                            hint=f"e.g. {key}: {max(minimum, 2)}") from None
    if not isinstance(value, str) or not value.strip():
        raise doc.error((key,), f"expected a path, got {value!r}")
    return Path(value).expanduser()


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in _KEYS:
        name = ENV_PREFIX + key.upper()
        raw = env.get(name)
        if raw is None or raw == "":
            continue
        if key == "mirrors":
            values[key] = tuple(parse_mirror(part, name) for part in raw.split())
        elif key in _BOOLS:
            values[key] = _bool(raw, name)
        elif key in ("shard", "cache", *CHOICES):
            values[key] = _special(key, raw, name)
        elif key in LIMITS:
            values[key] = parse_int(raw, name, minimum=LIMITS[key][0], maximum=LIMITS[key][1])
        else:
            values[key] = Path(raw).expanduser()
    return values


def load_settings(overrides: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None,
                  cwd: Path | None = None) -> Settings:
    """Settings from defaults, the config file, the environment, then ``overrides``
    (the flags that were given; ``None`` values mean "not given")."""
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    named = bool(env.get(ENV_PREFIX + "CONFIG"))
    config = cwd / (Path(env[ENV_PREFIX + "CONFIG"]).expanduser() if named else CONFIG_FILE)
    settings = Settings()
    try:
        settings = replace(settings, **_from_file(config, named=named))
    except ManifestError as e:
        raise InputError(str(e)) from e
    settings = replace(settings, **_from_env(env))
    given = {k: v for k, v in (overrides or {}).items() if v is not None and v != () and v != []}
    for key, (low, high) in LIMITS.items():
        if key in given:
            given[key] = parse_int(given[key], f"--{key}", minimum=low, maximum=high)
    for key in ("shard", "cache", *CHOICES):
        if isinstance(given.get(key), str):
            given[key] = _special(key, given[key], "--" + key.replace("_", "-"))
    return replace(settings, **given)


def sharing_problem(settings: Settings) -> str | None:
    """What contradicts in the cache and shard settings of a build, or None."""
    flag = {"shard": "--shard", "assemble": "--assemble", "require_cache": "--require-cache"}
    if settings.cache is None:
        for key in ("shard", "assemble", "require_cache"):
            if getattr(settings, key):
                return f"{flag[key]} needs a remote cache: give --cache REGISTRY/REPOSITORY (or ORCHESTRATOR_CACHE)"
    if settings.shard and settings.assemble:
        return "--shard and --assemble contradict each other: shards build, the assemble step builds nothing"
    if settings.shard and settings.cache_mode == "read":
        return "--shard stores its outputs in the cache for the others: it needs --cache-mode readwrite"
    return None
