"""OpenVINO (fp32, bf16, int8) and int8 QDQ ONNX exports of two small models, checked on real images.

The images are the built-in digits (real handwriting, 32 px PNGs written offline) read with each
model's eval preprocessing, as ``splitattn export --calibration`` reads them. The models have
random BN statistics and no zero-initialised branch ends (``randomize_``), so that every block
changes the output and a wrong scale anywhere shows.

Tolerances are those the exporters check against (``tolerance_for``: fp32 1e-4, bf16 5e-2, int8
0.35; what they rest on is noted at ``splitattn.export.openvino.TOLERANCES``). In exactly these
conditions (32 px, 16 calibration images) an AVX2 CPU gave int8 errors of 1.4e-2 to 4.1e-2 with
top-1 agreement 1.0 for both engines (0.97-1.0 on 300 held-out images). bf16 runs as f32 on a CPU
without bf16 instructions; on a Xeon with AMX it erred by 3.7e-3 to 8.7e-3 at 64 px, agreeing on
0.92-1.0. The top-1 floors leave two of the 16 images room to flip.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch

import splitattn
from splitattn.cli import main
from splitattn.data import eval_transform, load_rgb
from splitattn.data.calibration import calibration_batches, calibration_files
from splitattn.deploy import relative_error
from splitattn.export import export_checked, export_model, tolerance_for
from splitattn.export.openvino import TOLERANCES, openvino_runner

from .reference import randomize_

SIZE = 32
IMAGES = 16  # every digit once, six of them twice: enough for the ranges; more only slows the test
# Lowest top-1 agreement with PyTorch fp32 accepted on the calibration images (see the docstring).
TOP1_FLOOR = {"bf16": 0.85, "int8": 0.85}


def _openvino():
    pytest.importorskip("openvino", reason="OpenVINO export tests need pip install -e .[openvino]")
    pytest.importorskip("nncf", reason="OpenVINO int8 export tests need pip install -e .[openvino]")


def _onnxruntime():
    for module in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(module, reason="ONNX export tests need pip install -e .[export]")


@pytest.fixture
def one_thread():
    """One intra-op thread, restored afterwards: these 32 px models are too small to share among
    threads, and on a busy 2-core machine a spinning second thread made each export several times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def prepared(digits):
    """``prepared(name)``: the model (random BN statistics) and its calibration batches, made once per module."""
    cache = {}

    def get(name: str):
        if name not in cache:
            torch.manual_seed(0)
            model = randomize_(splitattn.create_model(name, num_classes=10, zero_init_last=False)).eval()
            cache[name] = model, calibration_batches(digits / "train", model, count=IMAGES, batch_size=8,
                                                     img_size=SIZE)
        return cache[name]

    return get


def _openvino_ops(path) -> set[str]:
    import openvino

    return {op.get_type_name() for op in openvino.Core().read_model(str(path)).get_ops()}


def _error_and_agreement(run, model, images) -> tuple[float, float]:
    with torch.no_grad():
        got, expected = torch.cat([run(x) for x in images]), torch.cat([model(x) for x in images])
    return relative_error(got, expected), (got.argmax(1) == expected.argmax(1)).float().mean().item()


# The bf16 IR is the fp32 one with another hint recorded (OpenVINO takes the precision at compile
# time), so one conversion per model serves both: each model is written in one, run in both.
@pytest.mark.parametrize("name, written", [("resnest14d", "bf16"), ("seresnet18", "fp32")])
def test_openvino_fp32_and_bf16_match_pytorch(tmp_path, prepared, one_thread, name, written):
    _openvino()
    import openvino

    model, images = prepared(name)
    path, check = export_checked(model, tmp_path / "m.xml", "openvino", (3, SIZE, SIZE), precision=written)
    assert path.with_suffix(".bin").is_file() and check.batch_sizes == (1, 3)
    assert check.error < (1e-4 if check.ran_at == "fp32" else tolerance_for("openvino", written)), check
    hint = openvino.Core().read_model(str(path)).get_rt_info(["splitattn", "inference_precision_hint"])
    assert hint.astype(str) == {"fp32": "f32", "bf16": "bf16"}[written]  # for whoever compiles it
    for precision in ("fp32", "bf16"):
        run, ran_at = openvino_runner(path, precision)  # bf16 runs as fp32 on a CPU without bf16 instructions
        error, agreement = _error_and_agreement(run, model, images)
        assert error < TOLERANCES[precision if ran_at == precision else "fp32"], (precision, ran_at, error)
        assert agreement >= TOP1_FLOOR.get(precision, 1.0), (precision, ran_at, agreement)
    x = torch.cat(images)[:5]  # a batch size neither the trace (2) nor the check used
    assert _error_and_agreement(openvino_runner(path)[0], model, [x]) == (pytest.approx(0, abs=1e-4), 1.0)
    # the attention MLPs in OpenVINO's form: a gate's as its convs (seresnet18: the classifier is the
    # one matrix product), the others as matrix products (resnest14d: two per block)
    matmuls = sum(op.get_type_name() == "MatMul" for op in openvino.Core().read_model(str(path)).get_ops())
    assert matmuls == {"seresnet18": 1, "resnest14d": 1 + 2 * 4}[name]


