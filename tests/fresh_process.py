"""Running a command as a user would, in a process of its own: nothing this test process imported,
compiled or cached helps it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def eval_in_fresh_process(checkpoint: Path, data: Path, batch_size: int = 50) -> dict[str, Any]:
    """``splitattn eval --checkpoint CHECKPOINT --data DATA --json`` in a new Python process; its report."""
    child = subprocess.run([sys.executable, "-m", "splitattn", "eval", "--checkpoint", str(checkpoint), "--data",
                            str(data), "--json", "--batch-size", str(batch_size)],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-2000:]
    return json.loads(child.stdout)
