"""How our command lines parse, for both `invoke` and the `orchestrator` script.

invoke's parser knows flags and one value per positional argument. Three things are
added here, on invoke 3.0's extension points (pinned: invoke>=3.0,<3.1; see
tests/test_cli_parsing.py):

- ``names`` is optional (``build --all``; ``build`` alone is refused by the task with
  both forms shown), and may be given space-separated (``build felix calicoctl``):
  ``normalize`` joins the bare words after a task into one comma-separated value
  before invoke's parser sees them, knowing which flags take a value;
- one table of short flags for every task (``-m`` is ``--manifest`` everywhere) instead
  of invoke's first-letter guesses, and value placeholders in help (``--jobs=N``);
- usage errors that say what to do: unknown flags and task names get a did-you-mean,
  a stray word says how to give several names.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from invoke.collection import Collection
from invoke.parser.argument import Argument
from invoke.parser.context import ParserContext, to_flag
from invoke.tasks import Task

# One meaning per short flag, whatever the task.
SHORT_FLAGS = {
    "all": "a",
    "dry-run": "n",
    "jobs": "j",
    "keep-going": "k",
    "manifest": "m",
    "quiet": "q",
    "registry": "r",
    "verbose": "v",
    "workspace": "w",
}
PLACEHOLDERS = {
    "cache": "REGISTRY/REPOSITORY",
    "cache-dir": "DIR",
    "cache-mode": "read|readwrite",
    "shard": "K/N",
    "shard-deps": "wait|build",
    "help": "TASK",
    "print-completion-script": "SHELL",
    "force": "NAMES",
    "jobs": "N",
    "manifest": "PATH",
    "mirror": "FROM=TO",
    "progress": "auto|tty|plain",
    "registry": "HOST[:PORT]/",
    "release-dir": "DIR",
    "retries": "N",
    "sign-key": "PATH",
    "key": "PATH",
    "skip": "CHECKS",
    "timeout": "SECONDS",
    "unused-for": "DAYS",
    "workspace": "DIR",
}


def placeholder_of(arg: Argument) -> str:
    """``N`` for --jobs: keyed by the flag's spelling (an argument's name is the
    parameter's, ``cache_dir``, for --cache-dir)."""
    return PLACEHOLDERS.get(str(arg.name).replace("_", "-"), "VALUE")


class UsageError(Exception):
    """A malformed command line; ``str()`` is the whole message (exit code 2)."""


class OrchestratorTask(Task[Any]):
    """A task with our short flags instead of invoke's first-letter guesses."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["auto_shortflags"] = False
        super().__init__(*args, **kwargs)

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts: dict[str, Any] = super().arg_opts(name, default, taken_names)
        short = SHORT_FLAGS.get(opts["names"][0])
        if short and short not in taken_names:
            opts["names"] = [*opts["names"], short]
        return opts


class OrchestratorContext(ParserContext):
    """A task's parser context that shows value placeholders (``--jobs=N``) in help."""

    def help_for(self, flag: str) -> tuple[str, str]:
        names, text = super().help_for(flag)
        arg = self.flags[flag]
        placeholder = placeholder_of(arg)
        if arg.kind is list:  # invoke shows no value for repeatable flags
            names = ", ".join(f"{name}={placeholder}" if name.startswith("--") else f"{name} {placeholder}"
                              for name in names.split(", "))
            text = f"{text} (repeatable)" if text else "(repeatable)"
        elif arg.takes_value:
            for generic in ("=STRING", " STRING", "[STRING]"):
                names = names.replace(generic, generic.replace("STRING", placeholder))
        return names, text


