"""A mirror in the shared cache cannot send git to another repository than the
manifest's URL.

git still reads the legacy remote files ``$GIT_DIR/remotes/<name>`` and
``$GIT_DIR/branches/<name>`` when the "URL" it is given is also a valid remote name:
one with no ``/``, as gitolite-style ``git@host:repo.git`` URLs are. Whoever can write
the cache could then plant ``remotes/git@host:repo.git`` naming their own repository:
every ls-remote and fetch of that URL (``manifest --lock``, verify's pin check, an
unpinned branch) went there, and the record still named the manifest's URL.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import repoconfig
from orchestrator.sources import FetchOptions, mirror_name, resolve
from tests.helpers.gitrepos import RepoSpec, git
from tests.reliability.isolation_helpers import make_repo

URL = "git@nohost.invalid:repo.git"  # no "/": git also reads it as a remote's name


@pytest.mark.parametrize("legacy", ["remotes", "branches"])
def test_a_planted_legacy_remote_file_never_redirects_git_to_another_repository(legacy: str, tmp_path: Path) -> None:
    planted = make_repo(tmp_path / "planted", {"evil": "evil\n"})
    options = FetchOptions(cache_dir=tmp_path / "cache", checkout_dir=tmp_path / "ws" / ".build" / "src",
                           retries=0, backoff=0.0, refresh=True)
    mirror = options.cache_dir / mirror_name(URL)
    git("init", "--quiet", "--bare", "--template=", str(mirror), cwd=tmp_path)
    repoconfig.write(mirror, repoconfig.MIRROR)  # the bytes the orchestrator writes: trusted as they are
    (mirror / legacy).mkdir()
    where = (tmp_path / "planted").as_uri()
    (mirror / legacy / URL).write_text(f"URL: {where}\n" if legacy == "remotes" else f"{where}\n")
    events: list[str] = []

    try:
        commits = resolve([RepoSpec(name="felix", url=URL, ref="v1")], options,
                          on_event=lambda name, message: events.append(message))
    except Exception:  # noqa: BLE001  (nohost.invalid cannot answer: any failure will do)
        commits = {}

    assert commits.get("felix") != planted, "the planted repository answered for the manifest's URL"
    assert f"not trusting {mirror}: it holds {legacy}, which the orchestrator never writes" in events
