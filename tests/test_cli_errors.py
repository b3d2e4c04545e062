"""What a user sees when a command fails: the package's own errors as one line, anything else with its traceback.

A wrong option, an unreadable data set, a bad config or a weight file that cannot be loaded is the
user's to fix and the message says how, so ``splitattn`` prints that one line on stderr and exits 2.
An error that is not the package's (PyTorch's own ``RuntimeError``, a bug) must keep its
traceback: it is the only way to find where it came from.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import splitattn
from splitattn.cli import main
from splitattn.errors import BAD_INPUT, FAILURE

SRC = Path(__file__).resolve().parents[1] / "src" / "splitattn"


def _one_line_error(capsys, command: str) -> str:
    """The message of the single ``splitattn COMMAND: error:`` line on stderr, with nothing on stdout."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{captured.err}"
    assert lines[0].startswith(f"splitattn {command}: error: "), lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0].removeprefix(f"splitattn {command}: error: ")


def test_an_unexpected_runtime_error_keeps_its_traceback():
    """A bug that makes PyTorch raise (here a conv fed the wrong channels) exits 1 with the whole
    traceback, down to the splitattn frame that called PyTorch, not a one-line 'error:'."""
    script = textwrap.dedent("""
        import sys
        import torch
        from splitattn.cli import run_and_exit  # the splitattn executable's entry point

        original = torch.nn.Conv2d.forward
        torch.nn.Conv2d.forward = lambda self, x: original(self, x[:, :1])  # the bug: one channel of three
        sys.argv = ["splitattn", "summary", "resnest14d", "--input", "3x32x32"]
        run_and_exit()
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == FAILURE.code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "splitattn/models/resnet.py" in result.stderr  # the frames inside the package are all there
    assert result.stderr.strip().splitlines()[-1].startswith("RuntimeError: ")
    assert "splitattn summary: error:" not in result.stderr and result.stdout == ""


def test_a_data_error_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["write-shards", str(tmp_path / "empty"), str(tmp_path / "shards")]) == BAD_INPUT.code == 2
    message = _one_line_error(capsys, "write-shards")
    assert "has none of the split folders ['train', 'val']" in message and str(tmp_path / "empty") in message


def test_a_config_error_is_one_line(tmp_path, capsys):
    assert main(["train", "--output", str(tmp_path / "run"), "optimiser=adamw"]) == 2
    assert _one_line_error(capsys, "train") == ("unknown config option 'optimiser' (from command line); "
                                                "did you mean 'optimizer'?")
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_a_weights_error_is_one_line(tmp_path, capsys):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"these are not weights")
    assert main(["convert", str(path), str(tmp_path / "out.pth"), "--model", "seresnet18"]) == 2
    message = _one_line_error(capsys, "convert")
    assert message.startswith(f"checkpoint file {str(path)!r} could not be read; it is probably truncated or "
                              "corrupted")
    assert not (tmp_path / "out.pth").exists()


def test_an_unknown_model_is_one_line(capsys):
    assert main(["summary", "resnest1000", "--input", "3x32x32"]) == 2
    assert _one_line_error(capsys, "summary").startswith("unknown model 'resnest1000'. Did you mean: resnest")


def test_python_callers_catch_them_as_splitattn_errors_or_as_the_value_errors_they_were():
    with pytest.raises(splitattn.SplitattnError, match="unknown model 'resnest1000'") as caught:
        splitattn.create_model("resnest1000")
    assert isinstance(caught.value, ValueError)
    with pytest.raises(splitattn.SplitattnError, match="attn must be an attention spec") as caught:
        splitattn.create_model("resnest14d", attn="splat")
    assert isinstance(caught.value, TypeError)  # wrong kinds of argument stay TypeErrors


def test_a_usage_error_stays_as_argparse_reports_it(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["summary", "resnest14d", "--depth", "zero"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: splitattn summary") and "--depth must be a positive integer or 'all'" in err


# Built-in exceptions the package still raises on purpose, each for a reason that is not bad input.
NOT_BAD_INPUT = {
    ("deploy/packed_conv.py", "RuntimeError"),  # state_dict() of a oneDNN-packed model: deploy() made it
    ("data/shards.py", "RuntimeError"),  # a loader with other workers than the stream was built for: a bug
}
BUILTIN_ERRORS = {"ValueError", "RuntimeError", "TypeError", "OSError", "FileNotFoundError", "KeyError",
                  "IndexError", "LookupError", "Exception"}  # NotImplementedError marks abstract methods


def test_the_package_raises_its_own_errors():
    """Errors raised on bad input are the package's (a SplitattnError), so the command line shows them as
    one line; a bare ``raise ValueError(...)`` would now end a command with a traceback."""
    found = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(exc, ast.Name) and exc.id in BUILTIN_ERRORS:
                    found.add((path.relative_to(SRC).as_posix(), exc.id, node.lineno))
    unexpected = sorted(f"{file}:{line} raises {name}" for file, name, line in found
                        if (file, name) not in NOT_BAD_INPUT)
    assert unexpected == [], "raise a splitattn.errors type instead (or list the reason in NOT_BAD_INPUT)"
    stale = NOT_BAD_INPUT - {(file, name) for file, name, _ in found}
    assert stale == set(), f"entries of NOT_BAD_INPUT no longer raised: {sorted(stale)}"
