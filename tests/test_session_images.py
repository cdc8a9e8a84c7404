"""The session's clean-up removes what it made and nothing another session may be using."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.helpers.session_images import remove_session_images


@dataclass
class Image:
    id: str
    tags: list[str]
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def attrs(self) -> dict[str, Any]:
        return {"Config": {"Labels": self.labels}}


class Images:
    def __init__(self, images: list[Image]) -> None:
        self.images = images
        self.removed: list[str] = []

    def list(self, all: bool = False) -> list[Image]:  # noqa: A002 - docker-py's name
        return list(self.images)

    def remove(self, ref: str, noprune: bool = False) -> None:
        self.removed.append(ref)


def test_only_our_tags_and_our_untagged_builds_go() -> None:
    images = Images([
        Image("sha256:old", []),  # there before the session
        Image("sha256:user", ["calico/node:v3.2.0"]),
        Image("sha256:tagged", ["orchestrator-test.invalid/s1/calico/node:v1"]),
        Image("sha256:rebuilt", [], {"io.github.release-orchestrator.cache-key": "k"}),
        Image("sha256:layer", []),  # a bare intermediate image: maybe another session's build
    ])
    client = type("Client", (), {"images": images})()

    removed = remove_session_images(client, {"sha256:old", "sha256:user"}, ("orchestrator-test.invalid/s1/",))

    assert removed == ["orchestrator-test.invalid/s1/calico/node:v1", "sha256:rebuilt"]
