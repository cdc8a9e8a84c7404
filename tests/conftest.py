from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Fixtures shared by many test modules, found by name wherever a test asks for them: the
# real engines (the default one, a second private one), local registries, a finished
# release on the fake engine, and an offline busybox image.
pytest_plugins = (
    "tests.helpers.registry",
    "tests.helpers.releases",
    "tests.helpers.second_engine",
    "tests.helpers.engine_fixtures",
)

# Every image a test builds or tags is named under this session's own prefix (a reserved
# .invalid domain, so nothing can resolve it), never under a user's names such as
# calico/node; tests/helpers/session_images.py removes what the session created.
SESSION = uuid.uuid4().hex[:10]
IMAGE_PREFIX = f"orchestrator-test.invalid/{SESSION}/"


@pytest.fixture(autouse=True)
def dont_write_to_home_directory(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """No test may touch the user's real cache or config.

    HOME and XDG_CACHE_HOME point into a fresh temporary directory, and
    ORCHESTRATOR_* variables leaking from the caller are dropped.
    """
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for name in list(os.environ):
        if name.startswith(("ORCHESTRATOR_", "INVOKE_")):
            monkeypatch.delenv(name)
    # Deterministic git identity for fixture repositories; no signing, no system config.
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Fixture Author")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "author@example.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Fixture Committer")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "committer@example.invalid")
    # How hints spell commands is set by the CLI; a test that ran a task in process must
    # not change what the next one expects.
    from orchestrator import hints

    monkeypatch.setattr(hints, "invocation", hints.Invocation())
    yield


@pytest.fixture(scope="session", autouse=True)
def session_images() -> Iterator[None]:
    """After the session, remove the images it named or pushed, and those it left untagged."""
    from tests.helpers.session_images import connect, image_ids, remove_session_images

    client = connect()
    before = image_ids(client) if client is not None else set()
    yield
    if client is not None:
        remove_session_images(client, before, (IMAGE_PREFIX,))


@pytest.fixture(scope="session")
def image_prefix() -> str:
    """The registry prefix for images of this test session (``orchestrator-test.invalid/<id>/``)."""
    return IMAGE_PREFIX


@pytest.fixture(autouse=True)
def git_not_cancelled() -> Iterator[None]:
    """A test that interrupts a run (gitcmd.cancel, as Ctrl-C does) must not leave git
    cancelled for the tests after it: in the CLI each run is its own process."""
    yield
    from orchestrator import gitcmd

    gitcmd.reset_cancellation()


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parent.parent
