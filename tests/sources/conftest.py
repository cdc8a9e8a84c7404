from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import gitcmd
from orchestrator.sources import FetchOptions
from tests.helpers.gitrepos import Upstream, build_upstream


class Events:
    """Records on_event calls; thread-safe enough (list.append is atomic)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, name: str, message: str) -> None:
        self.calls.append((name, message))

    def messages(self, name: str | None = None) -> list[str]:
        return [message for who, message in self.calls if name is None or who == name]

    def text(self) -> str:
        return "\n".join(f"{name}: {message}" for name, message in self.calls)


@pytest.fixture(scope="session")
def upstream_template(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    """Built once per session; tests must not change it (use ``upstream`` for that)."""
    return build_upstream(tmp_path_factory.mktemp("upstream"))


@pytest.fixture
def upstream(upstream_template: Upstream, tmp_path: Path) -> Upstream:
    """A private copy of the upstream, free to change."""
    return upstream_template.copy(tmp_path / "remote" / "upstream.git")


@pytest.fixture
def options(tmp_path: Path) -> FetchOptions:
    return FetchOptions(cache_dir=tmp_path / "cache", checkout_dir=tmp_path / "ws" / ".build" / "src", backoff=0.0)


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def network_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, ...]]]:
    """Every command that goes through the network door, recorded."""
    calls: list[tuple[str, ...]] = []
    real = gitcmd.run_network

    def counting(args: list[str], **kwargs: object) -> gitcmd.GitResult:
        calls.append(tuple(args))
        return real(args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gitcmd, "run_network", counting)
    yield calls