def test_openvino_int8_is_quantized_and_agrees(tmp_path, prepared, one_thread):
    _openvino()
    model, images = prepared("resnest14d")  # seresnet18 goes through the command line below
    path, check = export_checked(model, tmp_path / "q.xml", "openvino", (3, SIZE, SIZE), precision="int8",
                                 calibration=images)
    assert "FakeQuantize" in _openvino_ops(path)  # NNCF's int8 ranges, which the CPU plugin runs as int8 kernels
    assert check.error < tolerance_for("openvino", "int8") and check.images == IMAGES
    assert check.top1_agreement >= TOP1_FLOOR["int8"], check
    assert check.batch_sizes[:2] == (1, 3)


@pytest.mark.parametrize("name, exporter", [("resnest14d", "legacy"), ("seresnet18", "dynamo")])
def test_onnx_int8_is_qdq_per_channel_and_agrees(tmp_path, prepared, one_thread, name, exporter):
    _onnxruntime()
    import onnx

    model, images = prepared(name)
    path, check = export_checked(model, tmp_path / "q.onnx", "onnx", (3, SIZE, SIZE), precision="int8",
                                 calibration=images, exporter=exporter)
    graph = onnx.load(str(path)).graph
    quantize = [n for n in graph.node if n.op_type == "QuantizeLinear"]
    assert quantize and any(n.op_type == "DequantizeLinear" for n in graph.node)
    initializers = {i.name: i for i in graph.initializer}
    zero_point_types = {initializers[n.input[2]].data_type for n in quantize if n.input[2] in initializers}
    assert zero_point_types == {onnx.TensorProto.INT8}, "activations are int8, not uint8"
    per_channel = [n for n in graph.node if n.op_type == "DequantizeLinear" and n.input[1] in initializers
                   and len(initializers[n.input[1]].dims) == 1 and initializers[n.input[1]].dims[0] > 1]
    assert per_channel, "weights have one scale per output channel"
    assert check.error < tolerance_for("onnx", "int8") and check.top1_agreement >= TOP1_FLOOR["int8"], check


def test_export_cli_writes_openvino_int8_and_reports_the_check(tmp_path, digits, capsys, one_thread):
    _openvino()
    xml = tmp_path / "se.xml"
    assert main(["export", "seresnet18", "--format", "openvino", "--precision", "int8", "-o", str(xml),
                 "--img-size", str(SIZE), "--num-classes", "10", "--calibration", str(digits / "train"),
                 "--calibration-count", str(IMAGES)]) == 0
    out = capsys.readouterr().out
    assert xml.is_file() and xml.with_suffix(".bin").is_file() and "FakeQuantize" in _openvino_ops(xml)
    reported = re.search(r"max relative error vs PyTorch (\S+) \(tolerance 0.35\), top-1 agreement (\S+)% "
                         rf"on {IMAGES} calibration images at batch 1, 3, 4, 8", out)  # 16 = 1 + 3 + 8 + 4
    assert reported, out
    assert float(reported[1]) < tolerance_for("openvino", "int8") and float(reported[2]) >= 100 * TOP1_FLOOR["int8"]


