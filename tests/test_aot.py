"""Ahead-of-time compiled packages: compiled once, loaded in a fresh process and run without compiling.

One small fp32 model (seresnet18 at 32 px, compiled for batches of 2) is compiled once for the
module; the int8 package of a trained model is tested with the quantize command in
tests/test_quantize.py. The child processes forbid every compile entry point (dynamo's graphs,
inductor's compile_fx, AOTInductor's compiler, the C++ builder), so a load that compiled anything
fails there rather than only taking longer.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

import splitattn
from splitattn.deploy import (
    DEPLOY_TOLERANCES,
    AotModel,
    deploy,
    deployment_of,
    load_package,
    read_package_info,
    relative_error,
    save_package,
)
from splitattn.quantize import load_quantized

from .reference import randomize_

BATCH = 2
SIZE = 32

# Run in the child before anything is loaded: every way of compiling raises.
NO_COMPILE = """
import json, sys, time
started = time.perf_counter()
import torch
import torch._inductor.compile_fx as compile_fx
import torch._inductor.cpp_builder as cpp_builder
def refuse(*args, **kwargs):
    raise RuntimeError("something compiled while loading a package")
compile_fx.compile_fx = compile_fx.compile_fx_inner = refuse
torch._inductor.aot_compile = refuse
cpp_builder.CppBuilder.build = refuse
from torch._dynamo.utils import counters
def finish(result):
    assert counters["stats"]["unique_graphs"] == 0, dict(counters["stats"])
    print(json.dumps(result))
"""


def run_child(script: str) -> dict:
    ran = subprocess.run([sys.executable, "-c", NO_COMPILE + script], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    return json.loads(ran.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return randomize_(splitattn.create_model("seresnet18", num_classes=10, zero_init_last=False)).eval()


@pytest.fixture(scope="module")
def package(model, tmp_path_factory) -> Path:
    """``deploy(compile="aot")`` of ``model`` for batches of 2, saved."""
    x = torch.randn(BATCH, 3, SIZE, SIZE)
    compiled = deploy(model, example_input=x, compile="aot")  # deploy checks the package's outputs itself
    assert isinstance(compiled, AotModel) and deployment_of(compiled).compile == "aot"
    assert deployment_of(compiled).checked_error < 1e-4
    return save_package(compiled, tmp_path_factory.mktemp("aot") / "seresnet18.pt2")


def test_package_loads_in_a_fresh_process_without_compiling_and_gives_eval_modes_outputs(model, package, digits):
    torch.manual_seed(1)
    inputs = torch.randn(5, 3, SIZE, SIZE)
    images = digits / "val" / "3"
    with torch.no_grad():
        expected = model(inputs)
    script = f"""
from splitattn.quantize import load_quantized
imported = time.perf_counter()
torch.manual_seed(1)
x = torch.randn(5, 3, {SIZE}, {SIZE})  # the same images as the parent's: the same seed and generator
model = load_quantized({str(package)!r})
with torch.no_grad():
    first = model(x[:{BATCH}])
    seconds, imports = time.perf_counter() - imported, imported - started
    outputs = [model(x[:1]), first, model(x)]  # padded, as compiled, split into 2 + 2 + 1 (padded)
import contextlib, io
from splitattn.cli import main
printed = io.StringIO()
with contextlib.redirect_stdout(printed):  # predict reads the package as eval does (tests/test_quantize.py)
    assert main(["predict", {str(images)!r}, "--checkpoint", {str(package)!r}, "--json", "--top-k", "1"]) == 0
finish({{"type": type(model).__name__, "seconds": seconds, "imports": imports,
        "outputs": [o.tolist() for o in outputs], "predicted": printed.getvalue().splitlines()}})
