"""From command-line flags to what the library takes: settings, names, the release, progress.

A new task reads its flags through these, so every task means the same by --manifest,
--workspace, --jobs, NAMES/--all, --dry and --progress, and shares their help texts.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke.context import Context

from orchestrator import hints
from orchestrator.errors import InputError
from orchestrator.settings import Settings, load_settings, parse_int, parse_mirror
from orchestrator_cli import crash, debugging, printing
from orchestrator_cli.printing import note, shown_path

if TYPE_CHECKING:
    from orchestrator.model import Manifest
    from orchestrator.signing import Signer
    from orchestrator_cli.display import Progress

RELEASE_DIR_HELP = ("A release directory (dist/<release>) to work on; without --manifest, the manifest its "
                    "release.json names is used.")
SIGN_KEY_HELP = ("Sign provenance.json with this private key (ECDSA P-256 or Ed25519 PEM; env ORCHESTRATOR_SIGN_KEY; "
                 "passphrase only from env ORCHESTRATOR_SIGN_PASSPHRASE).")
WAIT_HELP = "If another run is writing to the workspace, wait for it instead of failing (env ORCHESTRATOR_WAIT)."
MANIFEST_HELP = "Manifest file (default: manifest.yaml; config `manifest`, env ORCHESTRATOR_MANIFEST)."
CACHE_DIR_HELP = "Mirror cache (default $XDG_CACHE_HOME/orchestrator/git; env ORCHESTRATOR_CACHE_DIR)."
OUTPUT_HELP = {
    "progress": "How to show progress: auto (a live table on a terminal, else plain), tty, or plain lines.",
    "quiet": "Show no progress; print only the result.",
    "verbose": "Also stream each running step's log as it is written, prefixed with its name.",
    "json": "Print the result as one JSON document on stdout (progress still goes to stderr).",
}
BUILD_HELP = {
    "names": "Repos or artifacts (felix calico/node, or felix,calico/node). A repo means all its artifacts.",
    "all": "Build every artifact of the manifest.",
    "dry-run": "Print the plan (order, and what each step would run); fetch and build nothing.",
    "jobs": "Parallel workers (default: build steps, one per core up to 8; fetches, 4 per core, 8 to 32).",
    "keep-going": "After a failure, keep building everything that does not depend on it.",
    "force": "Rebuild even when cached: --force (everything) or --force=NAMES (those repos/artifacts).",
    "offline": "Use only the mirror cache; fail listing the repos that are not cached.",
    "mirror": "FROM=TO URL prefix rewrite for git, e.g. https://github.com/=file:///srv/gh/.",
    "manifest": MANIFEST_HELP,
    "workspace": "Directory holding .build/ and dist/ (default: the current directory).",
    "wait": WAIT_HELP,
    "sign-key": SIGN_KEY_HELP,
    **OUTPUT_HELP,
}
SHARED_HELP = {
    "cache": "A registry repository shared as a build cache (HOST[:PORT]/PATH): restore what it has, store "
             "what is built (env ORCHESTRATOR_CACHE).",
    "cache-mode": "read (restore only, e.g. pull requests) or readwrite (also store builds; default).",
    "require-cache": "A cache that cannot be used fails the run instead of a warning and a local build.",
    "shard": "Build share K of N of the plan (e.g. 1/2), storing it in --cache; the record is partial.",
    "shard-deps": "A dependency another shard builds: wait for it in the cache (default) or build it here.",
    "assemble": "Build nothing: restore every artifact from --cache and write the whole release's record; "
                "fail listing every artifact no shard produced.",
}


def settings_from(**flags: Any) -> Settings:
    """Settings from the flags given (an empty flag defers to config and environment)."""
    if flags.get("jobs") not in (None, ""):
        flags["jobs"] = parse_int(flags["jobs"], "--jobs", minimum=1)
    else:
        flags["jobs"] = None
    if flags.get("retries") not in (None, ""):
        flags["retries"] = parse_int(flags["retries"], "--retries")
    else:
        flags["retries"] = None
    if "mirrors" in flags:
        flags["mirrors"] = tuple(parse_mirror(m, "--mirror") for m in flags["mirrors"] or ())
    for key in ("offline", "wait", "require_cache", "assemble"):
        if key in flags and not flags.get(key):
            flags[key] = None  # a flag left off must not override the config's `offline: true`
    for key in ("cache", "cache_mode", "shard", "shard_deps"):
        if key in flags and not flags[key]:
            flags[key] = None
    for key in ("manifest", "workspace", "cache_dir", "sign_key"):
        if flags.get(key):
            flags[key] = Path(flags[key]).expanduser()
        else:
            flags[key] = None
    settings = load_settings(flags)
    crash.workspace = settings.workspace  # where a crash log goes, should one be needed
    hints.invocation = hints.Invocation(program=printing.runnable(), workspace=settings.workspace)
    return settings


def owner_of(settings: Settings, release_dir: str) -> Settings:
    """The settings of the workspace that owns ``release_dir`` (``<workspace>/dist/<release>``),
    so that a writer locks the workspace whose release it changes, whichever workspace is
    current or given; a release directory elsewhere leaves them as they are."""
    if not release_dir:
        return settings
    directory = Path(release_dir).expanduser().absolute()
    if directory.parent.name != "dist":
        return settings
    return replace(settings, workspace=directory.parent.parent)


def signer_for(settings: Settings) -> Signer | None:
    """The key that signs provenance (--sign-key, ORCHESTRATOR_SIGN_KEY, config ``sign_key``),
    loaded before any work so that a bad key or passphrase stops the run at once (exit 2);
    its passphrase comes only from the environment. None: the release is not signed."""
    if settings.sign_key is None:
        return None
    import os

    from orchestrator.signing import PASSPHRASE_ENV, Signer

    return Signer.load(settings.sign_key, os.environ.get(PASSPHRASE_ENV) or None)


def shared_settings(settings: Settings) -> Settings:
    """The build's settings after refusing contradicting cache and shard settings (exit 2)."""
    from orchestrator.settings import sharing_problem

    if problem := sharing_problem(settings):
        raise InputError(problem, hint="see README, Sharing builds: a cache, shards and an assemble")
    return settings