@pytest.mark.parametrize("arguments, message", [
    (["--precision", "int8"], "--precision int8 needs --calibration"),
    (["--calibration", "{digits}"], "--calibration is used by --precision int8"),
    (["--precision", "bf16"], "--format onnx does not support --precision bf16 (supported: onnx: fp32, int8; "
                              "torchscript: fp32; openvino: fp32, bf16, int8)"),
    (["--format", "torchscript", "--precision", "int8", "--calibration", "{digits}"],
     "--format torchscript does not support --precision int8"),
    (["--format", "torchscript", "--exporter", "legacy"],
     "--exporter is an option of onnx, not of --format torchscript (which takes none)"),
    (["--exporter", "torchscript"], "--exporter must be one of ('dynamo', 'legacy') for onnx, got 'torchscript'"),
    (["--precision", "int8", "--calibration", "{missing}"], "does not exist"),
    (["--precision", "int8", "--calibration", "{empty}"], "holds no images"),
])
def test_export_cli_errors(tmp_path, digits, capsys, arguments, message):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    (tmp_path / "empty" / "cat" / "notes.txt").write_text("not an image")
    folders = {"digits": digits / "val", "missing": tmp_path / "nowhere", "empty": tmp_path / "empty"}
    arguments = [a.format(**folders) for a in arguments]
    assert main(["export", "resnet18", "--img-size", "32", "-o", str(tmp_path / "m.onnx"), *arguments]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_library_errors_and_missing_packages(tmp_path, monkeypatch):
    model = splitattn.create_model("resnet18", num_classes=3)
    with pytest.raises(ValueError, match=r"fmt=onnx does not support precision=bf16 \(supported: onnx: fp32, int8; "):
        export_model(model, tmp_path / "m.onnx", "onnx", (3, 32, 32), precision="bf16")
    with pytest.raises(ValueError, match="int8 needs calibration images"):
        export_model(model, tmp_path / "m.xml", "openvino", (3, 32, 32), precision="int8")
    with pytest.raises(ValueError, match=r"calibration is used by precision=int8 and precision=bf16; precision=fp32 "
                                         "takes none"):
        export_model(model, tmp_path / "m.xml", "openvino", (3, 32, 32), calibration=[torch.zeros(1, 3, 32, 32)])
    with pytest.raises(ValueError, match=r"exporter is an option of onnx, not of fmt=torchscript \(which takes none\)"):
        export_model(model, tmp_path / "m.pt", "torchscript", (3, 32, 32), exporter="legacy")
    with pytest.raises(ValueError, match=r"calibration images are \(3, 64, 64\), the export's input is \(3, 32, 32\)"):
        export_model(model, tmp_path / "m.xml", "openvino", (3, 32, 32), precision="int8",
                     calibration=[torch.zeros(2, 3, 64, 64)])
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(RuntimeError, match=r"pip install 'splitattn\[openvino\]'"):
        export_model(model, tmp_path / "m.xml", "openvino", (3, 32, 32))


def test_calibration_takes_every_class_in_turn_with_eval_preprocessing(tmp_path, digits):
    files = calibration_files(digits / "train", count=25)
    assert [int(p.parent.name) for p in files] == [*range(10), *range(10), *range(5)]
    assert files[:10] == [sorted((digits / "train" / str(c)).glob("*.png"))[0] for c in range(10)]  # sorted
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in files[:3]:
        (flat / f"{path.parent.name}_{path.name}").write_bytes(path.read_bytes())
    (flat / "empty.png").write_bytes(b"")  # an interrupted copy: skipped, not an error
    model = splitattn.create_model("seresnet18")
    batches = calibration_batches(flat, model, count=64, batch_size=2, img_size=48)
    assert [tuple(b.shape) for b in batches] == [(2, 3, 48, 48), (1, 3, 48, 48)]
    cfg = model.pretrained_cfg
    transform = eval_transform(48, cfg["mean"], cfg["std"], cfg["crop_pct"], cfg["interpolation"])
    torch.testing.assert_close(batches[0][0], transform(load_rgb(sorted(flat.glob("*.png"))[0])))


TWO_COMPILED_MODELS = """
import faulthandler, gc, os, signal, sys, time
import torch
import splitattn
from splitattn.export.openvino import compile_openvino, export_openvino
faulthandler.enable()  # as pytest does: it puts the thread's signal stack in place first
signal.signal(signal.SIGUSR1, lambda *_: print("handler ran", flush=True))
model = splitattn.create_model("resnet18", num_classes=10).eval()
path = export_openvino(model, sys.argv[1], torch.randn(1, 3, 32, 32))
first, second = compile_openvino(path), compile_openvino(path)
del first; gc.collect()
del second; gc.collect()
os.kill(os.getpid(), signal.SIGUSR1)
time.sleep(0.1)
print("alive", flush=True)
"""


def test_two_compiled_models_freed_in_turn_leave_signals_working(tmp_path):
    """OpenVINO's CPU plugin leaves the thread's signal stack pointing at memory it frees when two
    compiled models are freed in the order they were made; the next signal with a Python handler
    then killed the process with SIGSEGV (a test worker, hundreds of tests later). Our OpenVINO
    calls put the signal stack back (``deploy/signal_stack.py``)."""
    _openvino()
    result = subprocess.run([sys.executable, "-c", TWO_COMPILED_MODELS, str(tmp_path / "m.xml")],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, f"exit {result.returncode}: {result.stdout}{result.stderr[-2000:]}"
    assert result.stdout.split() == ["handler", "ran", "alive"]
