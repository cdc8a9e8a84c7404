"""Refs and URLs: the manifest validator and the fetch door give the same answer,
and that answer is git's own (``git check-ref-format``), plus our few extra rules.

Hypothesis generates the refs from an alphabet full of the characters git treats
specially; each verdict is compared with real git.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from orchestrator import schema
from orchestrator.errors import InputError
from orchestrator.gitinput import ref_problem, url_problem
from orchestrator.sources import FetchOptions, UnsafeSourceError, _prepare
from tests.helpers.gitrepos import RepoSpec

# Letters and digits, and every character git check-ref-format gives a rule.
_REF_ALPHABET = "abcXYZ019-._/@{}~^:?*[\\ \t\n\x7f\x01é"
_OPTIONS = FetchOptions(cache_dir=Path("/nonexistent/cache"), checkout_dir=Path("/nonexistent/src"))
_PROPERTY = settings(derandomize=True, deadline=None, max_examples=300, database=None,
                     suppress_health_check=[HealthCheck.too_slow])


def git_accepts(refname: str) -> bool:
    """``git check-ref-format`` on ``refname`` (no repository needed)."""
    return subprocess.run(["git", "check-ref-format", refname], capture_output=True).returncode == 0


def _our_extra_rule(ref: str) -> bool:
    """Refs git would take but we refuse: an option-looking '-x', a bare '@', and a
    commit id in upper case."""
    upper_commit = len(ref) == 40 and all(c in "0123456789abcdefABCDEF" for c in ref) and ref != ref.lower()
    return ref.startswith("-") or ref == "@" or upper_commit


def _fetch_door_accepts(ref: str = "v1", url: str = "https://example.invalid/x.git") -> bool:
    try:
        _prepare(RepoSpec(name="felix", url=url, ref=ref), _OPTIONS)
    except UnsafeSourceError:
        return False
    except InputError:  # a pin conflict, not the question here
        return True
    return True


@_PROPERTY
@given(st.text(alphabet=_REF_ALPHABET, min_size=0, max_size=12))
@example("v3.2.0")
@example("release/v3.2")
@example("a.b-c_d")
@example("é")
@example("/x")
@example(".x")
@example("a/.b")
@example("a.lock/b")
@example("a//b")
@example("x.")
@example("v1\n")
@example("-x")
@example("@")
@example("3045809058" * 4)
@example("30458090588D14445F4B16B5B80E6DB80DBFFC33")
def test_a_ref_passes_exactly_when_git_accepts_it_as_a_tag_and_a_branch(ref: str) -> None:
    git_says = bool(ref) and git_accepts(f"refs/tags/{ref}") and git_accepts(f"refs/heads/{ref}")
    expected = git_says and not _our_extra_rule(ref)

    assert (ref_problem(ref) is None) == expected, (ref, ref_problem(ref))


@_PROPERTY
@given(st.text(alphabet=_REF_ALPHABET, min_size=0, max_size=12))
def test_the_manifest_and_the_fetch_door_agree_on_every_ref(ref: str) -> None:
    assert (schema.check_ref(ref) is None) == _fetch_door_accepts(ref=ref), ref


URLS = [
    "https://github.com/projectcalico/felix.git", "https://user:token@example.invalid/x.git",
    "ssh://git@github.com/projectcalico/felix.git", "git@github.com:projectcalico/felix.git",
    "git://example.invalid/x.git", "file:///srv/git/felix.git", "FILE:///srv/x", "HTTPS://example.invalid/x",
    "http://example.invalid/x", "ftp://example.invalid/x", "ext::sh -c touch% /tmp/pwned", "fd::17",
    "git@github.com::x", "-oProxyCommand=x", "--upload-pack=x", "", " ", "/srv/git/felix", "./felix", "~/felix",
    "felix", "example.invalid:felix", "https://", "https:///x", "https://@/x", "https://x/a\nb", " https://x/a",
    "https://x/a ", "https://x/a\n", "https://x/a\x00", "ssh://-oProxyCommand=x/y", "git@-oProxyCommand=x:y",
    "fd:17", "ext:x",
]


@pytest.mark.parametrize("url", URLS)
def test_the_manifest_and_the_fetch_door_agree_on_every_url(url: str) -> None:
    assert (schema.check_url(url) is None) == _fetch_door_accepts(url=url) == (url_problem(url) is None), url


@pytest.mark.parametrize("url", ["ssh://-oProxyCommand=x/y", "ssh://u@-oProxyCommand=x/y", "git@-oProxyCommand=x:y",
                                 "https://", "https://@/x", "https://x/a ", "ext:x"])
def test_urls_git_would_misread_are_refused(url: str) -> None:
    assert url_problem(url) is not None


def test_a_refused_url_never_shows_its_credentials() -> None:
    problem = url_problem("https://user:s3cret@example.invalid/x\n")
    assert problem is not None and "s3cret" not in problem.what
