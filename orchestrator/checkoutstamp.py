"""The warm path of fetching: a repo whose checkout is at its pin and untouched is
recognised without starting git or taking a lock.

After every checkout made right by git, the orchestrator writes a stamp
(``.build/src/.stamps/<repo>.json``, signed: see ``orchestrator.stamps``) saying how
the ref resolved (kind, the object the ref names, commit, commit time) and the digest of
the checkout's stat data, ``.git`` included. A later run trusts it only when

- its signature holds for this repo's URL (with any credentials), mirror and checkout path;
- it is for the same ref and pin, and the pin is one the mirror may answer for
  (a tag, a commit, or a pinned branch; an unpinned branch asks its remote, as always);
- the mirror's ref, read from its files (``orchestrator.refstore``), still names the
  same object, and the mirror's config is still, byte for byte, the one we wrote;
- the mirror's use stamp (``orchestrator.mirroruse``) is there to be touched;
- for the checkout: every entry's stat data is as stamped, racily clean files still
  hash as they did, and no killed run left a temporary copy of it beside it.

Anything else, and the repo takes the git path, which repairs what it finds and
stamps the result again. Nothing here raises.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from orchestrator import mirroruse, refstore, repoconfig, stamps
from orchestrator.fileops import read_limited
from orchestrator.gitinput import COMMIT
from orchestrator.sourceref import FetchOptions, RefKind, RepoRef, Resolved

STAMPS = ".stamps"
_PIN_NS = "refs/orchestrator/commits/"
Kind = RefKind


def stamp_path(checkout_dir: Path, name: str) -> Path:
    return checkout_dir.absolute() / STAMPS / f"{name}.json"


def _bound(git_url: str, mirror: Path, checkout: Path) -> dict[str, str]:
    return {"git_url": git_url, "mirror": str(mirror), "checkout": str(checkout)}


def forget(checkout_dir: Path, name: str) -> None:
    """Drop the stamp of ``name``: its checkout is about to change."""
    stamps.forget(stamp_path(checkout_dir, name))


def pinned(*, name: str, url: str, git_url: str, ref: str, pin: str | None, mirror: Path, cache_dir: Path,
           checkout_dir: Path, offline: bool, refresh: bool) -> dict[str, Any] | None:
    """The stamp of a repo whose ref still resolves as stamped, read without git; else None.

    The returned fields hold ``kind``, ``target``, ``commit``, ``commit_time``, and the
    tree digest that ``untouched`` checks the checkout against.
    """
    if refresh:
        return None
    checkout = checkout_dir.absolute() / name
    fields = stamps.read(stamp_path(checkout_dir, name), stamps.key(cache_dir), _bound(git_url, mirror, checkout))
    if fields is None or not _shaped(fields):
        return None
    if (fields["repo"], fields["url"], fields["ref"], fields["pin"]) != (name, url, ref, pin):
        return None
    kind: Kind = fields["kind"]
    if pin is not None and fields["commit"] != pin:
        return None
    if kind == "branch" and pin is None and not offline:
        return None  # an unpinned branch moves: its remote is asked
    if not repoconfig.as_written(mirror, repoconfig.MIRROR):
        return None
    try:
        if kind == "commit":
            held = refstore.read(mirror, _PIN_NS + ref) == ref == fields["commit"]
        else:
            # The slow path prefers a tag of that name over a branch: so must this one.
            tag = refstore.read(mirror, f"refs/tags/{ref}")
            held = tag == fields["target"] if kind == "tag" else (
                tag is None and refstore.read(mirror, f"refs/heads/{ref}") == fields["target"])
    except refstore.Unknown:
        return None
    # A use of the shared mirror all the same, for `clean --cache` elsewhere (mirroruse);
    # with no stamp to touch, the locked path answers, and writes one.
    return fields if held and mirroruse.touch(mirror) else None


def resolved(source: RepoRef, options: FetchOptions) -> tuple[Resolved, list[str]] | None:
    """``source`` resolved from its checkout's stamp without git (see ``pinned``), with
    what to say about it; None when git must be asked."""
    stamp = pinned(name=source.name, url=source.url, git_url=source.git_url, ref=source.ref, pin=source.pin,
                   mirror=source.mirror, cache_dir=options.cache_dir, checkout_dir=options.checkout_dir,
                   offline=options.offline, refresh=options.refresh)
    if stamp is None:
        return None
    kind: Kind = stamp["kind"]
    said = ["cached, no network"]
    if kind == "branch" and source.pin is None:
        said.insert(0, f"offline: using cached branch {source.ref} at {stamp['commit'][:12]}, "
                       "which may be behind the remote")
    found = Resolved(name=source.name, url=source.url, ref=source.ref, commit=stamp["commit"],
                     commit_time=stamp["commit_time"], fetched=False, mirror=source.mirror,
                     tag=(source.ref, stamp["target"]) if kind == "tag" else None, source=source, kind=kind,
                     target=stamp["target"], stamp=stamp)
    return found, said


def intact(found: Resolved, options: FetchOptions, left: frozenset[str] | None) -> bool:
    """The checkout of ``found`` (resolved from its stamp) is untouched since stamped;
    ``left`` as ``left_behind`` found it."""
    return found.stamp is not None and untouched(options.checkout_dir.absolute() / found.name, found.stamp,
                                                 commit=found.commit, tag=found.tag, left=left)


def _shaped(fields: dict[str, Any]) -> bool:
    """The stamp holds what ``record`` writes (it is signed, so this guards our own bugs)."""
    strings = ("repo", "url", "ref", "kind", "target", "commit", "tree")
    if not all(isinstance(fields.get(k), str) for k in strings):
        return False
    if fields["kind"] not in ("tag", "branch", "commit") or not COMMIT.fullmatch(fields["commit"]):
        return False
    if not isinstance(fields.get("commit_time"), int) or not isinstance(fields.get("racy"), dict):
        return False
    tag = fields.get("tag")
    if tag is not None and not (isinstance(tag, list) and len(tag) == 2 and all(isinstance(t, str) for t in tag)):
        return False
    return fields.get("pin") is None or isinstance(fields.get("pin"), str)


def untouched(checkout: Path, fields: dict[str, Any], *, commit: str, tag: tuple[str, str] | None,
              left: frozenset[str] | None) -> bool:
    """The checkout is exactly as stamped, for this commit and tag, and ``left`` (see
    ``left_behind``) does not name it: no git needed."""
    stamped_tag = tuple(fields["tag"]) if fields.get("tag") is not None else None
    if fields.get("commit") != commit or stamped_tag != tag:
        return False
    if left is None or checkout.name in left or not repoconfig.as_written(checkout / ".git", repoconfig.CHECKOUT):
        return False
    racy = fields["racy"]
    return all(isinstance(v, str) for v in racy.values()) and stamps.matches(checkout, fields["tree"], racy)


def left_behind(checkout_dir: Path) -> frozenset[str] | None:
    """The repos beside whose checkout a killed run left a ``.tmp~<repo>~*`` (treecopy,
    gitcache), listed once for all; None when it cannot be told. Such a checkout may be
    whole, but the git path is the one that removes the leftover."""
    try:
        entries = os.listdir(checkout_dir)
    except FileNotFoundError:
        return frozenset()
    except OSError:
        return None
    # "~" cannot occur in a repo's name: the name is what lies between the first two.
    return frozenset(parts[1] for entry in entries if entry.startswith(".tmp~")
                     and len(parts := entry.split("~")) >= 3)


def record(*, name: str, url: str, git_url: str, ref: str, pin: str | None, kind: Kind, target: str, commit: str,
           commit_time: int, tag: tuple[str, str] | None, mirror: Path, cache_dir: Path,
           checkout_dir: Path) -> bool:
    """Stamp the checkout git just made right; False when it could not be (it is then
    checked with git next time). Call it with nothing else writing the checkout."""
    secret = stamps.key(cache_dir)
    where = stamp_path(checkout_dir, name)
    checkout = checkout_dir.absolute() / name
    if secret is None or not head_is(checkout / ".git", commit):
        return False
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        stamps.sweep(where.parent)
        now = stamps.fs_now(where.parent)
        taken = stamps.take(checkout, now)
        if taken is None:
            return False
        tree, racy = taken
        fields = {"format": stamps.FORMAT, "repo": name, "url": url, "ref": ref, "pin": pin, "kind": kind,
                  "target": target, "commit": commit, "commit_time": commit_time,
                  "tag": list(tag) if tag is not None else None, "tree": tree, "racy": racy}
        stamps.write(where, secret, fields, _bound(git_url, mirror, checkout))
    except OSError:
        stamps.forget(where)
        return False
    return True


def head_is(git_dir: Path, commit: str) -> bool:
    """``git_dir``'s HEAD is detached at ``commit``, read from its file as git wrote it
    (never through a symlink, never waiting on a FIFO)."""
    try:
        return read_limited(git_dir / "HEAD", limit=64, follow=False) == commit.encode() + b"\n"
    except OSError:
        return False
