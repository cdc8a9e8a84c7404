"""Images a test session made on the real engine, removed when the session ends.

Tests name every image under the session's prefix (``tests.conftest.IMAGE_PREFIX``) or push
it to a registry the session started (``REGISTRIES``). At the end, those tags are removed,
and so are images the orchestrator built (they carry its labels) that did not exist when
the session began and are left without any tag (re-tagged or rebuilt ones); bare
intermediate images may be another session's build in progress, and are left to the
engine, which prunes ours with the image they lead to. Nothing else on the engine is touched: the user's images,
tags and containers stay as they were.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

REGISTRIES: set[str] = set()  # host:port of registries started by this session


def connect() -> Any | None:
    """A docker-py client on the engine the tests use, or None when none answers."""
    try:
        import docker

        client = docker.from_env(timeout=30)
        client.ping()
    except Exception:  # noqa: BLE001 - no engine: nothing to clean
        return None
    return client


def image_ids(client: Any) -> set[str]:
    return {image.id for image in client.images.list(all=True)}


def ours(tag: str, prefixes: Iterable[str]) -> bool:
    return any(tag.startswith(prefix) for prefix in prefixes) or any(
        tag.startswith(f"{registry}/") for registry in REGISTRIES)


def remove_session_images(client: Any, before: set[str], prefixes: Iterable[str]) -> list[str]:
    """Remove this session's tags, then the untagged images it created; returns what went."""
    removed: list[str] = []
    prefixes = tuple(prefixes)
    for image in client.images.list(all=True):
        for tag in image.tags:
            if ours(tag, prefixes):
                with contextlib.suppress(Exception):
                    client.images.remove(tag, noprune=False)
                    removed.append(tag)
    for image in client.images.list(all=True):
        # Only images the orchestrator built (they carry its labels) that lost their last
        # tag: a bare intermediate image may be another session's build in progress, and the
        # engine prunes ours with the image they lead to (noprune=False).
        if image.id not in before and not image.tags and _built_by_us(image):
            with contextlib.suppress(Exception):  # still used by a container, or a parent: leave it
                client.images.remove(image.id, noprune=False)
                removed.append(image.id)
    return removed


def _built_by_us(image: Any) -> bool:
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    return any(key.startswith(("io.github.release-orchestrator.", "org.opencontainers.image.")) for key in labels)
