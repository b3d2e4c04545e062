"""The one resume rule of every task: what must match for a run to continue from its ``last.pth``.

A run continues only with the settings it was trained with, so that a resumed run ends where the
uninterrupted one would: every field of the config is compared with the checkpoint's, except the
ones the config's class lists in ``RESUME_MAY_CHANGE`` (where the data live, the device, logging:
what does not change the optimisation). The task's extras (class names, categories) must match
the data as they are now. Refusals name each differing field with both values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .checkpoint import LAST, STATE_KEYS, load_checkpoint

UNSET = "(unset)"  # how a field that one of the two configs lacks is shown


def _compared(config_class: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """A config's settings that must match, as the run used them (``resume_view``)."""
    may_change = config_class.RESUME_MAY_CHANGE
    return {k: v for k, v in config_class.resume_view(dict(values)).items() if k not in may_change}


def check_same_run(path: Path, config: Any, saved: Mapping[str, Any]) -> None:
    """Refuse to continue ``path`` (saved with config ``saved``) under another ``config``.

    Args:
        path: the checkpoint, named in the message.
        config: this run's config (a ``RunConfig`` subclass instance).
        saved: the config the checkpoint was trained with, as a mapping.

    Raises:
        ConfigError: naming each field that differs, with the saved value and the asked one.
    """
    config_class = type(config)
    before, now = _compared(config_class, saved), _compared(config_class, dataclasses.asdict(config))
    differ = [k for k in dict.fromkeys([*now, *before]) if now.get(k, UNSET) != before.get(k, UNSET)]
    if differ:
        may_change = ", ".join(k for k in config_class.RESUME_MAY_CHANGE if k != "resume")
        raise ConfigError(
            f"cannot resume from {path}: it was trained with "
            + ", ".join(f"{k}={before.get(k, UNSET)!r}" for k in differ) + ", while this run asks for "
            + ", ".join(f"{k}={now.get(k, UNSET)!r}" for k in differ)
            + f". Resume with the settings it was trained with (only {may_change} may change), or start a new run "
              f"in another output directory")


def resume_state(config: Any, steps: int, extra: Mapping[str, Any], log: Callable[[str], None],
                 upgrade: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """The saved state to continue from, when ``config.resume`` and ``OUTPUT/last.pth`` exists.

    Args:
        config: the run's config; its ``output`` holds the run, its ``resume`` asks to continue.
        steps: the run's length in optimiser steps, to say whether anything is left to train.
        extra: what the checkpoint must hold as the data now give it (``{"class_names": [...]}``).
        log: where the resume line goes.
        upgrade: fills in what a task's older checkpoints name otherwise (classification's
            ``epoch`` and ``step_in_epoch`` before there was one loop), before anything is checked.

    Raises:
        ConfigError: when the checkpoint holds no training state, was trained with other settings
            (``check_same_run``) or other data (``extra``).
    """
    if not config.resume:
        return None
    path = Path(config.output) / LAST
    if not path.is_file():
        log(f"resume: no checkpoint at {path}, starting from scratch")
        return None
    state = load_checkpoint(path)
    if upgrade is not None:
        state = upgrade(state)
    if not {*STATE_KEYS, "step", "data_position", "config"} <= set(state):
        raise ConfigError(f"cannot resume from {path}: it holds no training state (weights only, written by another "
                          f"program or an older splitattn); start a new run in another output directory")
    check_same_run(path, config, state["config"])
    for key, value in extra.items():
        if key in state and state[key] != value:
            raise ConfigError(f"cannot resume from {path}: it was trained with {key} {state[key]}, but the training "
                              f"data now give {value}")
    if state["step"] >= steps:
        log(f"resume: {path} has finished all {steps} steps already; nothing to train (to train again, use another "
            f"output directory)")
    else:
        log(f"resume: {path} at step {state['step']} of {steps}")
    return state
