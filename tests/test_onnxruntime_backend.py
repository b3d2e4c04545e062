"""onnxruntime as our deploy backend: ``deploy(compile="onnxruntime")``.

What a user checks: the model onnxruntime runs gives eval mode's outputs within deploy's float32
tolerance at any batch size, it is saved as one ``.onnx`` file that a fresh process evaluates as
the trained model with its classes and preprocessing, and bad requests are refused with what was
wrong. Speed is the benchmark's business.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
import torch

from splitattn.cli import main
from splitattn.deploy import (
    DEPLOY_TOLERANCE,
    OnnxRuntimeModel,
    deploy,
    deployment_of,
    load_onnxruntime,
    relative_error,
    save_onnxruntime,
)
from splitattn.errors import MissingFileError, MissingPackageError, SplitattnError
from splitattn.quantize import load_quantized
from splitattn.training.inference import load_trained

from .dense_helpers import one_thread
from .fresh_process import eval_in_fresh_process
from .test_quantize import FAMILIES, _family_model, trained_once

__all__ = ["one_thread"]  # a fixture, used by name

SIZE = 16

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="the onnxruntime backend needs the optional packages onnx and onnxruntime: pip install 'splitattn[export]'")


@pytest.mark.parametrize("name", FAMILIES)
def test_deployed_to_onnxruntime_gives_eval_modes_outputs_at_any_batch(name, one_thread):
    model = _family_model(name)
    x = torch.randn(4, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    deployed = deploy(model, compile="onnxruntime", example_input=x)  # deploy checks its own result too
    assert isinstance(deployed, OnnxRuntimeModel) and deployment_of(deployed).compile == "onnxruntime"
    assert deployed.info["input_shape"] == [4, 3, SIZE, SIZE] and deployed.threads == torch.get_num_threads()
    larger = torch.randn(9, 3, SIZE, SIZE)  # split into exported batches of 4, the last one padded
    with torch.no_grad():
        for batch in (x, x[:1], larger):
            assert relative_error(deployed(batch), model(batch)) <= DEPLOY_TOLERANCE
    assert deployed.num_classes == 10 and deployed.in_chans == 3


def test_a_saved_onnxruntime_model_evaluates_as_the_trained_model_in_a_fresh_process(digits, tmp_path, capsys,
                                                                                     tmp_path_factory, one_thread):
    checkpoint = trained_once(digits, tmp_path_factory, SIZE, epochs=2)  # test_quantize's model
    trained = load_trained(checkpoint)
    example = torch.zeros(50, 3, SIZE, SIZE)
    output = save_onnxruntime(deploy(trained.model, compile="onnxruntime", example_input=example),
                              tmp_path / "digits.onnx")
    assert [p.name for p in tmp_path.iterdir()] == ["digits.onnx"]  # no partial file left
    capsys.readouterr()  # a training run's report, if this test trained it
    assert main(["eval", "--checkpoint", str(checkpoint), "--data", str(digits / "val"), "--json"]) == 0
    float_result = json.loads(capsys.readouterr().out)
    result = eval_in_fresh_process(output, digits / "val")
    assert result["images"] == float_result["images"] > 300
    assert abs(result["top1"] - float_result["top1"]) <= 0.6  # float32 both: at most a near-tie or two flips
    loaded = load_trained(output)
    assert loaded.class_names == trained.class_names and loaded.image_size == SIZE
    assert isinstance(load_quantized(output), OnnxRuntimeModel)  # the loader of saved models reads it by suffix


def test_onnxruntime_refusals_name_what_was_wrong(tmp_path):
    model = _family_model("resnest14d")
    x = torch.zeros(2, 3, SIZE, SIZE)
    with pytest.raises(SplitattnError, match=r"compile='onnxruntime' computes in \['torch.float32'\], got "
                                             r"torch.bfloat16"):
        deploy(model, compile="onnxruntime", example_input=x, dtype=torch.bfloat16)
    with pytest.raises(SplitattnError, match="needs an example input"):
        deploy(model, compile="onnxruntime")
    with pytest.raises(SplitattnError, match=r"compile must be one of .*got 'onnxrutime'. Did you mean 'onnxruntime'"):
        deploy(model, compile="onnxrutime", example_input=x)
    with pytest.raises(SplitattnError, match=r"compile='onnxruntime' runs on the CPU, and the model is on meta: "
                                             r"deploy model.cpu\(\) with a CPU example_input"):
        deploy(_family_model("resnest14d").to("meta"), compile="onnxruntime", example_input=x)
    deployed = deploy(model, compile="onnxruntime", example_input=x)
    with pytest.raises(SplitattnError, match=r"compiled for float32 images of shape \(3, 16, 16\), got torch.float32 "
                                             r"\(3, 32, 32\); deploy it again at that size"):
        deployed(torch.zeros(2, 3, 32, 32))
    with pytest.raises(SplitattnError, match=r"saved as NAME.onnx, got '.*model.xml'"):
        save_onnxruntime(deployed, tmp_path / "model.xml")
    with pytest.raises(SplitattnError, match=r"save_onnxruntime takes a model of deploy\(compile='onnxruntime'\), "
                                             r"got ResNet"):
        save_onnxruntime(model, tmp_path / "model.onnx")
    with pytest.raises(MissingFileError, match="no onnxruntime model at"):
        load_onnxruntime(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(SplitattnError, match=r"junk\.onnx could not be read as an ONNX model"):
        load_onnxruntime(tmp_path / "junk.onnx")
    from splitattn.export import export_checked

    exported, _ = export_checked(model, tmp_path / "plain.onnx", "onnx", (3, SIZE, SIZE), check=False,
                                 exporter="legacy")
    with pytest.raises(SplitattnError, match="an ONNX model but not one of splitattn's deployed models"):
        load_onnxruntime(exported)
    with torch.no_grad():  # what was saved is what runs: the same outputs after a round trip
        saved = load_onnxruntime(save_onnxruntime(deployed, tmp_path / "model.onnx"))
        assert torch.equal(saved(x), deployed(x)) and saved.info == deployed.info


def test_without_onnxruntime_the_backend_names_the_extra_that_installs_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what an import of a missing package meets
    with pytest.raises(MissingPackageError, match=r"compile='onnxruntime' needs the optional package 'onnxruntime': "
                                                  r"pip install 'splitattn\[export\]'"):
        deploy(_family_model("resnest14d"), compile="onnxruntime", example_input=torch.zeros(1, 3, SIZE, SIZE))
