"""Invoke has no optional positional argument; this Task subclass adds one.

``invoke build felix`` and ``invoke build --all`` must both parse. Invoke's parser
treats a positional as missing while its value is None, and keeps eating tokens for
it. The argument below reports a value ("") once ``--all`` has been seen, so the
parser neither demands it nor swallows the next word. Relies on invoke 3.0's
``ParserContext.missing_positional_args`` (pinned: invoke>=3.0,<3.1; see
tests/test_cli_parsing.py).
"""

from __future__ import annotations

from typing import Any

from invoke.parser.argument import Argument
from invoke.tasks import Task


class _NamesArgument(Argument):
    all_flag: Argument | None = None

    @property
    def value(self) -> Any:
        if self._value is None and self.all_flag is not None and self.all_flag.value:
            return ""
        return self._value if self._value is not None else self.default

    @value.setter
    def value(self, arg: str) -> None:
        self.set_value(arg, cast=True)


class NamesOrAllTask(Task[Any]):
    """A task whose positional ``names`` is optional when ``--all`` is given."""

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        args: list[Argument] = super().get_arguments(ignore_unknown_help)
        by_name = {arg.names[0]: arg for arg in args}
        old, every = by_name["names"], by_name["all"]
        new = _NamesArgument(names=old.names, kind=old.kind, default=None, help=old.help, positional=True,
                             attr_name=old.attr_name)
        new.all_flag = every
        args[args.index(old)] = new
        return args
