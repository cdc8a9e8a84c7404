"""Tab completion for the `orchestrator` script: tasks, flags, and the manifest's names.

The shell scripts (``orchestrator --print-completion-script bash|zsh|fish``) pass the
words typed so far; the shell filters what is printed here by the word being typed.
Printing nothing lets the shell complete file names (after --manifest, say).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from invoke.parser.context import ParserContext


def candidates(words: Sequence[str], contexts: Mapping[str, ParserContext], core_flags: Iterable[str]) -> list[str]:
    """What may come at the last of ``words`` (the words after the program name)."""
    context: ParserContext | None = None
    for word in words:
        if word in contexts:
            context = contexts[word]
    last = words[-1] if words else ""
    before = words[-2] if len(words) > 1 else ""
    if context is not None and _wants_value(context, last):
        return []  # `--manifest` typed in full: its value (a file) comes next
    if last.startswith("-"):
        flags = list(context.flags) if context is not None else list(core_flags)
        # A positional (build's names) is a flag to invoke's parser, never one to type.
        positional = {f"--{arg.name}" for arg in context.positional_args} if context is not None else set()
        return sorted(flag for flag in flags if (flag.startswith("--") or last == "-") and flag not in positional)
    if context is not None and _wants_value(context, before):
        return []  # a flag's value: files for --manifest and the like
    found = list(contexts)
    if context is not None and "names" in context.args:
        found += _names(words)
    return found


def _wants_value(context: ParserContext, word: str) -> bool:
    flag = word.partition("=")[0]
    return word.startswith("-") and "=" not in word and flag in context.flags and context.flags[flag].takes_value \
        and not context.flags[flag].optional


def _names(words: Sequence[str]) -> list[str]:
    """Repo and artifact names of the manifest the command line (or the settings) names."""
    manifest = None
    for i, word in enumerate(words):
        if word in ("--manifest", "-m") and i + 1 < len(words):
            manifest = words[i + 1]
        elif word.startswith("--manifest="):
            manifest = word.partition("=")[2]
    try:
        from orchestrator.manifest import load
        from orchestrator.settings import load_settings

        path = Path(manifest) if manifest else load_settings().manifest
        loaded = load(path)
    except Exception:  # noqa: BLE001 - completion never fails loudly; no names is the answer
        return []
    return sorted({*loaded.repos, *loaded.artifacts})
