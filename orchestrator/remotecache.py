"""The shared build cache: an OCI registry repository (``--cache registry.example.com/team/cache``).

Each artifact built with a cache key K is stored as one OCI artifact tagged K in the
cache repository: its manifest's config is the *entry* (below), its layers are the
artifact's files, one blob each, named by their sha256. Its images are pushed by the
Docker engine into the same repository, tagged ``K-<first 16 hex of the image id>``,
and the entry names each by its registry digest. The entry's manifest is written last,
so an entry is there only once everything it names is: a writer killed midway leaves
blobs nobody refers to, never an entry that a reader would take as complete.

Nothing read back is trusted: the entry must be for this artifact and key and its files
must be the manifest's layers; every blob is checked against its sha256 and size while
it is written (under a temporary name, renamed only when it matches); every image is
pulled by digest and must have the id the entry records and carry the key as its label.
A mismatch is a warning and a normal build (``cache.Refused``).

Stores run in the background, overlapping the builds that follow; the run waits for
them before it writes its record (``finish``).

A cache is an optimisation: an unreachable registry, refused credentials or a failed
upload is a warning, after which this run stops asking it; unless the run requires the
cache (``--require-cache``, and assembling), when it is an error. Entries of one key are
written by anyone who builds it; two writers of one key write the same blobs (same
content, same digest), and whichever manifest lands last is as complete as the other.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from orchestrator import record
from orchestrator.builders.image import KEY_LABEL
from orchestrator.cache import Found, Refused
from orchestrator.confined import UnsafePath, write_file
from orchestrator.errors import Interrupted, OrchestratorError
from orchestrator.ociclient import OCI_MANIFEST, Client, RegistryError, json_bytes, sha256_digest
from orchestrator.outputs import ArtifactOutput, FileRecord, ImageRecord
from orchestrator.recordfields import ReleaseRecordError

if TYPE_CHECKING:
    from orchestrator.engine.protocol import ContainerEngine

Mode = Literal["read", "readwrite"]
ENTRY_TYPE = "application/vnd.release-orchestrator.cache-entry.v1+json"
FILE_TYPE = "application/vnd.release-orchestrator.file.v1"
TIMINGS_TYPE = "application/vnd.release-orchestrator.timings.v1+json"
TIMINGS_TAG = "timings"  # build seconds per artifact name, for balancing shards
ENTRY_FORMAT = 1
MAX_ENTRY_BYTES = 1024 * 1024
_IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")


class CacheUnavailable(OrchestratorError):
    """The run requires the cache (``--require-cache``, assembling) and it cannot be used."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """What one cache entry says: the outputs of ``artifact`` built under ``key``."""

    artifact: str
    key: str
    files: tuple[FileRecord, ...]
    images: tuple[ImageRecord, ...]
    digests: tuple[str, ...]  # each image's manifest digest in the cache repository
    duration: float  # seconds its build took where it was built


def entry_document(entry: Entry) -> dict[str, Any]:
    return {
        "format": ENTRY_FORMAT, "artifact": entry.artifact, "key": entry.key,
        "files": [{"path": f.path, "sha256": f.sha256, "size": f.size, "mode": f.mode} for f in entry.files],
        "images": [{"id": i.id, "refs": list(i.refs), "labels": dict(i.labels), "digest": d}
                   for i, d in zip(entry.images, entry.digests, strict=True)],
        "duration": round(entry.duration, 3),
    }


def parse_entry(data: bytes, where: str) -> Entry:
    """An entry from untrusted bytes; ReleaseRecordError naming the field otherwise."""
    reader = record.ReleaseReader(where, hint="")
    raw = reader.fields(record.load_json(data, where, ""), "", ("format", "artifact", "key", "files", "images",
                                                                  "duration"))
    if reader.integer(raw["format"], "format") != ENTRY_FORMAT:
        reader.fail("format", f"expected {ENTRY_FORMAT}")
    files = tuple(reader.file_record(item, f"files[{i}]") for i, item in enumerate(reader.array(raw["files"], "files")))
    images, digests = [], []
    for i, item in enumerate(reader.array(raw["images"], "images")):
        fields = reader.fields(item, f"images[{i}]", ("id", "refs", "labels", "digest"))
        digests.append(reader.string(fields.pop("digest"), f"images[{i}].digest", _IMAGE_ID,
                                     "sha256: and 64 hex digits"))
        image = reader.image(fields, f"images[{i}]")
        images.append(ImageRecord(id=image.id, refs=image.refs, labels=image.labels))
    duration = raw["duration"]
    if type(duration) not in (int, float) or not 0 <= duration < 1e9:
        reader.fail("duration", "expected a number of seconds")
    return Entry(artifact=reader.string(raw["artifact"], "artifact"),
                 key=reader.string(raw["key"], "key", record.HEX64, "64 hex digits"),
                 files=files, images=tuple(images), digests=tuple(digests), duration=float(duration))


class RemoteCache:
    """An ``ArtifactCache`` in a registry repository (see the module docstring).

    ``warn`` hears each problem once, as a line for the user; ``check`` says what is wrong
    with an entry's outputs for an artifact of this manifest (paths of another kind, image
    references it would not have), so an entry can never publish what its artifact could not.
    """

    def __init__(self, client: Client, *, release_dir: Path, engine: ContainerEngine | None, mode: Mode = "readwrite",
                 required: bool = False, warn: Callable[[str], None] | None = None,
                 check: Callable[[str, ArtifactOutput], list[str]] | None = None) -> None:
        self.client, self.release_dir, self.engine = client, release_dir, engine
        self.mode, self.required = mode, required
        self.warn = warn or (lambda text: None)
        self.check = check or (lambda artifact, output: [])
        self.name = str(client.repository)
        self.down: str | None = None  # why this run stopped asking the registry
        self._entries: dict[tuple[str, str], Entry] = {}
        self._lock = threading.Lock()
        self.bytes_down = self.bytes_up = 0  # moved through this cache (files; images go through the engine)
        self._uploads: ThreadPoolExecutor | None = None  # stores run here, overlapping later builds
        self._pending: list[Future[None]] = []

    # -- problems -------------------------------------------------------------------------

    def _unusable(self, error: RegistryError, what: str) -> str:
        """After an unreachable registry or refused credentials: stop asking it (once, said
        once); a required cache raises instead."""
        message = f"remote cache {self.name}: {what}: {error.message}"
        if self.required:
            raise CacheUnavailable(message, hint=error.hint or "check the registry and the --cache reference")
        if error.problem in ("unreachable", "denied"):
            with self._lock:
                first, self.down = self.down is None, self.down or error.message
            if first:
                self.warn(f"warning: {message}; building locally without it"
                          + (f" (hint: {error.hint})" if error.hint else ""))
        else:
            self.warn(f"warning: {message}")
        return message

    # -- ArtifactCache --------------------------------------------------------------------

    def lookup(self, artifact: str, key: str) -> Found:
        if self.down is not None:
            return Found(None, f"remote cache {self.name} not used: {self.down}")
        try:
            got = self.client.get_manifest(key)
            if got is None:
                return Found(None, f"not in the remote cache {self.name}")
            manifest, digest = got
            entry = self._entry(manifest, f"{self.name}@{digest}")
        except RegistryError as e:
            return Found(None, self._unusable(e, f"looking up {artifact}"))
        except ReleaseRecordError as e:
            self.warn(f"warning: remote cache entry for {artifact} ignored: {e.message}")
            return Found(None, f"remote cache entry unreadable: {e.message}")
        problems = [] if (entry.artifact, entry.key) == (artifact, key) else \
            [f"it is the entry of {entry.artifact} under key {entry.key[:12]}"]
        output = ArtifactOutput(files=entry.files, images=entry.images)
        problems += self.check(artifact, output)
        if entry.images and self.engine is None:
            return Found(None, "the remote entry has images and there is no Docker engine to pull them into")
        if problems:
            self.warn(f"warning: remote cache entry {self.name}@{digest[:19]} for {artifact} refused: "
                      + "; ".join(problems))
            return Found(None, "remote cache entry refused: " + "; ".join(problems))
        with self._lock:
            self._entries[(artifact, key)] = entry
        return Found(output, f"in the remote cache {self.name}", f"{self.name}@{digest}")

    def _entry(self, manifest: bytes, where: str) -> Entry:
        """The entry a manifest names, its config blob checked against its digest, and its
        layers exactly its files."""
        document = record.load_json(manifest, where, "")
        config = document.get("config") if isinstance(document, dict) else None
        layers = document.get("layers") if isinstance(document, dict) else None
        if not isinstance(config, dict) or config.get("mediaType") != ENTRY_TYPE or not isinstance(layers, list):
            raise ReleaseRecordError(f"{where}: not a release-orchestrator cache entry")
        size = config.get("size")
        if not isinstance(size, int) or not 0 < size <= MAX_ENTRY_BYTES or not isinstance(config.get("digest"), str):
            raise ReleaseRecordError(f"{where}: config: expected a digest and a size of at most {MAX_ENTRY_BYTES}")
        entry = parse_entry(self.client.get_small_blob(config["digest"], size), f"{where} (entry)")
        listed = [(layer.get("digest"), layer.get("size")) for layer in layers if isinstance(layer, dict)]
        if listed != [(f"sha256:{f.sha256}", f.size) for f in entry.files]:
            raise ReleaseRecordError(f"{where}: its layers are not the files its entry lists")
        return entry

    def restore(self, artifact: str, key: str, found: Found) -> ArtifactOutput:
        """Files into the release directory, images into the engine, each checked; Refused
        (after a warning) when anything differs from the entry, with nothing published
        that did not match."""
        with self._lock:
            entry = self._entries.get((artifact, key))
        if entry is None:
            raise Refused(f"{artifact}: no entry looked up")
        written: list[FileRecord] = []
        try:
            for file in entry.files:
                self._restore_file(file)
                written.append(file)
            for image, digest in zip(entry.images, entry.digests, strict=True):
                self._restore_image(key, image, digest)
        except Interrupted:
            raise
        except (RegistryError, OrchestratorError, Refused, UnsafePath, OSError) as e:
            for file in written:  # a restore that did not complete leaves none of its files
                with contextlib.suppress(OSError):
                    (self.release_dir / file.path).unlink()
            if isinstance(e, RegistryError) and e.problem in ("unreachable", "denied"):
                reason = self._unusable(e, f"restoring {artifact}")
            else:
                reason = f"remote cache entry {found.where} for {artifact} refused: {e}"
                self.warn(f"warning: {reason}; building it instead")
            if self.required:
                raise CacheUnavailable(reason) from e
            raise Refused(reason) from e
        return ArtifactOutput(files=entry.files, images=entry.images)

    def _restore_file(self, file: FileRecord) -> None:
        digest = f"sha256:{file.sha256}"
        counted = _Counted(self.client.blob_chunks(digest, file.size))
        self.release_dir.mkdir(parents=True, exist_ok=True)
        written = write_file(self.release_dir, file.path, iter(counted), mode=file.mode)
        with self._lock:
            self.bytes_down += counted.total
        if (written.sha256, written.size) != (file.sha256, file.size):  # blob_chunks checked it; belt and braces
            raise Refused(f"{file.path} was restored as {written.sha256} ({written.size} bytes)")

    def _restore_image(self, key: str, image: ImageRecord, digest: str) -> None:
        assert self.engine is not None
        pulled = self.engine.pull(f"{self.name}@{digest}", log=lambda line: None)
        if pulled != image.id:
            raise Refused(f"image {self.name}@{digest[:19]} has id {pulled[:19]}, the entry records {image.id[:19]}")
        if self.engine.image_labels(pulled).get(KEY_LABEL) != key:
            raise Refused(f"image {pulled[:19]} does not carry the cache key label")
        for ref in image.refs:
            self.engine.tag(pulled, ref)

    def store(self, artifact: str, key: str, output: ArtifactOutput, duration: float = 0.0) -> None:
        """Upload the files, push the images, then write the entry (last: see the module docstring).

        In the background, overlapping the builds that follow (``finish`` waits for it), unless
        the cache is required: then a store that fails must fail its artifact, so it is done
        here and now."""
        if self.mode != "readwrite" or self.down is not None:
            return
        if self.required:
            self._store(artifact, key, output, duration)
            return
        with self._lock:
            if self._uploads is None:
                self._uploads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cache-store")
            self._pending.append(self._uploads.submit(self._store, artifact, key, output, duration))

    def finish(self, *, cancel: bool = False) -> None:
        """Wait for the stores under way (each has said what went wrong itself); ``cancel``:
        start no more of them (a stopped run), finishing only those already sending."""
        with self._lock:
            uploads, pending, self._uploads, self._pending = self._uploads, self._pending, None, []
        if uploads is None:
            return
        uploads.shutdown(wait=True, cancel_futures=cancel)
        for future in pending:
            if not future.cancelled() and future.exception() is not None and not cancel:
                self.warn(f"warning: remote cache {self.name}: a store failed: {future.exception()}")

    def _store(self, artifact: str, key: str, output: ArtifactOutput, duration: float) -> None:
        if self.down is not None:
            return
        try:
            for file in output.files:
                if self.client.put_blob(f"sha256:{file.sha256}", self.release_dir / file.path, file.size):
                    with self._lock:
                        self.bytes_up += file.size
            digests = tuple(self._push_image(key, image) for image in output.images)
            entry = Entry(artifact=artifact, key=key, files=output.files, images=output.images, digests=digests,
                          duration=duration)
            self._put(key, ENTRY_TYPE, json_bytes(entry_document(entry)),
                      [{"mediaType": FILE_TYPE, "digest": f"sha256:{f.sha256}", "size": f.size,
                        "annotations": {"org.opencontainers.image.title": f.path}} for f in output.files])
        except RegistryError as e:
            self._unusable(e, f"storing {artifact}")
        except Interrupted:
            raise
        except OrchestratorError as e:  # the engine's push
            if self.required:
                raise CacheUnavailable(f"remote cache {self.name}: storing {artifact}: {e}") from e
            self.warn(f"warning: remote cache {self.name}: storing {artifact} failed: {e}")

    def _push_image(self, key: str, image: ImageRecord) -> str:
        assert self.engine is not None
        ref = f"{self.name}:{key}-{image.id.removeprefix('sha256:')[:16]}"
        self.engine.tag(image.id, ref)
        try:
            return self.engine.push(ref, log=lambda line: None)
        finally:
            self.engine.untag(ref)  # the engine keeps the release's own references

    def _put(self, tag: str, config_type: str, config: bytes, layers: list[dict[str, Any]]) -> str:
        digest = sha256_digest(config)
        self.client.put_blob(digest, config, len(config))
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": config_type, "digest": digest, "size": len(config)}, "layers": layers}
        return self.client.put_manifest(tag, json_bytes(manifest))

    def forget(self, artifact: str) -> None:
        """A shared entry is never deleted: other machines may be restoring it."""

    # -- timings, for balancing shards ----------------------------------------------------

    def timings(self) -> dict[str, float]:
        """Build seconds per artifact name as the last assemble (or full build) stored them;
        empty when there are none or they cannot be read."""
        if self.down is not None:
            return {}
        try:
            got = self.client.get_manifest(TIMINGS_TAG)
            if got is None:
                return {}
            document = json.loads(got[0])
            config = document["config"]
            if config["mediaType"] != TIMINGS_TYPE or not 0 < config["size"] <= MAX_ENTRY_BYTES:
                return {}
            data = json.loads(self.client.get_small_blob(config["digest"], config["size"]))
        except RegistryError as e:
            self._unusable(e, "reading the timings")
            return {}
        except (ValueError, KeyError, TypeError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): float(v) for k, v in data.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1e9}

    def store_timings(self, durations: Mapping[str, float]) -> None:
        """Merge ``durations`` into the stored timings (readwrite only)."""
        if self.mode != "readwrite" or self.down is not None or not durations:
            return
        merged = {**self.timings(), **{k: round(v, 3) for k, v in durations.items()}}
        try:
            self._put(TIMINGS_TAG, TIMINGS_TYPE, json_bytes(dict(sorted(merged.items()))), [])
        except RegistryError as e:
            self._unusable(e, "storing the timings")

    def entry(self, artifact: str, key: str) -> Entry | None:
        """The entry a successful lookup found (its build duration, its digests)."""
        with self._lock:
            return self._entries.get((artifact, key))


class _Counted:
    """Counts the bytes of a stream as it is read."""

    def __init__(self, chunks: Any) -> None:
        self.chunks, self.total = chunks, 0

    def __iter__(self) -> Any:
        for chunk in self.chunks:
            self.total += len(chunk)
            yield chunk
