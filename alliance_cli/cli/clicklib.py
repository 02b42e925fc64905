"""The click that typer runs on: vendored as ``typer._click`` since typer 0.28, else click.

Usage errors are matched by their class, never by name; this module finds the classes.
"""

from __future__ import annotations

try:  # typer >= 0.28 vendors click
    from typer._click import exceptions
    from typer._click.globals import get_current_context
except ImportError:  # older typer: the click package
    from click import exceptions  # type: ignore[no-redef,import-not-found,unused-ignore]
    from click.globals import get_current_context  # type: ignore[no-redef,import-not-found,unused-ignore]

ClickException = exceptions.ClickException
NoArgsIsHelpError = exceptions.NoArgsIsHelpError
UsageError = exceptions.UsageError

__all__ = ["ClickException", "NoArgsIsHelpError", "UsageError", "get_current_context"]
