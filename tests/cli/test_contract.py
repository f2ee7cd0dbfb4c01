"""`cli/_contract.py`: exit codes, one error line, --debug, and logging that follows the current stderr."""

import argparse
import io
import logging
import sys

import pytest

from vidtempo.cli._contract import UsageError, add_common_flags, positive, run_command


def _parser():
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_argument("--n", type=positive(int), default=1)
    return add_common_flags(parser)


def test_exit_codes_and_one_error_line(capsys):
    def fails(args):
        raise FileNotFoundError("features (/nowhere): expected a descriptor folder")

    def misuse(args):
        raise UsageError("--n 3 needs --other")

    assert run_command(_parser(), lambda args: None, []) == 0
    assert run_command(_parser(), fails, []) == 1
    err = capsys.readouterr().err
    assert err == "error: features (/nowhere): expected a descriptor folder\n"
    assert run_command(_parser(), misuse, []) == 2
    assert "tool: error: --n 3 needs --other" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse's own usage error
        run_command(_parser(), lambda args: None, ["--n", "0"])
    assert exit_info.value.code == 2
    with pytest.raises(FileNotFoundError):
        run_command(_parser(), fails, ["--debug"])


def test_library_logging_reaches_the_stderr_of_each_call(monkeypatch):
    """The handler writes to the sys.stderr of the moment, not to the one of the first call."""
    first, second = io.StringIO(), io.StringIO()
    for stream in (first, second):
        monkeypatch.setattr(sys, "stderr", stream)
        run_command(_parser(), lambda args: logging.getLogger("vidtempo.x").warning("hello"), [])
    assert first.getvalue().count("hello") == 1 and second.getvalue().count("hello") == 1