class OrchestratorCollection(Collection):
    """A collection whose parser contexts are OrchestratorContexts."""

    def to_contexts(self, ignore_unknown_help: bool | None = None) -> list[ParserContext]:
        return [
            OrchestratorContext(name=primary, aliases=aliases,
                                args=self[primary].get_arguments(ignore_unknown_help=ignore_unknown_help))
            for primary, aliases in self.task_names.items()
        ]


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def normalize(tokens: Sequence[str], contexts: Mapping[str, ParserContext], core_flags: Iterable[str],
              program: str) -> list[str]:
    """Check ``tokens`` (the words after the program's own options) and join space-separated
    names into one comma-separated value, so invoke's parser sees one positional.

    Raises UsageError for an unknown task or flag, a stray word after a task without names,
    or a flag missing its value; the message says what to do.
    """
    core = set(core_flags)
    out: list[str] = []
    context: ParserContext | None = None
    names_at: int | None = None  # index in ``out`` of the current task's names value
    everything = False  # --all seen in the current task
    pending: Argument | None = None  # a flag waiting for its value
    optional_value = ""  # the previous token was this flag, whose value is optional
    words = list(tokens)
    context_at = 0  # index in ``out`` of the current task's name

    def close_context() -> None:
        # A task that takes names but got none is given "" (the task then says what it
        # needs): invoke's parser requires every positional argument.
        if context is not None and "names" in context.args and names_at is None:
            out.insert(context_at + 1, "")

    for position, token in enumerate(words):
        if pending is not None:
            out.append(token)
            pending = None
            continue
        if token == "--":
            close_context()
            out.extend(words[position:])
            context = None
            break
        after_optional, optional_value = optional_value, ""
        if token.startswith("-") and token != "-":
            flag, has_value, _ = token.partition("=")
            found = _flags(context, flag)
            if found is None and flag in core:
                out.append(token)
                continue
            if found is None:
                where = f"for {program} {context.name}" if context is not None else f"for {program}"
                known = list(context.flags) if context is not None else []
                hint = _suggest(flag, [*known, *core])
                if not hint and context is not None:
                    hint = f"; `{program} --help {context.name}` lists them"
                raise UsageError(f"unknown flag {flag!r} {where}{hint}")
            arg, attached = found
            if "all" in arg.names:  # its name is the parameter's, all_
                everything = True
            if arg.takes_value and not has_value and not attached:
                if arg.optional:
                    optional_value = flag
                elif position + 1 >= len(words):
                    raise UsageError(f"{flag} needs a value, e.g. {flag}={placeholder_of(arg)}")
                else:
                    pending = arg
            out.append(token)
            continue
        takes_names = context is not None and "names" in context.args
        if context is not None and takes_names and names_at is None and not everything and token not in contexts:
            if after_optional:  # `build --force felix`: invoke's parser would only say "ambiguous"
                raise UsageError(
                    f"{token!r} after {after_optional} could be a name or {after_optional}'s value; write "
                    f"`{program} {context.name} {token} {after_optional}` or `{after_optional}={token}` with the names")
            # Right after the task name: invoke's parser refuses a value of an optional-value
            # flag (`--force=felix`) while the positional names are still missing.
            out.insert(context_at + 1, token)
            names_at = context_at + 1
        elif token in contexts:
            close_context()
            context, names_at, everything = contexts[token], None, False
            out.append(token)
            context_at = len(out) - 1
        elif context is not None and after_optional:
            out.append(token)  # the optional flag's value (--force felix), as invoke reads it
        elif context is not None and takes_names and names_at is not None:
            out[names_at] += "," + token
        elif context is not None and takes_names:  # after --all
            out.append(token)
            names_at = len(out) - 1
        elif context is not None:
            raise UsageError(f"{program} {context.name} takes no names, got {token!r}")
        else:
            raise UsageError(f"unknown task {token!r}{_suggest(token, contexts)}; `{program} --list` lists the tasks")
    close_context()
    return out


def _flags(context: ParserContext | None, flag: str) -> tuple[Argument, bool] | None:
    """The argument ``flag`` sets (the last one of a ``-kn`` cluster), and whether its
    value is attached (``-j4``); None when the context has no such flag."""
    if context is None:
        return None
    if (direct := _lookup(context, flag)) is not None:
        return direct, False
    if flag in context.inverse_flags and (inverse := _lookup(context, context.inverse_flags[flag])) is not None:
        return inverse, False
    if len(flag) > 2 and not flag.startswith("--"):
        first = _lookup(context, flag[:2])
        if first is not None and first.takes_value:
            return first, True  # -j4
        cluster = [_lookup(context, f"-{char}") for char in flag[1:]]
        last = cluster[-1]
        if last is not None and all(arg is not None and not arg.takes_value for arg in cluster):
            return last, False  # -kn
    return None


def _lookup(context: ParserContext, flag: str) -> Argument | None:
    # Lexicon.get() ignores aliases, and short flags are aliases: index instead.
    try:
        found: Argument = context.flags[flag]
    except KeyError:
        return None
    return found


def task_contexts(collection: Collection) -> dict[str, ParserContext]:
    """Task name -> its parser context."""
    return {str(ctx.name): ctx for ctx in collection.to_contexts()}


def flag_names(arg: Argument) -> list[str]:
    """``--jobs``, ``-j``: the command-line spellings of ``arg``."""
    return [to_flag(name) for name in arg.names]
