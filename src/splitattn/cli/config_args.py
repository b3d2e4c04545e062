"""``--config FILE`` and trailing ``KEY=VALUE`` overrides, as ``train``, ``train-det`` and ``train-seg`` take them.

Each of these commands resolves its options with ``training.config.build_config``: the config
class's defaults, then the YAML file, then the ``KEY=VALUE`` pairs, then the flags given on the
command line. Flags therefore default to None ("not given"), and their help states the real default.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from ..errors import SplitattnError


def add_config_arguments(parser: argparse.ArgumentParser, example: str, config_help: str) -> None:
    """The positional ``KEY=VALUE`` overrides (``example`` shows a few) and ``--config FILE``."""
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help=f"any config option (see config.yaml of a run), e.g. {example}")
    parser.add_argument("--config", help=config_help)


def parse_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings as a dict; the values stay text for ``build_config`` to read as YAML."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SplitattnError(f"expected KEY=VALUE, got {pair!r}")
        overrides[key] = value
    return overrides


def given_flags(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The options among ``names`` that were given on the command line (the others are None)."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def command_line_options(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The command line's layer for ``build_config``: the ``KEY=VALUE`` pairs, then the flags given."""
    return {**parse_overrides(args.overrides), **given_flags(args, names)}
