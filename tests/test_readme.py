"""The README and the documentation, followed as a new user would: every shell block runs, in order.

The README's blocks run first, then each page's in the order of mkdocs.yml's nav (the order the
site reads in), all in one bash session in a copy of the repository's tracked files (with this environment
as its .venv) and a fresh home directory, so nothing from an earlier run helps. What the pages
themselves say is all the test changes: a block whose first line says it is "not run by the README
test" (GPUs, internet, a Hub login, the hour-long benchmark suite) is skipped, and a command
ending in ``# README test: ARGS`` runs with ARGS added (fewer epochs or steps). The set-up and
test commands at the top are what runs this test, so they are not run again inside it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from PIL import Image

from splitattn.cli import main as cli_main
from splitattn.training import TrainConfig
from splitattn.training.metrics import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
SKIP = "not run by the README test"
SELF = ("scripts/setup.sh", "scripts/test.sh")  # the commands that run this test
ADDED_ARGS = re.compile(r"^(?P<command>.*?)\s*#\s*README test:\s*(?P<args>.+)$")


@dataclass(frozen=True)
class Block:
    file: str  # README.md or docs/PAGE.md, relative to the repository
    line: int  # where the block starts in it
    text: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def shell_blocks(markdown: str, file: str = "README.md") -> list[Block]:
    """The bash blocks of one Markdown file, fenced at any indent (a block inside a list item too)."""
    blocks, current, start, indent = [], None, 0, ""
    for number, line in enumerate(markdown.splitlines(), start=1):
        if current is None and line.strip() in ("```bash", "```sh", "```shell"):
            current, start, indent = [], number, line[:len(line) - len(line.lstrip())]
        elif current is not None and line.strip() == "```":
            blocks.append(Block(file, start, "\n".join(current)))
            current = None
        elif current is not None:
            current.append(line.removeprefix(indent))
    return blocks


def _pages(nav: object) -> list[str]:
    """The Markdown files of mkdocs.yml's nav, in order (entries are paths, {title: path} or {title: [...]})."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _pages(value)]
    return [page for item in nav or () for page in _pages(item)]


def documents(root: Path = ROOT) -> list[str]:
    """README.md, then the site's pages in nav order: the order a reader follows and the test runs."""
    config = yaml.safe_load((root / "mkdocs.yml").read_text())
    docs_dir = config.get("docs_dir", "docs")
    return ["README.md", *(f"{docs_dir}/{page}" for page in _pages(config["nav"]))]


def all_blocks(root: Path = ROOT) -> list[Block]:
    return [block for name in documents(root) for block in shell_blocks((root / name).read_text(), name)]


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


def test_readme_and_docs_blocks_are_found_and_labelled():
    blocks = all_blocks()
    assert any(not runnable(b) and "scripts/setup.sh" in b.text for b in blocks[:1]), "set-up and test come first"
    assert sum(runnable(b) for b in blocks if b.file == "README.md") >= 3  # activate, train, use the checkpoint
    assert sum(runnable(b) for b in blocks) >= 12
    assert {b.file for b in blocks if runnable(b)} >= {"docs/training.md", "docs/deployment.md", "docs/benchmarks.md"}
    for block in blocks:
        if "torchrun --nproc_per_node 8" in block.text or "benchmarks/run.py --compile" in block.text:
            assert not runnable(block), f"{block.where} needs GPUs or long; it must say so"


def test_readme_maps_every_page_of_the_site():
    """The README's map links each page of the site by its path in the repository (so it works on GitHub)."""
    readme = (ROOT / "README.md").read_text()
    links = set(re.findall(r"\]\((docs/[^)#]+\.md)(?:#[^)]*)?\)", readme))
    assert links, "the README links no documentation page"
    assert all((ROOT / link).is_file() for link in links), sorted(link for link in links if not (ROOT / link).is_file())
    # the site's home page repeats the map; a section (the API reference) is linked by its index page
    pages = {name for name in documents()[1:]
             if name != "docs/index.md" and (name.count("/") == 1 or name.endswith("/index.md"))}
    assert pages <= links, f"pages missing from the README's map: {sorted(pages - links)}"


