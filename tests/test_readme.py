"""The README, followed as a new user would: every shell block runs, in order, in a fresh copy.

Blocks run in one bash session in a copy of the repository's tracked files (with this environment
as its .venv) and a fresh home directory, so nothing from an earlier run helps. What the README
itself says is all the test changes: a block whose first line says it is "not run by the README
test" (GPUs, internet, a Hub login, the hour-long benchmark suite) is skipped, and a command
ending in ``# README test: ARGS`` runs with ARGS added (fewer epochs or steps). The set-up and
test commands at the top are what runs this test, so they are not run again inside it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = "not run by the README test"
SELF = ("scripts/setup.sh", "scripts/test.sh")  # the commands that run this test
ADDED_ARGS = re.compile(r"^(?P<command>.*?)\s*#\s*README test:\s*(?P<args>.+)$")


@dataclass(frozen=True)
class Block:
    line: int  # where the block starts in README.md
    text: str


def shell_blocks(readme: str) -> list[Block]:
    blocks, current, start = [], None, 0
    for number, line in enumerate(readme.splitlines(), start=1):
        if current is None and line.strip() in ("```bash", "```sh", "```shell"):
            current, start = [], number
        elif current is not None and line.strip() == "```":
            blocks.append(Block(start, "\n".join(current)))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def runnable(block: Block) -> bool:
    first = block.text.strip().splitlines()[0] if block.text.strip() else ""
    return SKIP not in first and not any(command in block.text for command in SELF)


def as_tested(block: Block) -> str:
    """The block with the README's own ``# README test: ARGS`` additions applied."""
    lines = []
    for line in block.text.splitlines():
        match = ADDED_ARGS.match(line)
        lines.append(f"{match['command']} {match['args']}" if match else line)
    return "\n".join(lines)


def test_readme_blocks_are_found_and_labelled():
    blocks = shell_blocks((ROOT / "README.md").read_text())
    assert any(not runnable(b) and "scripts/setup.sh" in b.text for b in blocks[:1]), "set-up and test come first"
    assert sum(runnable(b) for b in blocks) >= 6
    for block in blocks:
        if "torchrun --nproc_per_node 8" in block.text or "benchmarks/run.py --compile" in block.text:
            assert not runnable(block), f"README.md:{block.line} needs GPUs or long; it must say so"


@pytest.mark.skipif(sys.platform == "win32", reason="the README's commands are bash")
@pytest.mark.long
def test_every_readme_command_runs_as_written_in_order(tmp_path):
    repo = tmp_path / "clone"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            target = repo / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    (repo / ".venv").symlink_to(Path(sys.prefix))  # this environment is what scripts/setup.sh made
    script = ["set -euo pipefail"]
    for block in shell_blocks((repo / "README.md").read_text()):
        if runnable(block):
            script += [f"echo '>>> README.md:{block.line}'", as_tested(block)]
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPLITATTN_", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), HF_HUB_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1",
               PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]))
    result = subprocess.run(["bash", "-c", "\n".join(script)], cwd=repo, env=env, capture_output=True, text=True,
                            timeout=1500)
    ran = [line for line in result.stdout.splitlines() if line.startswith(">>> README.md:")]
    assert result.returncode == 0, (f"README block {ran[-1] if ran else '?'} failed:\n"
                                    f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
