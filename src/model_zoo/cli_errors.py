"""The error path both command-line tools share.

- An expected failure (bad input, config value, unwritable output, disk full) is one line
  ``error: <where>: <what>`` on stderr and exit status 2 (:func:`expected_errors`), cut
  to :data:`MAX_LINE` characters (:func:`error_line`).
- An unexpected exception is a bug: one line saying so, with the exception's type and
  message and where to report it, and exit status 1 (:func:`reporting_group`, the typer
  group class of both apps). ``OBSERVE_EAGER_DEBUG=1`` lets the traceback through instead.
- typer's own usage errors (a missing option, a bad value for an option's type) stay as
  typer prints them (exit status 2).
- Output piped into a reader that stops early (``observe-r1 ladder --help | head``) ends
  quietly with exit status 1, as click ends a command whose standard output has gone.
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from typer.core import TyperGroup
from typer.exceptions import Abort, Exit, TyperException

DEBUG_ENV = "OBSERVE_EAGER_DEBUG"
REPORT_TO = "the project's issue tracker"
MAX_LINE = 2_000  # characters of an error line: a message quoting a huge value is cut

__all__ = [
    "DEBUG_ENV",
    "MAX_LINE",
    "REPORT_TO",
    "bug_line",
    "error_line",
    "expected_errors",
    "reporting_group",
]


def bug_line(tool: str, error: BaseException) -> str:
    """The one line printed for an unexpected exception in ``tool``."""
    message = str(error).strip().splitlines()
    what = _cut(f"{type(error).__name__}: {message[0]}" if message else type(error).__name__)
    return (
        f"internal error: {tool} failed with {what}. This is a bug: please report it with the "
        f"command and this message on {REPORT_TO} ({DEBUG_ENV}=1 shows the traceback)"
    )


def _cut(text: str) -> str:
    """``text`` cut to :data:`MAX_LINE` characters, saying how many it lost."""
    if len(text) <= MAX_LINE:
        return text
    return f"{text[:MAX_LINE]}... ({len(text) - MAX_LINE} characters cut)"


def _debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _stdout_is_broken() -> bool:
    """True when standard output is a pipe or socket whose reader has gone (so the broken
    pipe is the user's ``| head``, not some other pipe of the work)."""
    try:
        descriptor = sys.stdout.fileno()
    except (OSError, ValueError):  # not a file (captured output)
        return False
    poller = select.poll()
    poller.register(descriptor, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def reporting_group(tool: str) -> type[TyperGroup]:
    """A typer group class (``typer.Typer(cls=...)``) that turns an exception escaping a
    verb into :func:`bug_line` and exit status 1; typer's exits, aborts and usage errors, a
    broken standard output, and every exception when ``OBSERVE_EAGER_DEBUG`` is set, pass
    through."""

    class ReportingGroup(TyperGroup):
        def invoke(self, ctx):
            try:
                return super().invoke(ctx)
            except (Exit, Abort, TyperException):
                raise
            except BrokenPipeError as error:
                if _stdout_is_broken():
                    raise  # click's main ends quietly, exit status 1
                typer.echo(bug_line(tool, error), err=True)
                raise Exit(1) from None
            except Exception as error:
                if _debugging():
                    raise
                typer.echo(bug_line(tool, error), err=True)
                raise Exit(1) from None

    ReportingGroup.__name__ = ReportingGroup.__qualname__ = f"ReportingGroup[{tool}]"
    return ReportingGroup


def error_line(message: str) -> str:
    """``error: <message>`` on one line of at most :data:`MAX_LINE` characters."""
    return f"error: {_cut(' '.join(str(message).split(chr(10))))}"


@contextmanager
def expected_errors(*kinds: type[Exception]) -> Iterator[None]:
    """Turn an exception of ``kinds`` into ``error: <message>`` and an `OSError` met during
    the work (disk full, permissions) into ``error: <file>: <reason>``; exit status 2."""
    try:
        yield
    except kinds as error:
        typer.echo(error_line(str(error)), err=True)
        raise Exit(2) from None
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        typer.echo(error_line(f"{where}{error.strerror or error}"), err=True)
        raise Exit(2) from None
