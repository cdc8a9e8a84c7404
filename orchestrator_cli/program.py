"""The command-line programs: the `orchestrator` console script, and `invoke` in a checkout.

The console script shows and accepts only our own options (invoke's runner options such
as --pty, --sudo, --echo or --dry do nothing here): it parses with invoke's parser
against our task contexts, then calls the task bodies itself. `invoke` in a checkout
keeps invoke's program; ``adapt_invoke`` gives it the same parsing rules and errors.
Usage errors exit 2, like every other bad input.
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Sequence
from typing import Any

from invoke.config import Config
from invoke.context import Context
from invoke.exceptions import Exit, ParseError
from invoke.parser import Parser
from invoke.parser.argument import Argument
from invoke.parser.context import ParserContext
from invoke.program import Program

from orchestrator import __version__
from orchestrator.errors import EXIT_BAD_INPUT, EXIT_FAILED
from orchestrator_cli.parsing import OrchestratorContext, UsageError, normalize, task_contexts

NAME = "orchestrator"
SHELLS = ("bash", "zsh", "fish")


def _core() -> ParserContext:
    return OrchestratorContext(args=(
        Argument(names=("help", "h"), kind=str, optional=True,
                 help="Show this help, or one task's: --help build."),
        Argument(names=("list", "l"), kind=bool, default=False, help="List the tasks."),
        Argument(names=("version", "V"), kind=bool, default=False, help="Show the version."),
        Argument(names=("print-completion-script",), kind=str, default="",
                 help=f"Print the tab-completion script for {', '.join(SHELLS)} (source it in your shell)."),
        Argument(names=("complete",), kind=bool, default=False,
                 help="Print completion candidates for the words after `--` (used by the script)."),
    ))


def run(argv: Sequence[str] | None = None) -> int:
    """Run the console script on ``argv`` (default: sys.argv[1:]); returns the exit code."""
    from orchestrator_cli.tasks import namespace

    argv = list(sys.argv[1:] if argv is None else argv)
    core = _core()
    contexts = task_contexts(namespace)
    try:
        parsed = Parser(initial=core, ignore_unknown=True).parse_argv(argv)
        options, rest = parsed[0], parsed.unparsed
        if options.args.complete.value:
            from orchestrator_cli.completion import candidates

            words = parsed.remainder.split()
            sys.stdout.write("".join(f"{word}\n" for word in candidates(words[1:], contexts, core.flags)))
            return 0
        shell = options.args["print-completion-script"].value
        if shell:
            return _completion_script(shell)
        if options.args.version.value:
            sys.stdout.write(f"{NAME} {__version__}\n")
            return 0
        help_for = options.args.help.value
        if options.args.list.value or (not rest and not help_for):
            sys.stdout.write(_overview(contexts) if not options.args.list.value else _task_list(contexts))
            return 0
        if isinstance(help_for, str) and help_for:
            return _task_help(help_for, contexts)
        if help_for is True:
            sys.stdout.write(_overview(contexts))
            return 0
        tokens = normalize(rest, contexts, core.flags, NAME)
        # The parser deep-copies every context it is given: give it the tasks named only.
        named = [context for name, context in contexts.items() if name in tokens] or list(contexts.values())
        result = Parser(initial=core, contexts=named).parse_argv(tokens)
    except (UsageError, ParseError) as e:
        sys.stderr.write(f"error: {e}\n")
        return EXIT_BAD_INPUT
    late_help = result[0].args.help.value  # `orchestrator build --help`
    if late_help:
        return _task_help(late_help if isinstance(late_help, str) else str(result[1].name), contexts)
    config = Config(lazy=True)  # no invoke config files: our settings live in orchestrator.yaml
    for task_context in result[1:]:
        try:
            namespace[task_context.name](Context(config=config), **task_context.as_kwargs)
        except Exit as e:
            if e.message:
                sys.stderr.write(f"{e.message}\n")
            return int(e.code)
    return 0


def main() -> None:
    """Entry point of the `orchestrator` console script."""
    try:
        code = run()
    except Exception as e:  # a bug outside any task (parsing, help): one line and a crash log
        from orchestrator_cli import crash

        sys.stderr.write(crash.report(e) + "\n")
        code = EXIT_FAILED
    sys.exit(code)


def _completion_script(shell: str) -> int:
    from invoke.completion.complete import print_completion_script

    if shell not in SHELLS:
        sys.stderr.write(f"error: no completion script for {shell!r}; choose one of {', '.join(SHELLS)}\n")
        return EXIT_BAD_INPUT
    print_completion_script(shell, [NAME])
    return 0


def _columns(rows: Sequence[tuple[str, str]], indent: str = "  ") -> str:
    width = max((len(left) for left, _ in rows), default=0)
    return "".join(f"{indent}{left:<{width}}  {right}".rstrip() + "\n" for left, right in rows)


def _first_line(task: Any) -> str:
    doc = inspect.getdoc(task) or ""
    return doc.splitlines()[0] if doc else ""


def _task_list(contexts: dict[str, ParserContext]) -> str:
    from orchestrator_cli.tasks import namespace

    return "Tasks:\n" + _columns([(name, _first_line(namespace[name])) for name in contexts])


def _overview(contexts: dict[str, ParserContext]) -> str:
    options = _core().help_tuples()
    return (
        f"Usage: {NAME} [--help] [--version] [--list] TASK [OPTIONS] [NAMES...]\n\n"
        + _task_list(contexts)
        + "\nOptions:\n" + _columns([(flags, text or "") for flags, text in options])
        + f"\n`{NAME} --help TASK` shows a task's options; names are repos or artifacts of the manifest.\n"
    )


def _task_help(name: str, contexts: dict[str, ParserContext]) -> int:
    from orchestrator_cli.parsing import _suggest
    from orchestrator_cli.tasks import namespace

    if name not in contexts:
        sys.stderr.write(f"error: unknown task {name!r}{_suggest(name, contexts)}; `{NAME} --list` lists the tasks\n")
        return EXIT_BAD_INPUT
    context = contexts[name]
    names = " [NAMES...]" if "names" in context.args else ""
    doc = inspect.getdoc(namespace[name]) or ""
    rows = [(flags, text or "") for flags, text in context.help_tuples() if not flags.startswith("--names")]
    sys.stdout.write(f"Usage: {NAME} {name} [OPTIONS]{names}\n\n" + "".join(f"  {line}\n" for line in doc.splitlines())
                     + "\nOptions:\n" + _columns(rows))
    return 0


def adapt_invoke(program: Program) -> None:
    """Give `invoke` in a checkout our parsing rules (space-separated names, did-you-mean for
    flags and tasks) and exit code 2 for a malformed command line.

    invoke parses its own options before it loads tasks.py; what follows the first task
    name is parsed by ``program.parse_tasks``, which this wraps on the running program.
    """
    original = program.parse_tasks

    def parse_tasks(self: Program) -> None:
        contexts = task_contexts(self.collection)
        try:
            self.core.unparsed[:] = normalize(self.core.unparsed, contexts, self.initial_context.flags,
                                              (self.binary_names or ["invoke"])[0])
            original()
        except (UsageError, ParseError) as e:
            raise Exit(f"error: {e}", EXIT_BAD_INPUT) from None

    program.parse_tasks = types.MethodType(parse_tasks, program)  # type: ignore[method-assign]
