"""A registry for unit tests: answers ``manifest_digest`` (registryapi.ManifestDigests)
from what the FakeDockerClient's pushes left (``FakeDockerClient.registry``). A test
deletes a tag (``del fake.registry[ref]``), points it elsewhere, or takes a registry
down (``down``)."""

from __future__ import annotations

from orchestrator.imageref import registry_of
from orchestrator.registryapi import RegistryUnreachable
from tests.helpers.fake_docker import FakeDockerClient


class FakeRegistry:
    def __init__(self, fake: FakeDockerClient) -> None:
        self.fake = fake
        self.down: dict[str, str] = {}  # registry -> why it cannot be asked
        self.asked: list[str] = []

    def manifest_digest(self, ref: str) -> str | None:
        self.asked.append(ref)
        if (why := self.down.get(registry_of(ref))) is not None:
            raise RegistryUnreachable(registry_of(ref), why)
        return self.fake.registry.get(ref)
