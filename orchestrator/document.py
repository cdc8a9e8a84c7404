"""YAML text -> plain Python values, remembering where every value came from.

PyYAML's constructors forget positions and silently accept duplicate keys, so the
manifest is *composed* into nodes and converted here by hand: every value keeps its
``line:column``, duplicate keys are refused, and only the plain YAML types are
accepted (no ``!!python/...`` or custom tags). YAML 1.1 resolution is kept on
purpose (``3.10`` is a float, ``0755`` an int, ``yes`` a bool) so that the
validator can see the trap and say how to quote it, instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from orchestrator.errors import ManifestError
from orchestrator.gitinput import shown

Path_ = tuple[str | int, ...]

_PLAIN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
}
# Values reached again through an alias: a manifest needs few, an alias bomb
# ("billion laughs") needs billions.
_MAX_ALIAS_VALUES = 100_000
# Nesting levels of mappings and lists. A manifest needs 6 (repos.x.artifacts.y.env.K);
# the converter below recurses once per level, so 500 levels deep would end in a
# RecursionError instead of a message.
MAX_DEPTH = 64
# YAML 1.1 reads digits, colons and dashes as numbers and dates. Constructing one
# thousands of characters long costs quadratic time (``1:2:3...`` is base 60) or
# fails; no setting is a number that long, so it is refused before it is built.
_MAX_NUMBER_CHARS = 64
_NUMERIC_TAGS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"}


_TOO_DEEP = (f"values nested more than {MAX_DEPTH} levels deep",
             "a manifest needs about 6 levels; look for an unclosed '[' or '{' or runaway indentation")


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's pure-Python composer, which recurses once per nesting level, stopped
    at MAX_DEPTH before Python's recursion limit."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 1:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(None, None, _TOO_DEEP[0], mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _choose_loader() -> type:
    # libyaml's composer is C and several times faster on large manifests; from 0.2.5
    # on, libyaml itself stops at 1,000 levels, so the C recursion stays bounded.
    # Without it (or with an older one), the bounded pure-Python composer is used.
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is not None and getattr(yaml, "__with_libyaml__", False):
        from yaml import _yaml

        if tuple(_yaml.get_version()) >= (0, 2, 5):
            return loader  # type: ignore[no-any-return]
    return _BoundedLoader


def _quick(loader: type) -> type:
    """``loader`` with a shortcut through tag resolution.

    The composer asks the (pure-Python) resolver about every node. A plain scalar whose
    first character starts no implicit resolver (most keys and values: ``url``,
    ``repo00042``, ``make build``) is a string whatever follows; others go the usual
    way. Path resolvers, which would make it depend on more, are refused here."""
    resolvers = loader.yaml_implicit_resolvers  # type: ignore[attr-defined]
    if loader.yaml_path_resolvers or None in resolvers:  # type: ignore[attr-defined]
        return loader  # a wildcard resolver looks at every value
    first = frozenset(key for key in resolvers if key)

    class Quick(loader):  # type: ignore[misc]
        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is _SCALAR and implicit[0] and value and value[0] not in first:
                return _STR
            return super().resolve(kind, value, implicit)

        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            pass  # no path resolvers: nothing to track

        def ascend_resolver(self) -> None:
            pass

    return Quick


_Loader = _quick(_choose_loader())
_SCALAR = yaml.ScalarNode
_STR = "tag:yaml.org,2002:str"


@dataclass(frozen=True, slots=True)
class Pos:
    """A 1-based position in the manifest file."""

    line: int
    column: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """A parsed manifest: its value tree plus where each value (and key) sits."""

    file: str
    root: Any
    # path -> YAML mark (0-based line and column) of the value, and of the mapping key
    # naming it: kept as the composer made them, and turned into a Pos only for a
    # message (a 5,000-repo manifest has a quarter of a million of them).
    positions: dict[Path_, Any]
    key_positions: dict[Path_, Any]
    raw: dict[Path_, str]  # path -> original text of a scalar that YAML resolved to a non-string

    def pos(self, path: Path_) -> Pos | None:
        """Where the value at ``path`` (or the nearest parent that exists) starts."""
        while True:
            if path in self.positions:
                return _mark_pos(self.positions[path])
            if not path:
                return None
            path = path[:-1]

    def key_pos(self, path: Path_) -> Pos | None:
        """Where the key that names ``path`` starts (falls back to the value)."""
        mark = self.key_positions.get(path)
        return _mark_pos(mark) if mark is not None else self.pos(path)

    def error(self, path: Path_, problem: str, *, hint: str | None = None, at_key: bool = False) -> ManifestError:
        """A ManifestError located at ``path``."""
        where = self.key_pos(path) if at_key else self.pos(path)
        return ManifestError(
            problem,
            file=self.file,
            line=where.line if where else None,
            column=where.column if where else None,
            path=format_path(path),
            hint=hint,
        )


def format_path(path: Path_) -> str:
    """``('repos', 'felix', 'outputs', 0)`` -> ``repos.felix.outputs[0]``; a key with
    white space, quotes or brackets is shown quoted (``env['ARCH\\n']``), so that a
    message stays on one line and says exactly which key."""
    text = ""
    if len(path) > 12:  # too deep to read: the way in, and how deep it went
        return format_path(path[:8]) + f"...({len(path)} levels)"
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _plain_key(part):
            text += f"[{shown(part)}]"
        elif text:
            text += f".{part}"
        else:
            text = part
    return text


def _plain_key(key: str) -> bool:
    return bool(key) and key.isprintable() and key == key.strip() and not any(c in key for c in "'\"[]")


def _mark_pos(mark: Any) -> Pos:
    return Pos(mark.line + 1, mark.column + 1)


def compose(text: str, file: str, *, loader: type | None = None) -> yaml.Node | None:
    """YAML ``text`` -> its node tree (None when empty), or a located ManifestError.

    Nesting is bounded (by libyaml, or by the pure-Python ``loader``): whatever the
    input, this never ends in a RecursionError. ``parse`` enforces MAX_DEPTH itself.
    """
    try:
        return yaml.compose(text, Loader=loader or _Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = " ".join(x for x in (e.context, e.problem) if x) or "invalid YAML"
        hint = "check indentation and quoting near this position"
        if "nesting depth" in problem or "levels deep" in problem:  # libyaml's limit, or _BoundedLoader's
            problem, hint = _TOO_DEEP
        raise ManifestError(
            problem if problem == _TOO_DEEP[0] else f"invalid YAML: {problem}",
            file=file,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
            hint=hint,
        ) from e
    except yaml.reader.ReaderError as e:  # a character YAML does not allow, e.g. a control character
        pos = _position(text, e.position)
        char = e.character if isinstance(e.character, int) else ord(str(e.character)[:1] or "\0")
        raise ManifestError(
            f"invalid YAML: character U+{char:04X} is not allowed", file=file, line=pos.line,
            column=pos.column, hint="remove it; write escapes like \\t inside double quotes",
        ) from e
    except yaml.YAMLError as e:
        raise ManifestError(f"invalid YAML: {e}", file=file) from e


def _position(text: str, index: int) -> Pos:
    """The line:column of character ``index`` of ``text``."""
    index = max(0, min(index, len(text)))
    return Pos(text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1)


def parse(text: str, file: str, *, loader: type | None = None) -> Document:
    """Parse YAML ``text`` (read from ``file``) into a located :class:`Document`.

    ``loader`` chooses the YAML loader (tests use it to cover the pure-Python one).
    An empty text is an error: a manifest cannot be empty.
    """
    document = parse_optional(text, file, loader=loader)
    if document is None:
        raise ManifestError(
            "the manifest is empty",
            file=file,
            line=1,
            column=1,
            hint="start from the example in README.md (schema: 1, release, repos)",
        )
    return document


def parse_optional(text: str, file: str, *, loader: type | None = None) -> Document | None:
    """Like ``parse``, but an empty text (or only comments) gives ``None``."""
    node = compose(text, file, loader=loader)
    # Without an anchor ('&') there is no alias: no node can be reached twice or contain
    # itself, and the bookkeeping that catches alias bombs and cycles can be skipped.
    return None if node is None else _Converter(file, aliases="&" in text).document(node)


class _Converter:
    def __init__(self, file: str, *, aliases: bool = True) -> None:
        self.file = file
        self.aliases = aliases
        self.positions: dict[Path_, Any] = {}
        self.key_positions: dict[Path_, Any] = {}
        self.raw: dict[Path_, str] = {}
        self.constructor = yaml.constructor.SafeConstructor()
        self.active: set[int] = set()
        self.seen: set[int] = set()
        self.alias_values = 0

    def document(self, node: yaml.Node) -> Document:
        root = self.convert(node, ())
        return Document(
            file=self.file,
            root=root,
            positions=self.positions,
            key_positions=self.key_positions,
            raw=self.raw,
        )

    def fail(self, node: yaml.Node, path: Path_, problem: str, hint: str | None = None) -> ManifestError:
        pos = _mark_pos(node.start_mark)
        return ManifestError(
            problem, file=self.file, line=pos.line, column=pos.column, path=format_path(path), hint=hint
        )

    def convert(self, node: yaml.Node, path: Path_) -> Any:
        ident = id(node)
        if self.aliases:
            if self.alias_values or ident in self.seen:
                self.alias_values += 1
                if self.alias_values > _MAX_ALIAS_VALUES:
                    raise self.fail(node, path, "aliases expand to too many values (an alias bomb?)")
            self.seen.add(ident)
            if ident in self.active:
                raise self.fail(node, path, "a recursive alias refers to itself")
        self.positions[path] = node.start_mark
        if node.__class__ is _SCALAR:
            if node.tag == _STR and "\x00" not in node.value:  # the common case, without a call
                return node.value
            return self.scalar(node, path)
        if len(path) >= MAX_DEPTH:
            raise self.fail(node, path, *_TOO_DEEP)
        if self.aliases:
            self.active.add(ident)
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != "tag:yaml.org,2002:seq":
                    raise self.fail(node, path, f"unsupported YAML tag {node.tag!r}", "remove the tag")
                return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, yaml.ScalarNode):  # a subclass of ScalarNode: not the fast path
                return self.scalar(node, path)
            assert isinstance(node, yaml.MappingNode)
            if node.tag != "tag:yaml.org,2002:map":
                raise self.fail(node, path, f"unsupported YAML tag {node.tag!r}", "remove the tag")
            return self.mapping(node, path)
        finally:
            self.active.discard(ident)

    def mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise self.fail(key_node, path, "merge keys ('<<') are not supported", "write the keys out")
            if not (isinstance(key_node, yaml.ScalarNode) and key_node.tag == _STR):
                shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a collection"
                raise self.fail(
                    key_node, path, f"keys must be strings, got {shown!r}", "quote the key"
                )
            key = key_node.value
            child = (*path, key)
            if "\x00" in key:
                raise self.fail(key_node, path, f"key {key!r} contains a NUL character", "remove it")
            if key in result:
                first = _mark_pos(self.key_positions[child])
                raise self.fail(
                    key_node,
                    child,
                    f"duplicate key {key!r} (first defined at line {first.line})",
                    "remove one of them; YAML would silently keep only the last",
                )
            self.key_positions[child] = key_node.start_mark
            result[key] = self.convert(value_node, child)
        return result

    def scalar(self, node: yaml.ScalarNode, path: Path_) -> Any:
        tag = node.tag
        if tag not in _PLAIN_TAGS:
            raise self.fail(node, path, f"unsupported YAML tag {tag!r}", "remove the tag or quote the value")
        if tag == "tag:yaml.org,2002:str":
            if "\x00" in node.value:
                raise self.fail(node, path, "the string contains a NUL character", "no file name, command or "
                                "environment value can hold one; remove it")
            return node.value
        self.raw[path] = node.value
        kind = tag.rsplit(":", 1)[-1]
        if tag in _NUMERIC_TAGS and len(node.value) > _MAX_NUMBER_CHARS:
            raise self.fail(node, path, f"YAML reads this {len(node.value)}-character value as a {kind}",
                            "quote it if it is meant as a string")
        try:
            return self.constructor.construct_object(node, deep=True)
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError, yaml.YAMLError) as e:
            # A scalar that looks like a number or date but is none (2018-13-45), or
            # a wrong explicit tag (!!int abc).
            raise self.fail(node, path, f"{shown(node.value)} is not a valid {kind}",
                            "quote it if it is meant as a string") from e
