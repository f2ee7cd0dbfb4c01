"""The one contract every console script follows.

- Arguments are parsed and validated before any work starts: a bad value is a usage error, exit code 2,
  printed by argparse as `PROG: error: argument --flag: ...`.
- A failure while running is one line `error: <what> (<which input>): <what was expected>` on stderr and
  exit code 1; the traceback only with `--debug`.
- Heavy modules (torch, transformers, datasets) are imported inside the command body, after parsing, so
  `--help` and usage errors answer at once.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

USAGE_ERROR = 2
RUNTIME_ERROR = 1
# Library errors that are the user's input or environment, not a bug: shown as one line without --debug.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    OSError,
    RuntimeError,
    KeyError,
    ImportError,
)


def is_expected_error(error: BaseException) -> bool:
    """An `EXPECTED_ERRORS` instance, or a config's `@strict` validation failure (huggingface_hub's
    `StrictDataclassError`: its module is loaded whenever one was raised, so it is not imported here)."""
    if isinstance(error, EXPECTED_ERRORS):
        return True
    errors = sys.modules.get("huggingface_hub.errors")
    return errors is not None and isinstance(error, errors.StrictDataclassError)


def error_line(error: BaseException) -> str:
    """The one `error: ...` line: a `@strict` config failure shows its cause (the config's own message)."""
    if isinstance(error, EXPECTED_ERRORS) or error.__cause__ is None:
        return f"error: {error}"
    return f"error: {error.__cause__}"


class UsageError(ValueError):
    """A flag or argument combination the command cannot run with (exit code 2)."""


def positive(kind: type = int, allow_zero: bool = False) -> Callable[[str], float | int]:
    """An argparse `type=` that accepts a positive (or non-negative) number of `kind`."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number ({kind.__name__}), got {text!r}") from None
        if value < 0 or (value == 0 and not allow_zero):
            bound = "0 or more" if allow_zero else "a positive number"
            raise argparse.ArgumentTypeError(f"expected {bound}, got {text!r}")
        return value

    return parse


def add_common_flags(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """`--debug` (tracebacks) and `--log-level`, shared by every command."""
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="library log level (default %(default)s)",
    )
    return parser


class _StderrHandler(logging.StreamHandler):
    """A handler that writes to whatever `sys.stderr` is at emit time (pytest and notebooks swap it)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the property ignores it
        pass


def configure_logging(level: str = "warning") -> None:
    """Route vidtempo's library logging to stderr at `level` (transformers' logging is left as it is)."""
    logger = logging.getLogger("vidtempo")
    if not any(isinstance(handler, _StderrHandler) for handler in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level.upper())


def run_command(
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace], int | None],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse `argv` with `parser` (usage errors exit 2), run `body(args)`, and turn an expected library error
    into one `error:` line and exit code 1 (re-raised with `--debug`). Returns the exit code."""
    args = parser.parse_args(None if argv is None else list(argv))
    configure_logging(getattr(args, "log_level", "warning"))
    try:
        code = body(args)
    except UsageError as error:
        if getattr(args, "debug", False):
            raise
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except Exception as error:
        if not is_expected_error(error) or getattr(args, "debug", False):
            raise
        print(error_line(error), file=sys.stderr)
        return RUNTIME_ERROR
    return 0 if code is None else int(code)
