"""How long a saved int8 or compiled model takes to load and run its first batch, in a fresh process.

What a user waits for before the first image: ``splitattn eval`` of an archive used to compile for
half a minute to minutes first. An ahead-of-time compiled package (AOTInductor: int8 through
``save_quantized(..., aot=True)``, float32 through ``deploy(compile="aot")`` and ``save_package``)
should load and run at once. Measured in a new Python process per package, because a process that
built the package has the compiled code cached and would flatter it: from the moment the process
is started to its first output (interpreter, ``import torch`` and splitattn included: what a user
sees), and inside the process the load and first batch alone, with the number of graphs dynamo
compiled meanwhile (none, for a package that runs without compiling).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import SplitattnError
from ..factory import create_model
from .config import BenchConfig, calibration, int8_aot_package

# The child process: its stdout's first line is its first output, a JSON record of its own times.
CHILD = """
import time
start = time.perf_counter()
import json, sys
import torch
torch.set_num_threads(int(sys.argv[2]))
from torch._dynamo.utils import counters
from splitattn.quantize import load_quantized
imported = time.perf_counter()
x = torch.randn(*json.loads(sys.argv[3]))
model = load_quantized(sys.argv[1])
with torch.no_grad():
    out = model(x)
done = time.perf_counter()
print(json.dumps({"import_s": imported - start, "load_and_first_batch_s": done - imported,
                  "graphs": int(counters["stats"]["unique_graphs"]), "output_shape": list(out.shape)}), flush=True)
import gc
gc.freeze()  # measured already: spare the exit's collection of every object torch made (as the CLI does)
"""


@dataclass
class LoadTime:
    """One package's load measurement (a row of the results' ``load`` section)."""

    model: str
    package: str
    img_size: int
    batch_size: int
    threads: int
    package_mb: float
    build_s: float
    process_to_first_output_s: float
    import_s: float
    load_and_first_batch_s: float
    graphs_compiled_at_load: int

    def as_dict(self) -> dict:
        return asdict(self)


def _int8_package(model: nn.Module, config: BenchConfig, x: torch.Tensor, path: Path) -> Path:
    from ..deploy import save_package

    return save_package(int8_aot_package(model, config, x), path)


def _fp32_package(model: nn.Module, config: BenchConfig, x: torch.Tensor, path: Path) -> Path:
    from ..deploy import deploy, save_package

    return save_package(deploy(model, batch_size=config.batch_size, example_input=x, compile="aot"), path)


def _int8_openvino(model: nn.Module, config: BenchConfig, x: torch.Tensor, path: Path) -> Path:
    from ..quantize import quantize, save_quantized

    quantized = quantize(model, calibration(config), engine="openvino", batch_size=config.batch_size)
    return save_quantized(quantized, path)


# Package kind -> (its label in the results, how it is built and saved, its file's suffix).
PACKAGES: dict[str, tuple[str, Callable[[nn.Module, BenchConfig, torch.Tensor, Path], Path], str]] = {
    "int8": ("int8 AOT package (save_quantized aot=True)", _int8_package, ".pt2"),
    "fp32": ("fp32 AOT package (deploy compile='aot')", _fp32_package, ".pt2"),
    "int8-openvino": ("int8 OpenVINO IR (quantize engine='openvino'; compiled by OpenVINO at load)", _int8_openvino,
                      ".xml"),
}


def _files_of(path: Path) -> list[Path]:
    """The files a saved model is: the ``.pt2``, or an IR's ``.xml`` and ``.bin``."""
    return [path, path.with_suffix(".bin")] if path.suffix == ".xml" else [path]


def time_first_output(path: Path, shape: tuple[int, ...], threads: int, timeout: float = 600) -> dict:
    """Run a fresh process that loads ``path`` and runs one batch of ``shape``; its times and graph count.

    Args:
        path: a file ``splitattn.quantize.load_quantized`` reads (``.pt2`` archive or package, ``.xml``).
        shape: the batch's shape.
        threads: torch's intra-op threads in the child.
        timeout: seconds before the child is given up on.
    """
    start = time.perf_counter()
    with subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(threads), json.dumps(list(shape))],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        try:
            line = child.stdout.readline()
            first_output = time.perf_counter() - start
            _, errors = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            raise SplitattnError(f"loading {path} in a fresh process took over {timeout:.0f} s") from None
    if child.returncode != 0 or not line:
        raise SplitattnError(f"loading {path} in a fresh process failed (exit {child.returncode}): {errors[-2000:]}")
    return {**json.loads(line), "process_to_first_output_s": first_output}


def load_times(config: BenchConfig, kinds: tuple[str, ...], workdir: Path, threads: int | None = None
               ) -> list[LoadTime]:
    """Build each kind of package of ``config.model`` (random weights), then time loading it afresh.

    Args:
        config: model, batch size (the package's compiled batch) and resolution (float32 on CPU).
        kinds: some of :data:`PACKAGES` (``"int8"``, ``"fp32"``).
        workdir: where the packages are written.
        threads: the child's threads (default: torch's here).
    """
    unknown = sorted(set(kinds) - set(PACKAGES))
    if unknown:
        raise SplitattnError(f"unknown package kinds {unknown}; expected some of {tuple(PACKAGES)}")
    threads = threads or torch.get_num_threads()
    model = create_model(config.model).eval()
    x = config.example()
    rows = []
    for kind in kinds:
        label, build, suffix = PACKAGES[kind]
        path = Path(workdir) / f"{config.model}-{kind}-b{config.batch_size}-{config.img_size}px{suffix}"
        started = time.perf_counter()
        build(model, config, x, path)
        built = time.perf_counter() - started
        measured = time_first_output(path, tuple(x.shape), threads)
        rows.append(LoadTime(
            model=config.model, package=label, img_size=config.img_size, batch_size=config.batch_size,
            threads=threads, package_mb=sum(p.stat().st_size for p in _files_of(path)) / 2**20, build_s=built,
            process_to_first_output_s=measured["process_to_first_output_s"], import_s=measured["import_s"],
            load_and_first_batch_s=measured["load_and_first_batch_s"], graphs_compiled_at_load=measured["graphs"],
        ))
    return rows
