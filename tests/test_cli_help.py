"""The command line as a user reads it: every option explained with its default, examples intact."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from splitattn.cli import COMMANDS, build_parser, main
from splitattn.data import DataError
from splitattn.errors import BAD_INPUT, DIVERGED, EXIT_STATUSES, SplitattnError, exit_status_of
from splitattn.training import TrainingDiverged


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


# Options whose default is not a value to type: the words their help gives it instead.
DEFAULTS_IN_WORDS = {
    ("convert", "--from"): "default: recognised from the parameter names",  # 'auto'
    ("eval", "--layout"): "default: the first that names every one",  # 'auto'
    ("quantize", "--no-compile"): "default: compiled",  # the switch is off
}


def _shown(default: object) -> str:
    return " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_has_help_that_states_its_default(command, capsys):
    """Each option's own help line says ``default: VALUE`` with the value the parser really uses
    (or, for the few in ``DEFAULTS_IN_WORDS``, says it in words), and --help shows it."""
    parser = _subparsers()[command]
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    text = "".join(capsys.readouterr().out.split())  # argparse wraps lines, after hyphens too
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = action.option_strings[0] if action.option_strings else action.dest
        assert action.help, f"{command} {name} has no help text"
        own = " ".join(formatter._expand_help(action).split())  # this option's help, %(default)s filled in
        assert "".join(own.split()) in text, f"{command} {name}: its help is not in --help"
        if action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            continue
        stated = DEFAULTS_IN_WORDS.get((command, name), f"default: {_shown(action.default)}")
        assert stated in own, f"{command} {name}: help {own!r} should state {stated!r}"
    for command_name, option in DEFAULTS_IN_WORDS:  # the table names options that exist, with their default
        if command_name == command:
            action = next(a for a in parser._actions if option in a.option_strings)
            assert action.default not in (None, False), f"{command} {option} no longer needs DEFAULTS_IN_WORDS"


def test_help_examples_render_as_typed(capsys, monkeypatch):
    """Examples in a command's description keep their lines (argparse would rewrap them into one)."""
    monkeypatch.setenv("COLUMNS", "80")  # the width of a terminal, or of a pipe, whatever runs the tests
    for command in ("train-det", "download", "push-to-hub"):
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])  # as `splitattn COMMAND --help`, without starting a process for each
        assert exited.value.code == 0
        out = capsys.readouterr().out
        examples = [line.strip() for line in out.splitlines() if f"splitattn {command} " in line]
        assert examples, f"{command} --help shows no example"
        for line in examples:
            # A continued line ends in a backslash; none is left stranded inside a rewrapped line.
            assert "\\ " not in line.rstrip("\\").rstrip(), line


def test_help_lists_the_exit_statuses():
    """``splitattn --help`` ends with the one table of exit statuses, each code once with its meaning,
    and the codes are the ones the errors carry (bad input 2, a diverged run 3)."""
    out = subprocess.run([sys.executable, "-m", "splitattn", "--help"], capture_output=True, text=True,
                         check=True).stdout
    table = out.split("exit status:\n", 1)[1]
    rows = " ".join(table.split())  # the meanings are wrapped to the terminal
    for status in EXIT_STATUSES:
        assert f"{status.code} {' '.join(status.meaning.split())}" in rows
    assert [s.code for s in EXIT_STATUSES] == [0, 1, 2, 3]
    assert SplitattnError.exit_status == BAD_INPUT and exit_status_of(DataError("x")) == BAD_INPUT
    assert exit_status_of(TrainingDiverged("x")) == DIVERGED and exit_status_of(RuntimeError("x")) is None