def release_for(settings: Settings, manifest_flag: str, release_dir: str) -> tuple[Manifest, Path]:
    """The manifest and release directory a reading task works on.

    ``--release-dir`` names a release directory; without ``--manifest`` the manifest it
    was built from is the one its record names (said on stderr). Either way the record
    must have been built from that manifest (sha256), checked before anything else.
    """
    from orchestrator import record
    from orchestrator.conformance import release_of
    from orchestrator.manifest import load
    from orchestrator.report import recorded_manifest

    if not release_dir:
        loaded = load(settings.manifest)
        directory = settings.dist_dir / loaded.release
        release_of(loaded, directory)
        return loaded, directory
    directory = Path(release_dir).expanduser()
    if manifest_flag or settings.manifest != Settings().manifest:
        loaded = load(settings.manifest)
    else:
        recorded = recorded_manifest(directory, record.read(directory).manifest.path)
        note(f"using manifest {shown_path(recorded)} (recorded in {shown_path(directory / record.FILENAME)})")
        loaded = load(recorded)
    release_of(loaded, directory)
    return loaded, directory


def check_names(names: str | None) -> tuple[str, ...]:
    """NAMES as given (comma- or space-separated), each checked for shape."""
    from orchestrator.plan import split_names

    return split_names(names or "")


def names_or_all(task_name: str, names: str | None, everything: bool) -> tuple[str, ...]:
    """The names given, after refusing neither-names-nor---all (both forms shown)."""
    parsed = check_names(names)
    if not parsed and not everything:
        raise InputError(f"{task_name}: name what to {task_name}, or pass --all",
                         hint=f"`{task_name} felix calico/node` (repos or artifacts) or `{task_name} --all`")
    return parsed


def dry_run(c: Context, task_name: str, *, allowed: bool = False) -> bool:
    """invoke's own --dry (`invoke --dry build`) means --dry-run for the tasks that have one
    (``allowed``), and is refused elsewhere: invoke's meaning (print shell commands instead of
    running them) does not apply to our tasks."""
    dry = bool(c.config.get("run", {}).get("dry", False))
    if dry and not allowed:
        raise InputError(f"invoke's --dry does not apply to {task_name}",
                         hint="drop --dry; build and clean have a dry run (--dry-run)")
    return dry


def progress_from(progress: str, quiet: bool, verbose: bool) -> Progress:
    """The progress display --progress, --quiet and --verbose ask for."""
    from orchestrator_cli.display import MODES, Progress

    mode = progress or "auto"
    if mode not in MODES:
        raise InputError(f"--progress {progress!r} is not a progress mode", hint="use auto, tty or plain")
    if quiet and verbose:
        raise InputError("--quiet and --verbose contradict each other", hint="give one of them")
    shown = Progress(mode, quiet=quiet, verbose=verbose)
    if verbose or debugging.is_on():  # command lines go through the display, not across it
        debugging.switch_on(shown.debug)
    return shown


def registry_prefix(value: str) -> str:
    """--registry checked as the start of image names (HOST[:PORT]/)."""
    from orchestrator.imageref import registry_problem

    if problem := registry_problem(value):
        raise InputError(f"--registry {value!r} cannot start image names: {problem}",
                         hint="give HOST[:PORT]/ with the trailing '/', e.g. 127.0.0.1:5000/")
    return value