@pytest.mark.skipif(sys.platform == "win32", reason="the README's commands are bash")
@pytest.mark.long
def test_every_readme_command_runs_as_written_in_order(tmp_path, capsys):
    """The walk, then what the README says of its quick start, checked on the run it made: the
    default ``splitattn train`` (not shortened) reaches 95% on the digits, and its checkpoint alone
    serves eval, predict and explain."""
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
    for block in all_blocks(repo):
        if runnable(block):
            script += [f"echo '>>> {block.where}'", as_tested(block)]
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPLITATTN_", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), HF_HUB_OFFLINE="1", PYTHONDONTWRITEBYTECODE="1",
               PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]))
    result = subprocess.run(["bash", "-c", "\n".join(script)], cwd=repo, env=env, capture_output=True, text=True,
                            timeout=1500)
    ran = [line.removeprefix(">>> ") for line in result.stdout.splitlines() if line.startswith(">>> ")]
    assert result.returncode == 0, (f"shell block {ran[-1] if ran else '?'} failed:\n"
                                    f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    _check_the_quick_start(repo / "runs" / "train", home / ".cache" / "splitattn" / "digits" / "val", capsys)


def _check_the_quick_start(run: Path, digits_val: Path, capsys: pytest.CaptureFixture) -> None:
    records = read_jsonl(run / "metrics.jsonl")
    assert len(records) == TrainConfig().epochs
    assert records[-1]["val_top1"] >= 95.0 and records[-1]["val_images"] == 359, records[-1]
    for name in ("config.yaml", "last.pth", "best.pth"):
        assert (run / name).is_file()
    with Image.open(run / "curves.png") as plot:
        assert plot.format == "PNG" and plot.width > 100
    capsys.readouterr()
    # eval, predict and explain need nothing but the checkpoint: model, classes, names, 32 px crop.
    assert cli_main(["eval", "--checkpoint", str(run / "best.pth"), "--data", str(digits_val), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["top1"] >= 95.0 and result["images"] == 359 and result["image_size"] == 32
    assert result["model"] == "resnest14d"
    image = next((digits_val / "7").iterdir())
    assert cli_main(["predict", str(image), "--checkpoint", str(run / "best.pth"), "--json", "--top-k", "3"]) == 0
    prediction = json.loads(capsys.readouterr().out)
    assert prediction["predictions"][0]["class"] == "7" and len(prediction["predictions"]) == 3
    assert cli_main(["explain", str(image), "--checkpoint", str(run / "best.pth"), "--out", str(run.parent / "x")]) == 0
    explained = capsys.readouterr().out.splitlines()[-1]  # "top classes: 7 (98.1%), ..."
    name, percent = re.match(r"top classes: (\S+) \(([\d.]+)%\)", explained).groups()
    top = prediction["predictions"][0]
    assert name == top["class"] and float(percent) == pytest.approx(100 * top["probability"], abs=0.051)


def test_api_pages_show_docstring_roles_as_code():
    """The docstrings' Sphinx roles (:func:`x`) reach the API pages as code spans, not as written."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("griffe_sphinx_roles", ROOT / "scripts" / "griffe_sphinx_roles.py")
    roles = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(roles)
    text = ("see :func:`splitattn.quantize.quantize`, :class:`~splitattn.deploy.OpenVinoModel`, "
            ":mod:`.attention_inputs` and :data:`QUANTIZE_ENGINES`; ``code`` stays")
    assert roles.without_roles(text) == ("see `splitattn.quantize.quantize`, `OpenVinoModel`, `attention_inputs` "
                                         "and `QUANTIZE_ENGINES`; ``code`` stays")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    handler = next(p for p in config["plugins"] if isinstance(p, dict) and "mkdocstrings" in p)["mkdocstrings"]
    assert "scripts/griffe_sphinx_roles.py:SphinxRoles" in handler["handlers"]["python"]["options"]["extensions"]
