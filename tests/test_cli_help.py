"""The command line as a user reads it: every option explained with its default, examples intact."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from splitattn.cli import COMMANDS, build_parser


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_has_help_that_states_its_default(command, capsys):
    parser = _subparsers()[command]
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines; compare word by word
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{command} {action.option_strings or action.dest} has no help text"
        meaningful = action.default not in (None, False, argparse.SUPPRESS) and action.option_strings
        if meaningful:
            shown = " ".join(map(str, action.default)) if isinstance(action.default, list) else str(action.default)
            assert f"default: {shown}" in text or "default" in action.help, (command, action.option_strings)


def test_help_examples_render_as_typed():
    """Examples in a command's description keep their lines (argparse would rewrap them into one)."""
    for command in ("train-det", "download", "push-to-hub"):
        out = subprocess.run([sys.executable, "-m", "splitattn", command, "--help"], capture_output=True,
                             text=True, check=True).stdout
        examples = [line.strip() for line in out.splitlines() if f"splitattn {command} " in line]
        assert examples, f"{command} --help shows no example"
        for line in examples:
            # A continued line ends in a backslash; none is left stranded inside a rewrapped line.
            assert "\\ " not in line.rstrip("\\").rstrip(), line