"""
    result = run_child(script)
    print(f"AOT fp32 package in a fresh process: load + first batch {result['seconds']:.2f} s "
          f"(after {result['imports']:.1f} s importing torch and splitattn)")  # measured, not asserted
    assert result["type"] == "AotModel"
    predicted = [json.loads(line) for line in result["predicted"]]
    assert len(predicted) == len(list(images.iterdir())) > 0 and all(len(p["predictions"]) == 1 for p in predicted)
    for out, reference in zip(map(torch.tensor, result["outputs"]), (expected[:1], expected[:BATCH], expected),
                              strict=True):
        assert out.shape == reference.shape
        assert torch.equal(out.argmax(1), reference.argmax(1))
        assert relative_error(out, reference) < 1e-4  # the deploy tolerance


def test_package_records_what_eval_and_predict_need(package, model):
    info = read_package_info(package)
    assert info["format"] == "splitattn-aot/1" and info["input_shape"] == [BATCH, 3, SIZE, SIZE]
    assert info["precision"] == "fp32"  # what it computes in (it takes and returns float32 either way)
    assert info["num_classes"] == 10 and info["torch"] == torch.__version__
    assert info["pretrained_cfg"]["input_size"] == [3, SIZE, SIZE]  # what eval and predict preprocess to
    assert info["pretrained_cfg"]["crop_pct"] == model.pretrained_cfg["crop_pct"]
    loaded = load_package(package)
    assert loaded.batch_size == BATCH and loaded.num_classes == 10 and loaded.eval() is loaded
    with pytest.raises(ValueError, match="compiled package is for inference"):
        loaded.train()
    with pytest.raises(ValueError, match=r"compiled for float32 images of shape \(3, 32, 32\), got .* \(3, 40, 40\)"):
        loaded(torch.zeros(1, 3, 40, 40))


def compiled_calls(path: Path) -> set[str]:
    """The CPU operators the package's compiled wrapper calls (``aoti_torch_cpu_*``), read from its source."""
    with zipfile.ZipFile(path) as archive:
        source = "".join(archive.read(n).decode(errors="ignore") for n in archive.namelist()
                         if n.endswith("wrapper.cpp"))
    return set(re.findall(r"aoti_torch_cpu_(\w+?)\(", source))


def test_package_runs_packed_onednn_convs_and_the_attention_mlps_as_packed_matmuls(package):
    calls = compiled_calls(package)  # frozen weights: packed once when compiled, not on every call
    assert "mkldnn__convolution_pointwise" in calls and "_linear_pointwise" in calls, sorted(calls)


def _rewrite_metadata(source: Path, target: Path, **changes) -> None:
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for item in original.infolist():
            data = original.read(item)
            if item.filename.endswith("/extra/splitattn.json"):
                data = json.dumps({**json.loads(data), **changes}).encode()
            copy.writestr(item, data)


def test_a_package_from_another_torch_or_cpu_is_refused_and_from_another_host_warned_of(package, tmp_path):
    other_torch = tmp_path / "other_torch.pt2"
    _rewrite_metadata(package, other_torch, torch="1.0.0")
    with pytest.raises(ValueError, match=r"compiled with torch 1\.0\.0, this is torch"):
        load_quantized(other_torch)
    other_cpu = tmp_path / "other_cpu.pt2"
    _rewrite_metadata(package, other_cpu, cpu_features=["avx2", "made-up-isa"])
    with pytest.raises(ValueError, match=r"with made-up-isa, which this .* CPU lacks"):
        load_package(other_cpu)
    elsewhere = tmp_path / "elsewhere.pt2"
    _rewrite_metadata(package, elsewhere, host="somebody-elses-machine")
    with pytest.warns(UserWarning, match=r"compiled on another machine .* runs the compiled code .* load only"):
        assert load_package(elsewhere).batch_size == BATCH
    with pytest.raises(ValueError, match="loaded from a file, which is the saved package"):
        save_package(load_package(package), tmp_path / "again.pt2")
    with pytest.raises(ValueError, match=r"not one of splitattn's compiled packages .* load only packages you made"):
        load_package(_not_a_package(tmp_path))


def _not_a_package(folder: Path) -> Path:
    path = folder / "plain.pt2"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "not a model")
    return path


@pytest.mark.filterwarnings("ignore:this CPU has no native bfloat16")  # where it has none, bf16 is emulated
def test_a_bfloat16_package_records_its_precision_and_gives_the_same_outputs_once_loaded(model, tmp_path):
    x = torch.randn(BATCH, 3, SIZE, SIZE)
    compiled = deploy(model, example_input=x, compile="aot", dtype=torch.bfloat16)  # checked within bf16's tolerance
    assert deployment_of(compiled).dtype == torch.bfloat16 and compiled.info["precision"] == "bf16"
    path = save_package(compiled, tmp_path / "bf16.pt2")
    assert read_package_info(path)["precision"] == "bf16"
    loaded = load_package(path)
    with torch.no_grad():
        out = loaded(x)
        assert out.dtype == torch.float32 and torch.equal(out, compiled(x))  # takes and returns float32
        assert relative_error(out, model(x)) <= DEPLOY_TOLERANCES[torch.bfloat16]
