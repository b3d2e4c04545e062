"""OpenVINO as our deploy backend: ``deploy(compile="openvino")`` and ``quantize(engine="openvino")``.

What a user checks: the model OpenVINO runs gives eval mode's outputs (float32 within deploy's
tolerance, bf16 within its own, int8 by top-1 agreement with the trained float model), at any
batch size, saved as an IR that a fresh process loads with its classes and preprocessing, and bad
requests refused with what was wrong. Speed is the benchmark's business.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path
from xml.etree import ElementTree

import pytest
import torch
from torch.utils.data import DataLoader

from splitattn.cli import main
from splitattn.data import ImageFolderDataset, collate_skipping
from splitattn.data.calibration import calibration_batches
from splitattn.deploy import (
    DEPLOY_TOLERANCE,
    DEPLOY_TOLERANCES,
    OpenVinoModel,
    deploy,
    deployment_of,
    load_openvino,
    relative_error,
    save_openvino,
)
from splitattn.deploy.cpu_features import native_bfloat16
from splitattn.errors import MissingFileError, OutputMismatchError, SplitattnError
from splitattn.layers import AttentionLayer, Gate
from splitattn.quantize import attention_mlp_names, load_quantized, quantize, save_quantized
from splitattn.training.inference import load_trained

from .dense_helpers import one_thread
from .fresh_process import eval_in_fresh_process
from .test_quantize import FAMILIES, _family_model, trained_once

__all__ = ["one_thread"]  # a fixture, used by name

# OpenVINO refuses a pooling window larger than its input map, which a ResNeSt-D's average-pool
# shortcut meets at 16 px (tests/test_quantize.py's size): 32 px is the smallest these run at.
SIZE = 32
ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None or importlib.util.find_spec("nncf") is None,
    reason="the OpenVINO backend needs the optional packages openvino and nncf: pip install 'splitattn[openvino]'")


def _val_batches(trained_model, digits, limit: int) -> list[torch.Tensor]:
    dataset = ImageFolderDataset(digits / "val", trained_model.transform, class_names=trained_model.class_names)
    loader = DataLoader(dataset, 32, collate_fn=collate_skipping)
    return [images for images, _, _ in itertools.islice(loader, limit)]


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    """A resnest14d trained on the digits for 80 steps at 32 px, its checkpoint (as tests/test_quantize.py's
    at 16 px): predictions decisive enough that top-1 agreement means something."""
    return trained_once(digits, tmp_path_factory, SIZE, epochs=4)


@pytest.fixture(scope="module")
def images(trained, digits) -> list[torch.Tensor]:
    """Real digit images (validation split) at 32 px, preprocessed as the trained model was."""
    return _val_batches(load_trained(trained), digits, limit=3)


@pytest.mark.parametrize("name", FAMILIES)
def test_deployed_to_openvino_gives_eval_modes_outputs_at_any_batch(name, images, one_thread):
    model = _family_model(name)
    x = images[0][:4]
    deployed = deploy(model, compile="openvino", example_input=x)  # deploy checks its own result too
    assert isinstance(deployed, OpenVinoModel) and deployed.float_ops_ran_at == "f32"
    assert deployment_of(deployed).compile == "openvino" and deployed.info["input_shape"] == [4, 3, SIZE, SIZE]
    # the attention MLPs in the form OpenVINO runs fastest: a gate's as convs, the others as matrix products
    others = sum(len(m.attention_mlp) for m in model.modules()
                 if isinstance(m, AttentionLayer) and not isinstance(m, Gate))
    matmuls = sum(op.get_type_name() == "MatMul" for op in deployed._ov_model.get_ordered_ops())
    assert deployment_of(deployed).attention_matmuls == others and matmuls == others + 1  # + the classifier
    larger = torch.cat([images[1], images[2]])[:9]  # split into compiled batches of 4, the last one padded
    with torch.no_grad():
        for batch in (x, x[:1], larger):
            assert relative_error(deployed(batch), model(batch)) <= DEPLOY_TOLERANCE
    assert deployed.num_classes == 10 and deployed.in_chans == 3


@pytest.mark.filterwarnings("ignore:this CPU has no native bfloat16")
def test_openvino_bfloat16_runs_in_bf16_where_the_cpu_has_it(images, one_thread):
    model = _family_model("resnest14d")
    x = images[0][:2]
    deployed = deploy(model, compile="openvino", example_input=x, dtype=torch.bfloat16)
    assert deployed.float_ops_ran_at == ("bf16" if native_bfloat16() else "f32")
    with torch.no_grad():
        assert relative_error(deployed(x), model(x)) <= DEPLOY_TOLERANCES[torch.bfloat16]
    with pytest.raises(SplitattnError, match=r"compile='openvino' computes in \['torch.float32', 'torch.bfloat16'\]"):
        deploy(model, compile="openvino", example_input=x, dtype=torch.float16)


def test_openvino_int8_agrees_with_the_trained_model_and_leaves_the_attention_in_float(trained, digits, one_thread):
    float_model = load_trained(trained).model.eval()
    calibration = calibration_batches(digits / "train", float_model, count=64, batch_size=32)
    int8 = quantize(float_model, calibration, engine="openvino")
    assert isinstance(int8, OpenVinoModel) and int8.precision == "int8" and int8.batch_size == 32
    assert int8.float_layers == attention_mlp_names(float_model)
    everything = quantize(float_model, calibration, engine="openvino", keep_float="none", batch_size=8)
    # every conv and linear runs in int8; the attention MLPs too once nothing is kept in float
    assert everything.int8_layers == int8.int8_layers + len(int8.float_layers) > len(int8.float_layers)
    agree = total = 0
    with torch.no_grad():
        for batch in _val_batches(load_trained(trained), digits, limit=4):
            agree += int((int8(batch).argmax(1) == float_model(batch).argmax(1)).sum())
            total += len(batch)
    assert agree / total >= 0.95  # as the inductor engine's int8 (tests/test_quantize.py)


def test_quantize_command_writes_an_openvino_ir_that_eval_reads_in_a_fresh_process(trained, digits, tmp_path,
                                                                                 capsys, one_thread):
    output = tmp_path / "digits.int8.xml"
    assert main(["quantize", "--checkpoint", str(trained), "--calibration", str(digits / "train"), "--num-images",
                 "64", "--output", str(output), "--sensitivity", "0", "--engine", "openvino"]) == 0
    assert f"wrote {output} (OpenVINO IR, checked against float32 on the calibration images)" in \
        capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.int8.bin", "digits.int8.xml"]  # no scratch left
    assert ElementTree.parse(output).getroot().tag == "net"  # a graph in XML and raw weights: no code to run
    assert main(["eval", "--checkpoint", str(trained), "--data", str(digits / "val"), "--json"]) == 0
    float_result = json.loads(capsys.readouterr().out)
    result = eval_in_fresh_process(output, digits / "val")
    assert result["images"] == float_result["images"] > 300
    assert abs(result["top1"] - float_result["top1"]) <= 2.5  # as the inductor engine's int8
    loaded = load_trained(output)
    assert loaded.class_names == load_trained(trained).class_names and loaded.image_size == SIZE
    assert load_quantized(output).info["float_top1_agreement"] >= 0.95  # checked when it was saved


def test_openvino_refusals_name_what_was_wrong(images, tmp_path, trained, digits, capsys):
    model = _family_model("resnest14d")
    x = images[0][:2]
    deployed = deploy(model, compile="openvino", example_input=x)
    with pytest.raises(SplitattnError, match=r"compiled for float32 images of shape \(3, 32, 32\), got torch.float32 "
                                             r"\(3, 64, 64\)"):
        deployed(torch.zeros(2, 3, 64, 64))
    with pytest.raises(SplitattnError, match=r"saved as NAME.xml \(weights in NAME.bin\)"):
        save_openvino(deployed, tmp_path / "model.pt2")
    with pytest.raises(SplitattnError, match=r"OpenVINO cannot build this network for input \[2, 3, 16, 16\].*"
                                             r"use larger images"):
        deploy(model, compile="openvino", example_input=torch.zeros(2, 3, 16, 16))
    with pytest.raises(SplitattnError, match="needs an example input"):
        deploy(model, compile="openvino")
    path = save_openvino(deployed, tmp_path / "model.xml")
    path.with_suffix(".bin").unlink()
    with pytest.raises(MissingFileError, match=r"model.bin is missing"):
        load_openvino(path)
    from splitattn.export import export_checked

    exported, _ = export_checked(model, tmp_path / "plain.xml", "openvino", (3, SIZE, SIZE), check=False)
    with pytest.raises(SplitattnError, match="an OpenVINO IR but not one of splitattn's deployed models"):
        load_openvino(exported)
    with pytest.raises(SplitattnError, match=r"engine must be one of \('inductor', 'openvino'\), got 'openvin'. "
                                             r"Did you mean 'openvino'"):
        quantize(model, [x], engine="openvin")
    with pytest.raises(SplitattnError, match="engine='openvino' does not have"):
        quantize(model, [x], engine="openvino", compile=False)
    with pytest.raises(SplitattnError, match="batch_size is for engines that compile one batch size"):
        quantize(model, [x], batch_size=2)
    with pytest.raises(SplitattnError, match="attention_inputs='float' is for engines that leave activations' "
                                             "quantization to us \\(inductor\\)"):
        quantize(model, [x], engine="openvino", attention_inputs="float")
    int8 = quantize(model, [x], engine="openvino")
    with pytest.raises(SplitattnError, match="aot=True compiles with AOTInductor"):
        save_quantized(int8, tmp_path / "q.xml", aot=True)
    # checked against a float model it was not made from, it disagrees, and the refusal names the knob
    stranger = _family_model("seresnet18").eval()
    assert float(torch.mean((int8(x).argmax(1) == stranger(x).argmax(1)).float())) < 1
    with pytest.raises(OutputMismatchError, match=r"agrees with the float model on .* of 2 images' top-1, below 100%; "
                                                  r"not saved \(min_agreement sets the threshold\)"):
        save_quantized(int8, tmp_path / "q.xml", float_model=stranger, check_batches=[x], min_agreement=1.0)
    assert not (tmp_path / "q.xml").exists()
    save_quantized(int8, tmp_path / "q.xml", float_model=stranger, check_batches=[x], min_agreement=0.0)
    assert load_quantized(tmp_path / "q.xml").info["float_top1_agreement"] < 1
    for flags, message in ((["--aot"], "--aot writes an AOTInductor package (--engine inductor)"),
                           (["--output", str(tmp_path / "q.pt2")], "--engine openvino writes a .xml file"),
                           (["--attention-inputs", "float"], "--attention-inputs float is for --engine inductor"),
                           (["--min-agreement", "95"], "--min-agreement is a fraction of images, 0 to 1, got 95.0")):
        assert main(["quantize", "--checkpoint", str(trained), "--calibration", str(digits / "train"),
                     "--engine", "openvino", *flags]) == 2
        assert message in capsys.readouterr().err
    assert main(["quantize", "--checkpoint", str(trained), "--calibration", str(digits / "train"),
                 "--min-agreement", "0.9"]) == 2  # the inductor engine's plain archive is not checked on save
    assert "the plain archive is not checked (compare it with --val)" in capsys.readouterr().err


def test_the_attention_mlp_form_benchmark_times_each_form_in_paired_rounds(one_thread):
    """benchmarks/attention_mlp_form.py, where OPENVINO_ATTENTION_MLP's measurements come from, on a small model."""
    spec = importlib.util.spec_from_file_location("attention_mlp_form", ROOT / "benchmarks" / "attention_mlp_form.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    times = script.compare_forms("seresnet18", batch=2, rounds=2, forms=["matmul", "conv"], img_size=SIZE)
    assert list(times) == ["matmul", "conv"] and all(len(t) == 2 and min(t) > 0 for t in times.values())
    lines = script.report("seresnet18", 2, times).splitlines()
    assert lines[0].startswith("seresnet18 batch 2 matmul") and "1.000x of matmul, faster in 0 of 2 rounds" in lines[0]
    assert lines[1].startswith("seresnet18 batch 2 conv") and "images/s" in lines[1]
