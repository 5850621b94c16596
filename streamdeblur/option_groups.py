"""Click option groups: several commands share lists of options (engine, output, train, eval)."""

from __future__ import annotations

from typing import Callable


def apply_options(fn: Callable, options: list[Callable]) -> Callable:
    """`fn` decorated with every click option of `options`; applied last-first, because click
    lists the decorator nearest the function first, so --help shows them in list order."""
    for option in reversed(options):
        fn = option(fn)
    return fn
